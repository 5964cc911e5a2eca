"""`gdpr-sweep blacklist ...`: manage the registry from the command line (§2).

Optimizely-style entries (add, remove, list, import, export) and CrossEngage-style status (set,
status, event-feed import) over one registry; every change lands in the append-only history.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from gdpr_sweep.cli_common import Context, emit, handle_errors, pass_ctx
from pipelines.core.errors import InputError
from pipelines.datasets.storage import write_text_atomic
from pipelines.registry.registry import DEFAULT_TOP, FIELDS, SOURCES, Registry


def _registry(ctx: Context) -> Registry:
    return Registry(ctx.settings.blacklist_db)


@click.group()
def blacklist() -> None:
    """Manage the blacklist: entries, status, history, import and export."""


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
@click.option("--scope", help="Exact scope; '*' lists the entries for every scope.")
@click.option("--user-id")
@click.option("--source", type=click.Choice(SOURCES))
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
@click.option("--email", help="Only this person's actions (found by keyed hash).")
@click.option("--user-id", help="Only this user's actions (found by keyed hash).")
@pass_ctx
@handle_errors
def history(ctx: Context, blacklist_id: str | None, email: str | None, user_id: str | None) -> None:
    """The append-only history of changes: all, one entry's, or one person's (keyed hashes, no emails)."""
    emit(_registry(ctx).history(blacklist_id, email=email, user_id=user_id))


def _identity_options(fn: Any) -> Any:
    fn = click.option("--scope", help="Scope (CrossEngage business unit); omit for every scope.")(fn)
    fn = click.option("--email", help="Email (for leads without a user id).")(fn)
    return click.option("--user-id", help="External user id (CrossEngage id).")(fn)


@blacklist.command()
@_identity_options
@pass_ctx
@handle_errors
def status(ctx: Context, user_id: str | None, email: str | None, scope: str | None) -> None:
    """Is a user blacklisted (by user id, or email + scope), since when, through which channel."""
    emit(_registry(ctx).status(user_id=user_id, email=email, scope=scope))


@blacklist.command(name="set")
@_identity_options
@click.option("--blacklisted/--whitelisted", default=True, show_default=True,
              help="Blacklist (opt out) or whitelist (opt back in).")
@click.option("--at", help="When it happened, ISO 8601 (default now); an older action than the last one is ignored.")
@pass_ctx
@handle_errors
def set_status(ctx: Context, user_id: str | None, email: str | None, scope: str | None, blacklisted: bool,
               at: str | None) -> None:
    """Set a user's status, CrossEngage style (PUT /users/{id}/blacklist-status); latest action wins."""
    emit(_registry(ctx).set_status(user_id=user_id, email=email, scope=scope, blacklisted=blacklisted, at=at,
                                   channel="cli"))


def read_feed_lines(text: str) -> tuple[list[Any], list[int]]:
    """CrossEngage event-feed JSON lines -> (items, their line numbers); blank lines are skipped.

    Raise InputError naming every line that is not valid JSON; nothing is applied then.
    """
    items: list[Any] = []
    numbers: list[int] = []
    errors: list[int] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
            numbers.append(n)
        except json.JSONDecodeError:
            errors.append(n)
    if errors:
        shown = ", ".join(str(n) for n in errors[:20]) + (", ..." if len(errors) > 20 else "")
        raise InputError(f"event feed: {len(errors)} bad line(s) ({shown}), nothing imported: not valid JSON")
    return items, numbers


def _read_input(file: str) -> str:
    try:
        if file == "-":
            return sys.stdin.read()
        return Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{file}: not UTF-8 text") from None
    except FileNotFoundError:
        raise InputError(f"{file}: no such file") from None


@blacklist.command(name="import")
@click.argument("file")
@click.option("--format", "fmt", type=click.Choice(["optimizely", "crossengage"]), default="optimizely",
              show_default=True, help="optimizely: a {total, count, items} list; crossengage: event-feed JSON lines.")
@pass_ctx
@handle_errors
def import_file(ctx: Context, file: str, fmt: str) -> None:
    """Import FILE ('-' for stdin): every line is validated first, then all are applied or none."""
    text = _read_input(file)
    registry = _registry(ctx)
    if fmt == "crossengage":
        lines, numbers = read_feed_lines(text)
        result = registry.apply_events(lines, channel="import", numbers=numbers)
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{file}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
        result = registry.import_optimizely(doc, channel="import")
    emit({"file": file, "format": fmt, **result})


@blacklist.command()
@click.argument("file", required=False)
@click.option("--suppression", is_flag=True,
              help="Instead: a suppression list for email service providers, one normalized email per line.")
@click.option("--hashed", is_flag=True, help="With --suppression: the SHA-256 (hex) of each normalized email.")
@pass_ctx
@handle_errors
def export(ctx: Context, file: str | None, suppression: bool, hashed: bool) -> None:
    """Export every entry as an Optimizely list to FILE (written atomically, mode 0640) or stdout."""
    if hashed and not suppression:
        raise InputError("--hashed goes with --suppression")
    if suppression:  # gdpr_sweep/cli_ops.py (issue 4)
        from gdpr_sweep.cli_ops import write_suppression_list

        write_suppression_list(ctx, None if file in (None, "-") else Path(file), hashed)
        return
    doc = _registry(ctx).export_optimizely()
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if file is None or file == "-":
        click.echo(text, nl=False)
        return
    write_text_atomic(Path(file), text)
    click.echo(json.dumps({"file": file, "total": doc["total"]}))
