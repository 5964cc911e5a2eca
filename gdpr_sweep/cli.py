"""The `gdpr-sweep` command. The edge: it loads settings once and passes them down.

Exit codes (SPEC §6): 0 success, 1 failure while running, 2 invalid input or usage, 3 not found.
Errors print one line to stderr and never include a person's email.
"""

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

from pipelines.errors import SweepError
from pipelines.settings import Settings, load_settings

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", envvar="GDPR_SWEEP_CONFIG", default=DEFAULT_CONFIG, show_default=True,
              help="Configuration file (TOML). Also GDPR_SWEEP_CONFIG.")
@click.option("--debug", is_flag=True, envvar="GDPR_SWEEP_DEBUG",
              help="On failure, print the traceback as well as the one-line error.")
@click.version_option(package_name="gdpr-sweep")
@click.pass_context
def cli(ctx: click.Context, config: str, debug: bool) -> None:
    """gdpr-sweep: purge blacklisted people from Parquet datasets and prove it."""
    ctx.obj = Context(config, debug)


def prepare_prefect(settings: Settings) -> None:
    """Keep Prefect's home inside the working folder and quiet offline; no server to set up."""
    os.environ.setdefault("PREFECT_HOME", str(settings.work_dir / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "gdpr_sweep,pipelines")
    settings.work_dir.mkdir(parents=True, exist_ok=True)


@cli.command()
@click.option("--delete-raw/--keep-raw", default=None,
              help="Delete (or keep) the raw snapshot files the sweep took in; default: the configuration's.")
@pass_ctx
@handle_errors
def sweep(ctx: Context, delete_raw: bool | None) -> None:
    """Run the sweep flow now (Prefect's temporary local API, nothing to set up)."""
    report = run_sweep(ctx.settings, delete_raw)
    click.echo(f"report: {report}")
    click.echo(f"markdown: {Path(report).with_suffix('.md')}")
    click.echo(f"html: {Path(report).with_suffix('.html')}")


def run_sweep(settings: Settings, delete_raw: bool | None = None) -> str:
    prepare_prefect(settings)
    from flows.sweep import configured_sweep  # Prefect is imported only once its home is set

    quiet_console_tracebacks()  # Prefect's console handlers exist once it is imported
    # [sweep] task_runner: threads here, or a Dask cluster (README "Scaling out")
    return configured_sweep(settings)(config=str(settings.config_path), delete_raw=delete_raw)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: data/sample beside the configuration file).")
@click.option("--profiles", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--events", default=50_000, show_default=True, type=click.IntRange(0))
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 3660))
@click.option("--seed", default=42, show_default=True, type=int)
@pass_ctx
@handle_errors
def generate(ctx: Context, out: Path | None, profiles: int, events: int, days: int, seed: int) -> None:
    """Write deterministic sample profiles and events snapshots (Optimizely shapes)."""
    from pipelines.generate import generate as run_generate

    out = out or ctx.config_path.resolve().parent / "data" / "sample"
    result = run_generate(out, profiles=profiles, events=events, days=days, seed=seed)
    emit({"out": str(out), "profiles_files": result.profiles_files, "profiles_rows": result.profiles_rows,
          "events_files": result.events_files, "events_rows": result.events_rows})


@cli.command()
@click.option("--events", default=50_000, show_default=True, type=click.IntRange(1))
@click.option("--profiles", default=2000, show_default=True, type=click.IntRange(1))
@pass_ctx
@handle_errors
def demo(ctx: Context, events: int, profiles: int) -> None:
    """Generate the sample data if missing, blacklist its sample entries, run the sweep."""
    from gdpr_sweep.demo import prepare_demo

    settings = ctx.settings
    added = prepare_demo(settings, events=events, profiles=profiles)
    click.echo(f"blacklist: {added} sample entries added ({settings.blacklist_db})")
    report = run_sweep(settings)
    click.echo("")
    for ds in settings.datasets:
        click.echo(f"cleaned {ds.name}: {ds.path}")
    click.echo(f"report: {report}")
    click.echo(f"report (Markdown): {Path(report).with_suffix('.md')}")
    click.echo(f"report (HTML): {Path(report).with_suffix('.html')}")


from gdpr_sweep.cli_blacklist import blacklist  # noqa: E402  (sub-command group in its own module)

cli.add_command(blacklist)
from gdpr_sweep.cli_report import report  # noqa: E402

cli.add_command(report)
from gdpr_sweep.cli_config import config  # noqa: E402

cli.add_command(config)
from gdpr_sweep.cli_serve import serve  # noqa: E402

cli.add_command(serve)
from gdpr_sweep.cli_scan import scan  # noqa: E402

cli.add_command(scan)
from gdpr_sweep.cli_ops import clear_user_data, ingest, suppress  # noqa: E402

for _command in (ingest, clear_user_data, suppress):
    cli.add_command(_command)
from gdpr_sweep.cli_hold import hold  # noqa: E402

cli.add_command(hold)
import gdpr_sweep.cli_certificate  # noqa: E402, F401  (adds `report certificate | verify-certificate`)


def main() -> None:
    from pipelines.storage import restrict_umask

    restrict_umask()  # files holding personal data or reports: never world-readable (docs/reliability.md)
    cli(prog_name="gdpr-sweep")
