"""One implementation of ClearUserData and of the ingest guard (pipelines/operations/targeted.py): the
CLI and the HTTP API run its steps directly, the flows run the same steps as Prefect tasks. Both ways
must change the same rows and answer the same counts, and the flow must show each step as a task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.operations.targeted import clear_user_data, ingest_batch
from pipelines.registry.registry import Registry
from tests.flows.test_clear_user_data import E, lake
from tests.helpers import EVENT_SCHEMA, make_event, read_dataset

CLEAR_STEPS = {"load_entry", "extract", "load_holds", "match", "purge", "verify", "publish", "check_raw",
               "write_report"}
ROOT = Path(__file__).resolve().parents[2]
INGEST_STEPS = {"extract", "load_blacklist", "match", "purge", "verify", "publish", "write_report"}


def task_runs(state):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
            any_=[state.state_details.flow_run_id])))


def step_names(state) -> set[str]:
    return {r.name.rsplit("-", 1)[0] for r in task_runs(state) if r.state and r.state.is_completed()}


def run_name(state) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id).name


def dirs(tmp_path):
    """Two folders for two identical lakes: one for the direct call, one for the flow."""
    for name in ("direct", "flow"):
        (tmp_path / name).mkdir()
    return tmp_path / "direct", tmp_path / "flow"


def cleaned(settings) -> dict[str, list[dict]]:
    return {ds.name: read_dataset(ds).to_pylist() for ds in settings.datasets}


def without_run(summary: dict) -> dict:
    """The answer without what names the run or the entry (a run id, a random BlacklistId)."""
    run_id = summary.get("run_id", "-")
    return {k: v.replace(run_id, "<run>") if isinstance(v, str) else v for k, v in summary.items()
            if k not in ("report", "run_id", "BlacklistId", "message")}


def test_clear_flow_runs_the_same_steps_as_tasks_and_answers_like_the_direct_call(prefect_harness, tmp_path):
    from flows.clear_user_data import clear_user_data as clear_flow

    direct_lake, flow_lake = (lake(folder) for folder in dirs(tmp_path))
    direct_id = Registry(direct_lake.blacklist_db).add(email=E)[0].blacklist_id
    flow_id = Registry(flow_lake.blacklist_db).add(email=E)[0].blacklist_id

    answer = clear_user_data(direct_lake, direct_id, check_raw=True)
    state = clear_flow(blacklist_id=flow_id, config=str(flow_lake.config_path), check_raw_files=True,
                       return_state=True)
    flow_answer = state.result()

    assert without_run(flow_answer) == without_run(answer) and answer["rows_removed"] == 6
    assert cleaned(flow_lake) == cleaned(direct_lake)
    reports = [json.loads(open(a["report"]).read()) for a in (answer, flow_answer)]
    assert reports[0]["totals"] == reports[1]["totals"] and reports[0]["datasets"] == reports[1]["datasets"]
    assert [len(r["raw_copies"]["held"]) for r in reports] == [7, 7]
    assert step_names(state) == CLEAR_STEPS
    # named after its run id, the report folder's name, as the sweep's runs (no random name, no entry id)
    assert run_name(state) == f"clear_user_data-{Path(flow_answer['report']).parent.name}"
    assert Path(flow_answer["report"]).parent.name.endswith("-clear")


def test_clear_flow_does_not_retry_an_entry_that_does_not_exist(prefect_harness, tmp_path):
    from flows.clear_user_data import clear_user_data as clear_flow

    settings = lake(tmp_path)
    state = clear_flow(blacklist_id="no-such-entry", config=str(settings.config_path), return_state=True)

    assert state.is_failed()
    load = [r for r in task_runs(state) if r.name.startswith("load_entry")]
    assert len(load) == 1 and load[0].run_count == 1  # NotFound will not get better: no retry


def test_ingest_flow_runs_the_same_steps_as_tasks_and_answers_like_the_direct_call(prefect_harness, tmp_path):
    from flows.ingest import ingest

    lakes = [lake(folder) for folder in dirs(tmp_path)]
    for settings in lakes:
        Registry(settings.blacklist_db).add(email=E)
    batch = tmp_path / "landing" / "batch.parquet"
    batch.parent.mkdir()
    rows = [make_event(E, scope="shop"), make_event("new@example.com", device_id="d7"),
            make_event(device_id="d1", anonymous=True)]
    pq.write_table(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), batch)

    answer = ingest_batch(lakes[0], "events", batch)
    state = ingest(dataset="events", batch=str(batch), config=str(lakes[1].config_path), return_state=True)
    flow_answer = state.result()

    assert without_run(flow_answer) == without_run(answer)
    assert (answer["rows_in"], answer["rows_appended"], answer["rows_dropped"]) == (3, 1, 2)
    assert cleaned(lakes[1]) == cleaned(lakes[0])
    assert step_names(state) == INGEST_STEPS
    assert run_name(state) == f"ingest-{flow_answer['run_id']}" and flow_answer["run_id"].endswith("-ingest")
    assert Path(flow_answer["report"]).parent.name == flow_answer["run_id"]


def test_the_direct_call_needs_no_prefect():
    """The CLI and the HTTP API answer without a Prefect API: the operations import no Prefect."""
    code = ("import sys, pipelines.operations.targeted; "
            "sys.exit(1 if any(m.split('.')[0] == 'prefect' for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0
