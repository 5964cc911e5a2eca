"""What every route of the HTTP API shares: the settings, the registry, and whether a key is set."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines.config.settings import Settings
from pipelines.registry.registry import Registry

CHANNEL = "api"


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    registry: Registry
    authenticated: bool
    """False when served without a key (loopback only): then nothing may tell whether someone is
    blacklisted."""

    def require_disclosure(self, what: str) -> None:
        if not self.authenticated:
            raise StarletteHTTPException(401, f"{what} needs an API key: start the server with "
                                              "GDPR_SWEEP_API_KEY set")
