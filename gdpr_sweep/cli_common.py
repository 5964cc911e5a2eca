"""What every `gdpr-sweep` sub-command shares: the context (settings loaded once), one-line errors
with the exit codes of §6, JSON output, and running the sweep flow. A leaf: it imports no other
command module, so the command modules import it and `cli.py` imports them, never back."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipelines.errors import SweepError
from pipelines.settings import Settings, load_settings

DEFAULT_CONFIG = "gdpr-sweep.toml"


def _fail(message: str, code: int) -> None:
    click.echo(f"gdpr-sweep: error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the error hierarchy into one-line messages and exit codes."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SweepError as exc:
            _fail(str(exc), exc.exit_code)
        except OSError as exc:
            _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
    return wrapper


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


class Context:
    def __init__(self, config: str):
        self.config_path = Path(config)
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings


pass_ctx = click.make_pass_decorator(Context)


def prepare_prefect(settings: Settings) -> None:
    """Keep Prefect's home inside the working folder and quiet offline; no server to set up."""
    os.environ.setdefault("PREFECT_HOME", str(settings.work_dir / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "gdpr_sweep,pipelines")
    settings.work_dir.mkdir(parents=True, exist_ok=True)


def run_sweep(settings: Settings, delete_raw: bool | None = None) -> str:
    prepare_prefect(settings)
    from flows.sweep import configured_sweep  # Prefect is imported only once its home is set

    # [sweep] task_runner: threads here, or a Dask cluster (README "Scaling out")
    return configured_sweep(settings)(config=str(settings.config_path), delete_raw=delete_raw)
