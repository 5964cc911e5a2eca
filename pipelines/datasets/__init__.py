"""Where the data lives and how a sweep reads, rewrites, verifies and publishes it: local folders, S3
prefixes and Delta tables; raw snapshots taken in and settled; file identities."""
