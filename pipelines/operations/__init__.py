"""pipelines.operations: see docs/ARCHITECTURE.md."""
