"""gdpr-sweep: the application edge (CLI, registry, HTTP). Data logic lives in `pipelines`."""

__version__ = "0.1.0"
