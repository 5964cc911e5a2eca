"""Prefect flows: wiring only. Each flow reads Extract, Match, Purge, Verify, Report."""
