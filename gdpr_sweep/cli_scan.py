"""`gdpr-sweep scan`: search every column of the lake for blacklisted people (README "Residual scan")."""

from __future__ import annotations

import click

from gdpr_sweep.cli import Context, emit, handle_errors, pass_ctx


@click.command()
@click.option("--fail-on-residuals/--no-fail-on-residuals", default=None,
              help="Exit 1 when residuals are found; default: [scan] fail_on_residuals.")
@pass_ctx
@handle_errors
def scan(ctx: Context, fail_on_residuals: bool | None) -> None:
    """Search every string value of every dataset (and [scan] lake_roots) for blacklisted people.

    Deletes nothing: prints per dataset and column the rows found per BlacklistId, never a value, and
    writes a report into the chain (report_dir/_operations/<run_id>/residual-scan.json).
    """
    from gdpr_sweep.scan_ops import ResidualsFound, residual_scan

    try:
        emit(residual_scan(ctx.settings, fail_on_residuals))
    except ResidualsFound as exc:
        emit(exc.summary)
        raise
