"""pipelines.datasets: see docs/ARCHITECTURE.md."""
