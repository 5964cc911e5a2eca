"""Ingest guard (§4): check a new batch against the blacklist before it joins the cleaned data.

The operation is `pipelines.operations.targeted.ingest_batch`, the one `gdpr-sweep ingest` runs; this
flow runs each of its steps as a Prefect task (flows/steps.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows import prefect_runs
from flows.steps import as_task
from pipelines.config.secret_blocks import with_secret_blocks
from pipelines.config.settings import load_settings
from pipelines.operations import targeted


@flow(name="ingest", log_prints=False)
def ingest(dataset: str, batch: str, config: str = "gdpr-sweep.toml", delete_raw: bool | None = None) -> dict[str, Any]:
    """Drop a batch's blacklisted rows and append the rest to `dataset` atomically; a batch seen
    before adds nothing. `delete_raw` overrides the configuration for the batch file."""
    settings = with_secret_blocks(load_settings(Path(config)))
    started = datetime.now(UTC)  # the run is named after the run id, as the sweep's (flows/prefect_runs.py)
    prefect_runs.name_runs(prefect_runs.run_tree(), targeted.new_run_id(started, "ingest"))
    summary = targeted.ingest_batch(settings, dataset, Path(batch), delete_raw, step=as_task, started=started)
    get_run_logger().info("ingest %s into %s: %d rows in, %d appended, %d dropped%s; report %s", summary["run_id"],
                          dataset, summary["rows_in"], summary["rows_appended"], summary["rows_dropped"],
                          " (duplicate batch)" if summary["duplicate"] else "", summary["report"])
    return summary
