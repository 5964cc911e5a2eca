"""`gdpr-sweep blacklist ...`: manage the registry from the command line (SPEC §2)."""

from __future__ import annotations

import click

from gdpr_sweep.cli import Context, emit, handle_errors, pass_ctx
from gdpr_sweep.registry import DEFAULT_TOP, FIELDS, Registry


def _registry(ctx: Context) -> Registry:
    return Registry(ctx.settings.blacklist_db)


@click.group()
def blacklist() -> None:
    """Add, remove and list blacklist entries."""


@blacklist.command()
@click.option("--email", help="Email to blacklist (stored trimmed and lower-cased).")
@click.option("--user-id", help="External user id (CrossEngage id).")
@click.option("--scope", help="Scope; omit for every scope.")
@pass_ctx
@handle_errors
def add(ctx: Context, email: str | None, user_id: str | None, scope: str | None) -> None:
    """Add an entry; prints it. An identical existing entry is printed instead ("Created": false)."""
    record, created = _registry(ctx).add(email=email, user_id=user_id, scope=scope, source="cli")
    emit({**record.to_json(), "Created": created})


@blacklist.command()
@click.argument("blacklist_id")
@pass_ctx
@handle_errors
def remove(ctx: Context, blacklist_id: str) -> None:
    """Remove (whitelist) an entry by BlacklistId; exit 3 when there is none."""
    record = _registry(ctx).remove(blacklist_id, channel="cli")
    emit({"removed": record.blacklist_id})


@blacklist.command(name="list")
@click.option("--email")
@click.option("--scope")
@click.option("--user-id")
@click.option("--source")
@click.option("--created-after", help="ISO 8601 UTC time, e.g. 2026-11-01T00:00:00Z")
@click.option("--created-before")
@click.option("--skip", default=0, show_default=True, type=int)
@click.option("--top", default=DEFAULT_TOP, show_default=True, type=int)
@click.option("--order-by", default="CreatedAt", show_default=True, type=click.Choice(list(FIELDS)))
@click.option("--desc", is_flag=True, help="Sort descending.")
@pass_ctx
@handle_errors
def list_entries(ctx: Context, email: str | None, scope: str | None, user_id: str | None, source: str | None,
                 created_after: str | None, created_before: str | None, skip: int, top: int, order_by: str,
                 desc: bool) -> None:
    """List entries as {"total", "count", "items"}."""
    page = _registry(ctx).list(email=email, scope=scope, user_id=user_id, source=source,
                               created_after=created_after, created_before=created_before,
                               skip=skip, top=top, order_by=order_by, descending=desc)
    emit(page.to_json())


@blacklist.command()
@click.argument("blacklist_id", required=False)
@pass_ctx
@handle_errors
def history(ctx: Context, blacklist_id: str | None) -> None:
    """The append-only history of changes (keyed hashes, no plaintext emails)."""
    emit(_registry(ctx).history(blacklist_id))
