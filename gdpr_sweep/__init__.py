"""gdpr-sweep: the application edge (CLI and HTTP API). Data logic lives in `pipelines`, runs in `flows`."""

from pipelines.core.version import __version__

__all__ = ["__version__"]
