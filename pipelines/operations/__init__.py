"""Targeted operations beside the sweep: ClearUserData, the ingest guard, suppression of recipients, and
CrossEngage command events read from event snapshots."""
