"""`gdpr-sweep hold add | release | list`: retention holds (§3, GDPR Art. 17(3); pipelines/registry/holds.py).

A hold keeps one entry's rows (every dataset), one dataset's rows of every entry, or one entry's rows
in one dataset, until it is released or its end date passes; the next sweep then erases them.
Placing and releasing are records of the report hash chain.
"""

from __future__ import annotations

import click

from gdpr_sweep.cli_common import Context, emit, handle_errors, pass_ctx
from pipelines.registry.holds import HoldStore, hold_json
from pipelines.registry.registry import utc_now


@click.group()
def hold() -> None:
    """Place, release and list retention holds (rows a legal duty requires to keep)."""


@hold.command(name="add")
@click.option("--blacklist-id", help="The entry whose rows to keep (with --dataset: only there).")
@click.option("--dataset", help="The dataset whose rows to keep (with --blacklist-id: only that entry's).")
@click.option("--reason", required=True, help="The legal duty or claim; printed in reports (no emails).")
@click.option("--until", help="End date, ISO 8601 (2027-06-30 or 2027-06-30T12:00:00Z); default: until released.")
@pass_ctx
@handle_errors
def add(ctx: Context, blacklist_id: str | None, dataset: str | None, reason: str, until: str | None) -> None:
    """Place a hold; print it (HoldId is what `release` takes)."""
    emit(hold_json(HoldStore(ctx.settings).place(blacklist_id, dataset, reason, until, channel="cli")))


@hold.command()
@click.argument("hold_id")
@pass_ctx
@handle_errors
def release(ctx: Context, hold_id: str) -> None:
    """Release a hold: the next sweep erases the rows it kept (exit 3: no such hold)."""
    emit(hold_json(HoldStore(ctx.settings).release(hold_id, channel="cli")))


@hold.command(name="list")
@click.option("--active", "only_active", is_flag=True, help="Only holds in force now.")
@pass_ctx
@handle_errors
def list_holds(ctx: Context, only_active: bool) -> None:
    """List holds, oldest first, with their state (`active`, `released`, `expired`)."""
    now = utc_now()
    holds = HoldStore(ctx.settings).list(include_ended=not only_active)
    items = [hold_json(h, now) for h in holds]
    emit({"total": len(items), "items": items})
