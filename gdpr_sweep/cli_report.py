"""`gdpr-sweep report list | show | verify | lookup`: read and check the audit reports (issue 5).

`verify` and `lookup` are what an auditor runs: the first checks the hash chain over every report
and names each changed or removed one (exit 1); the second answers "was this person purged, when,
in which runs" from keyed hashes, with the operator's report secret (exit 3 when not found).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gdpr_sweep.cli_common import Context, emit, handle_errors, pass_ctx
from pipelines.config.report_secret import report_secret
from pipelines.core.errors import InputError, NotFound, SweepError
from pipelines.reporting import chain, report_catalog
from pipelines.reporting import report as reports


@click.group()
def report() -> None:
    """List, show, verify and search the audit reports."""


def _report_dir(ctx: Context) -> Path:
    return ctx.settings.report_dir


@report.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
@handle_errors
def list_reports(ctx: Context, as_json: bool) -> None:
    """List every run that wrote a report (sweep, ClearUserData, ingest), oldest first."""
    rows = report_catalog.list_rows(_report_dir(ctx))
    if as_json:
        emit({"total": len(rows), "items": rows})
        return
    if not rows:
        click.echo(f"no reports in {_report_dir(ctx)}")
        return
    click.echo(f"{'RUN':<30}  {'KIND':<15}  {'FINISHED (UTC)':<20}  {'REMOVED':>9}  {'OVERDUE':>7}  STATUS")
    for r in rows:
        click.echo(f"{r['run_id']:<30}  {(r['kind'] or '-'):<15}  {(r['finished_at'] or '-')[:19]:<20}  "
                   f"{_num(r['rows_removed']):>9}  {_num(r['overdue_entries']):>7}  {r['status']}")


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


@report.command()
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the run's report.json.")
@pass_ctx
@handle_errors
def show(ctx: Context, run_id: str | None, as_json: bool) -> None:
    """Print one run's summary (default: the newest). RUN may be a unique prefix of a run id."""
    folders = chain.report_folders(_report_dir(ctx))
    if not folders:
        raise NotFound(f"no reports in {_report_dir(ctx)}")
    if run_id is None:
        chosen = folders[-1]
    else:
        candidates = [f for f in folders if f.startswith(run_id)]
        if not candidates:
            raise NotFound(f"no report for run {run_id[:64]!r} in {_report_dir(ctx)}")
        if len(candidates) > 1 and run_id not in candidates:
            raise InputError(f"run {run_id[:64]!r} is ambiguous: {len(candidates)} runs start with it")
        chosen = run_id if run_id in candidates else candidates[0]
    doc = chain.load_report(_report_dir(ctx), chosen)
    if doc is None:
        raise SweepError(f"{_report_dir(ctx) / chosen / chain.REPORT_NAME}: missing or not valid JSON")
    if as_json:
        emit(doc)
        return
    click.echo(reports.summary_markdown(doc).rstrip("\n"))
    folder = _report_dir(ctx) / chosen
    click.echo("")
    for name in ("report.json", *chain.PAGE_NAMES):
        if (folder / name).exists():
            click.echo(f"{name}: {folder / name}")


@report.command()
@click.option("--expect-head", metavar="SHA256",
              help="SHA-256 of the newest report as recorded elsewhere (e.g. the run's Prefect artifact).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
@handle_errors
def verify(ctx: Context, expect_head: str | None, as_json: bool) -> None:
    """Check the hash chain over every report; name each changed or removed one (exit 1)."""
    result = chain.verify_chain(_report_dir(ctx), expect_head)
    if as_json:
        emit(result.to_json())
    else:
        for p in result.problems:
            click.echo(f"{p.problem.upper().replace('_', ' ')}: {p.run_id}: {p.detail}")
        for run_id in result.unchained:
            click.echo(f"not chained (written before tamper evidence, report_version 1): {run_id}")
        head = result.head
        click.echo(f"{result.reports_checked} reports checked; "
                   + ("chain intact" if result.ok else f"{len(result.problems)} problems")
                   + (f"; head {head.run_id} sha256 {head.report_sha256}" if head else ""))
    if not result.ok:
        raise SystemExit(1)


@report.command()
@click.option("--email", help="Email to look up (compared trimmed and lower-cased).")
@click.option("--user-id", help="External user id to look up.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
@handle_errors
def lookup(ctx: Context, email: str | None, user_id: str | None, as_json: bool) -> None:
    """Was this person purged, when, in which runs? Searches the reports by keyed hash (exit 3 if absent)."""
    if (email is None) == (user_id is None):
        raise InputError("give exactly one of --email or --user-id")
    secret = report_secret(ctx.settings, create=False)
    kind, value = ("email", email) if email is not None else ("user_id", user_id)
    assert value is not None
    digest = reports.keyed_hash(secret, kind, value)
    field, key = f"{kind}_hmac", reports.key_id(secret)
    searched = other_key = unhashed = 0
    entries: dict[str, dict[str, Any]] = {}
    runs = []
    for doc in chain.iter_reports(_report_dir(ctx)):
        searched += 1
        report_key = doc.get("identity_hash", {}).get("key_id")
        if report_key is None:
            unhashed += 1  # report_version 1: entries carry no keyed hashes
            continue
        if report_key != key:
            other_key += 1
            continue
        hits = [e for e in doc.get("entries", []) if e.get(field) == digest]
        if not hits:
            continue
        run = doc["run"]
        removed: dict[str, int] = {}
        for e in hits:
            entries[e["blacklist_id"]] = {k: e.get(k) for k in (
                "blacklist_id", "scope", "created_at", "first_verified_gone_at", "hours_to_gone", "deadline_met",
                "status", "rows_still_present")} | {"last_reported_in": run["run_id"]}
            for name, n in e.get("rows_removed", {}).items():
                removed[name] = removed.get(name, 0) + n
        runs.append({"run_id": run["run_id"], "finished_at": run.get("finished_at"), "rows_removed": removed,
                     "rows_still_present": sum(e.get("rows_still_present", 0) for e in hits)})
    if not entries:
        extra = "".join([f"; {other_key} written with another report secret" if other_key else "",
                         f"; {unhashed} without keyed hashes (report_version 1)" if unhashed else ""])
        extra = f" ({extra[2:]})" if extra else ""
        raise NotFound(f"no blacklist entry with this {kind.replace('_', ' ')} in {searched} reports{extra}")
    purged_in = [r["run_id"] for r in runs if sum(r["rows_removed"].values())]
    answer: dict[str, Any] = {"found": True, "identity": kind, "purged": all(e["rows_still_present"] == 0 for e in entries.values()),
              "entries": list(entries.values()), "purged_in_runs": purged_in, "runs": runs,
              "reports_searched": searched, "reports_with_other_key": other_key,
              "reports_without_hashes": unhashed}
    if as_json:
        emit(answer)
        return
    for e in answer["entries"]:
        click.echo(f"entry {e['blacklist_id']} (scope {e['scope'] or 'all'}): created {e['created_at']}, "
                   f"first verified gone {e['first_verified_gone_at'] or 'not yet'}"
                   + (f" ({e['hours_to_gone']} h)" if e["hours_to_gone"] is not None else "")
                   + f", status {e['status']} in run {e['last_reported_in']}")
    click.echo(f"rows removed in runs: {', '.join(purged_in) or 'none (no data found for it)'}")
    click.echo(f"{len(runs)} of {searched} reports name it"
               + (f"; {other_key} reports use another secret and were not searched" if other_key else ""))
