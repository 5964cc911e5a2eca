"""pipelines.reporting: see docs/ARCHITECTURE.md."""
