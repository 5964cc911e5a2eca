"""`gdpr-sweep report certificate | verify-certificate`: the erasure certificate of one request
(gdpr_sweep/certificates.py, pipelines/reporting/certificate.py), written and checked offline against the chain."""

from __future__ import annotations

from pathlib import Path

import click

from gdpr_sweep.certificates import default_folder, make_certificate, resolve_id
from gdpr_sweep.cli_common import Context, emit, handle_errors, pass_ctx
from gdpr_sweep.cli_report import report
from pipelines.core.errors import InputError
from pipelines.reporting import certificate


@report.command(name="certificate")
@click.option("--blacklist-id", help="The entry (request) to certify.")
@click.option("--email", help="Or the person's email: found through the reports' keyed hashes, never stored.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for the two files (default: report_dir/_certificates).")
@pass_ctx
@handle_errors
def certificate_command(ctx: Context, blacklist_id: str | None, email: str | None, out: Path | None) -> None:
    """Write one request's erasure certificate: certificate-<id>.json and .html (exit 3: no report names it)."""
    bid = resolve_id(ctx.settings, blacklist_id, email)
    doc, html = make_certificate(ctx.settings, bid)
    json_path, html_path = certificate.write(out or default_folder(ctx.settings), doc, html)
    emit({"BlacklistId": bid, "status": doc["completion"]["status"], "json": str(json_path), "html": str(html_path),
          "certificate_sha256": doc["integrity"]["certificate_sha256"], "chain_head": doc["chain"]["head"]})


@report.command(name="verify-certificate")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--report-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The report chain to check against (default: the configuration's report_dir).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
@handle_errors
def verify_certificate_command(ctx: Context, file: Path, report_dir: Path | None, as_json: bool) -> None:
    """Check a certificate (its .json or .html) against the report chain, offline (exit 1 on any problem)."""
    if file.suffix not in (".json", ".html"):
        raise InputError(f"{file}: expected a certificate's .json or .html file")
    problems = certificate.verify_certificate(file, report_dir or ctx.settings.report_dir)
    if as_json:
        emit({"ok": not problems, "problems": problems})
    else:
        for p in problems:
            click.echo(f"PROBLEM: {p}")
        click.echo("certificate verified against the report chain" if not problems
                   else f"{len(problems)} problems: the certificate does not hold")
    if problems:
        raise SystemExit(1)
