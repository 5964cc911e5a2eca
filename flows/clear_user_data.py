"""ClearUserData (§4): remove one blacklist entry's data now rather than at the next nightly sweep.

The operation is `pipelines.operations.targeted.clear_user_data`, the one the CLI and the HTTP API
run; this flow runs each of its steps as a Prefect task (flows/steps.py).
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


@flow(name="clear_user_data", log_prints=False)
def clear_user_data(blacklist_id: str, config: str = "gdpr-sweep.toml", check_raw_files: bool = False) -> dict[str, Any]:
    """Remove one entry's profiles, events and linked devices now; NotFound when no profile carries it.
    With `check_raw_files`, the report also counts the entry's rows in each raw snapshot file still held."""
    settings = with_secret_blocks(load_settings(Path(config)))
    started = datetime.now(UTC)  # the run is named after the run id, as the sweep's (flows/prefect_runs.py)
    prefect_runs.name_runs(prefect_runs.run_tree(), targeted.new_run_id(started, "clear"))
    summary = targeted.clear_user_data(settings, blacklist_id, check_raw_files, step=as_task, started=started)
    get_run_logger().info("clear %s: entry %s, %d rows removed from %d files; report %s",
                          Path(summary["report"]).parent.name, blacklist_id, summary["rows_removed"],
                          summary["files_rewritten"], summary["report"])
    return summary
