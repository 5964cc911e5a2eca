"""The one Prefect environment of tests and benchmarks.

- `configure_process(home)`: what a process sets before it imports Prefect: its home out of the
  user's `~/.prefect`, no telemetry offline, a start-up timeout that a fresh home on 2 busy cores
  meets (a fresh home migrates for ~15 s; the default is 20 s).
- `temporary_api()`: one real Prefect API on a migrated SQLite (`prefect_test_harness`); the suite
  enters it once per session (tests/conftest.py `prefect_harness`).
- `current_api_url()` and `child_env(api_url)`: a `gdpr-sweep` subprocess reports to that same API
  instead of starting a temporary server of its own (7-15 s each).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
STARTUP_TIMEOUT = "120"


def process_defaults(home: Path | str) -> dict[str, str]:
    """The variables `configure_process` sets (also for a child's environment)."""
    return {"PREFECT_HOME": str(home), **QUIET, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": STARTUP_TIMEOUT}


def configure_process(home: Path | str, *, override: bool = False, **extra: str) -> None:
    """Set this process's Prefect environment before Prefect is imported. With `override`,
    `PREFECT_HOME` replaces one already set (a benchmark's own folder); other values stay as the
    caller's environment has them."""
    values = {**process_defaults(home), **extra}
    for key, v in values.items():
        if override and key == "PREFECT_HOME":
            os.environ[key] = v
        else:
            os.environ.setdefault(key, v)


@contextmanager
def temporary_api(startup_timeout: int = int(STARTUP_TIMEOUT)) -> Iterator[None]:
    """A real Prefect API (SQLite, migrated once) for everything run inside."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=startup_timeout):
        yield


def current_api_url() -> str:
    """The API this process talks to (inside `temporary_api`: the harness's)."""
    from prefect.settings import get_current_settings

    return str(get_current_settings().api.url)


def child_env(api_url: str | None, base: Mapping[str, str] | None = None, *, drop: tuple[str, ...] = (),
              **extra: str) -> dict[str, str]:
    """The environment of a `gdpr-sweep` / `prefect` child process: `base` (default os.environ)
    without `GDPR_SWEEP_CONFIG` and any variable starting with a prefix in `drop`, quiet, reporting
    to `api_url` (None: no API URL, the child starts its own temporary one)."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k != "GDPR_SWEEP_CONFIG" and not (drop and k.startswith(drop))}
    if api_url is None:
        env.pop("PREFECT_API_URL", None)
    else:
        env["PREFECT_API_URL"] = api_url
    env.update(QUIET)
    env.update(extra)
    return env
