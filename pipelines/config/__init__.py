"""pipelines.config: see docs/ARCHITECTURE.md."""
