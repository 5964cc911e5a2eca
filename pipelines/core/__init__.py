"""pipelines.core: see docs/ARCHITECTURE.md."""
