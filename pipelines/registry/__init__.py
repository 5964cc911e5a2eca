"""pipelines.registry: see docs/ARCHITECTURE.md."""
