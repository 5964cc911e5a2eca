"""`gdpr-sweep config check | schema`: validate the configuration file, write its JSON Schema.

`check` loads the file exactly as every other command does (types, ranges, unknown keys, locations)
and prints what it found, without touching any dataset; `schema` prints docs/config.schema.json's
content (or writes it with `--output`), from the models in `pipelines/config/settings.py`.
"""

from __future__ import annotations

from pathlib import Path

import click

from gdpr_sweep.cli_common import Context, emit, handle_errors, pass_ctx


@click.group()
def config() -> None:
    """Check the configuration file, or write its JSON Schema for editors."""


@config.command()
@pass_ctx
@handle_errors
def check(ctx: Context) -> None:
    """Validate the configuration file; exit 2 with one line naming file and key if it is wrong."""
    settings = ctx.settings
    emit({"config": str(settings.config_path), "valid": True,
          "datasets": [{"name": ds.name, "kind": ds.kind, "format": ds.format, "location": ds.location}
                       for ds in settings.datasets]})


@config.command()
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the schema to this file (e.g. docs/config.schema.json) instead of stdout.")
@handle_errors
def schema(output: Path | None) -> None:
    """Print (or write) the JSON Schema of the configuration file."""
    from pipelines.config.schema import config_schema_text

    text = config_schema_text()
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"schema: {output}")
