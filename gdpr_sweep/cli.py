"""The `gdpr-sweep` command. The edge: it loads settings once and passes them down.
The group and its top-level commands live here; each sub-command group in its own `cli_*.py` module,
registered below; what they share in `cli_common.py`.

Exit codes (§6): 0 success, 1 failure while running, 2 invalid input or usage, 3 not found.
Errors print one line to stderr and never include a person's email.
"""

from __future__ import annotations

from pathlib import Path

import click

import gdpr_sweep.cli_certificate  # noqa: F401  (adds `report certificate | verify-certificate`)
from gdpr_sweep.cli_blacklist import blacklist
from gdpr_sweep.cli_common import DEFAULT_CONFIG, Context, emit, handle_errors, pass_ctx, run_sweep
from gdpr_sweep.cli_config import config
from gdpr_sweep.cli_hold import hold
from gdpr_sweep.cli_ops import clear_user_data, ingest, suppress
from gdpr_sweep.cli_report import report
from gdpr_sweep.cli_scan import scan
from gdpr_sweep.cli_serve import serve


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


@cli.command()
@click.option("--delete-raw/--keep-raw", default=None,
              help="Delete (or keep) the raw snapshot files the sweep took in; default: the configuration's.")
@pass_ctx
@handle_errors
def sweep(ctx: Context, delete_raw: bool | None) -> None:
    """Run the sweep flow now: in this process, or on the Prefect server PREFECT_API_URL names."""
    report = run_sweep(ctx.settings, delete_raw)
    click.echo(f"report: {report}")
    click.echo(f"markdown: {Path(report).with_suffix('.md')}")
    click.echo(f"html: {Path(report).with_suffix('.html')}")


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
    from pipelines.sample.generate import generate as run_generate

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


for _command in (blacklist, report, config, serve, scan, ingest, clear_user_data, suppress, hold):
    cli.add_command(_command)


def main() -> None:
    from pipelines.datasets.storage import restrict_umask

    restrict_umask()  # files holding personal data or reports: never world-readable (docs/reliability.md)
    cli(prog_name="gdpr-sweep")
