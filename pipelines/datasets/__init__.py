"""Where the data lives and how a sweep reads, rewrites, verifies and publishes it: local folders, S3
prefixes, Delta tables and Iceberg tables; raw snapshots taken in and settled; file identities."""
