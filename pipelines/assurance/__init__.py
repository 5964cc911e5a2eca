"""pipelines.assurance: see docs/ARCHITECTURE.md."""
