"""What every `gdpr-sweep` sub-command shares: the context (settings loaded once), one-line errors
with the exit codes of §6 (`--debug` adds the traceback), JSON output, and running the sweep flow.
A leaf: it imports no command module, so the command modules import it and `cli.py` imports them."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipelines.config.settings import Settings, load_settings
from pipelines.core.errors import SweepError

DEFAULT_CONFIG = "gdpr-sweep.toml"


def _fail(message: str, code: int) -> None:
    click.echo(f"gdpr-sweep: error: {message}", err=True)
    sys.exit(code)


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Context) if ctx is not None else None
    return bool(obj is not None and obj.debug)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the error hierarchy into one-line messages and exit codes (with `--debug`, the
    traceback is printed too)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SweepError as exc:
            _traceback_if_debug()
            _fail(str(exc), exc.exit_code)
        except OSError as exc:
            _traceback_if_debug()
            _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
    return wrapper


def _traceback_if_debug() -> None:
    if _debug():
        import traceback

        traceback.print_exc()


class _NoTraceback(logging.Formatter):
    """A console formatter that leaves exception tracebacks out (the record keeps them for other
    handlers, e.g. the logs Prefect stores); `--debug` keeps them on the console too."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def quiet_console_tracebacks() -> None:
    """Without `--debug`, a failed run ends in one line (`gdpr-sweep: error: ...`), not in the
    tracebacks Prefect logs for each failed task and flow run."""
    if _debug():
        return
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.Logger.manager.loggerDict))]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler.formatter, _NoTraceback):
                handler.setFormatter(_NoTraceback(handler.formatter))


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


class Context:
    def __init__(self, config: str, debug: bool = False):
        self.config_path = Path(config)
        self.debug = debug
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
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "gdpr_sweep,pipelines,flows")
    settings.work_dir.mkdir(parents=True, exist_ok=True)


def prefect_server_configured() -> bool:
    """A Prefect API to record runs on: `PREFECT_API_URL` in the environment or the Prefect profile."""
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def run_sweep(settings: Settings, delete_raw: bool | None = None) -> str:
    """Run the sweep flow now (docs/decisions/0291-cli-runs-without-a-server.md): as a Prefect flow run on
    the configured server (named `gdpr_sweep-<run_id>`, its tasks, logs and artifacts recorded there), or,
    with no server configured, the flow's function itself in this process: the same steps, report and
    chain, without starting a temporary Prefect API. A Dask task runner always runs under Prefect."""
    prepare_prefect(settings)
    from flows.sweep import configured_sweep, gdpr_sweep  # Prefect is imported only once its home is set

    quiet_console_tracebacks()  # Prefect's console handlers exist once it is imported
    if not prefect_server_configured() and settings.task_runner == "local":
        return gdpr_sweep.fn(config=str(settings.config_path), delete_raw=delete_raw)
    # [sweep] task_runner: threads here, or a Dask cluster (README "Scaling out")
    return configured_sweep(settings)(config=str(settings.config_path), delete_raw=delete_raw)
