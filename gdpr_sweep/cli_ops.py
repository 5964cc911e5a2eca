"""`gdpr-sweep ingest | clear-user-data | suppress`, and the `--suppression` list of `blacklist export`.

These run `pipelines.operations.targeted` directly, without Prefect: they are answers a person or the HTTP
API waits for (the flows in `flows/ingest.py` and `flows/clear_user_data.py` run the same functions,
each step as a Prefect task, for scheduled runs). Output is JSON without emails; exit codes as everywhere (0, 1, 2, 3 not found).
"""

from __future__ import annotations

from pathlib import Path

import click

from gdpr_sweep.cli_common import Context, emit, handle_errors, pass_ctx
from pipelines.operations.targeted import clear_user_data as run_clear_user_data
from pipelines.operations.targeted import export_suppression_list, ingest_batch, suppress_file

_RAW_FLAG = click.option("--delete-raw/--keep-raw", default=None,
                         help="Delete (or keep) the consumed raw file(s) after success; default: the "
                              "configuration's delete_raw.")


@click.command()
@click.argument("dataset")
@click.argument("batch", type=click.Path(path_type=Path, dir_okay=False))
@_RAW_FLAG
@pass_ctx
@handle_errors
def ingest(ctx: Context, dataset: str, batch: Path, delete_raw: bool | None) -> None:
    """Guard BATCH into DATASET: drop its blacklisted rows, append the rest atomically.

    BATCH is Parquet with the dataset's schema, or JSON lines (.jsonl/.ndjson) of events, converted
    with the dataset's schema. A batch ingested before is reported as a duplicate and adds nothing.
    """
    emit(ingest_batch(ctx.settings, dataset, batch, delete_raw))


@click.command(name="clear-user-data")
@click.argument("blacklist_id")
@click.option("--check-raw", is_flag=True,
              help="Also count the entry's rows in each raw snapshot file still held (reads them all).")
@pass_ctx
@handle_errors
def clear_user_data(ctx: Context, blacklist_id: str, check_raw: bool) -> None:
    """Remove one blacklist entry's profiles, events and linked devices now (Optimizely ClearUserData).

    Exit 3 when there is no such entry or no profile carries its email (nothing is changed then).
    """
    emit(run_clear_user_data(ctx.settings, blacklist_id, check_raw))


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--allowed", type=click.Path(path_type=Path, dir_okay=False),
              help="Where the rows that may be sent go (default: FILE's name + .allowed).")
@click.option("--failed", type=click.Path(path_type=Path, dir_okay=False),
              help="Where the failed rows go, with a `reason` column (default: FILE's name + .failed).")
@click.option("--email-column", help="Column with the recipients: an address, `Name <address>`, a `mailto:` URI or "
                                     "a comma-separated list of them (default: a column named 'email').")
@click.option("--user-id-column", help="Column with the recipient's external user id.")
@click.option("--scope-column", help="Column with each row's scope (business unit).")
@click.option("--scope", help="Scope of every row when there is no scope column (default: DefaultScope).")
@pass_ctx
@handle_errors
def suppress(ctx: Context, file: Path, allowed: Path | None, failed: Path | None, email_column: str | None,
             user_id_column: str | None, scope_column: str | None, scope: str | None) -> None:
    """Split an outgoing message or audience FILE (CSV or Parquet) into allowed and failed rows.

    Failed rows carry the reason `blacklisted` (any recipient is blacklisted: no communication, not
    even transactional) or `unparseable` (the recipient field cannot be read as addresses).
    """
    emit(suppress_file(ctx.settings, file, allowed, failed, email_column=email_column,
                       user_id_column=user_id_column, scope_column=scope_column, scope=scope))


def write_suppression_list(ctx: Context, out: Path | None, hashed: bool) -> None:
    """`gdpr-sweep blacklist export --suppression [--hashed] [FILE]`: one normalized email (or its
    SHA-256) per line, to FILE (atomically, mode 0640; a JSON summary is printed) or stdout."""
    text, summary = export_suppression_list(ctx.settings, out, hashed=hashed)
    if out is None:
        click.echo(text, nl=False)
    else:
        emit(summary)
