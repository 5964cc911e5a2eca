"""What the Prefect UI shows for the nightly deployment's flow: artifacts on the run the user triggered
(the nightly parent, not the `gdpr_sweep` subflow), run names carrying the sweep's run id, and a Failed
state whose message is the one-line reason (issue 17)."""

from __future__ import annotations

from pipelines.config.settings import load_settings
from pipelines.registry.registry import Registry
from tests.report_support import PEOPLE, set_created_at, write_config, write_raw

KEYS = {"gdpr-sweep-report", "gdpr-sweep-dataset-profiles", "gdpr-sweep-dataset-events", "gdpr-sweep-deadline",
        "gdpr-sweep-residuals", "gdpr-sweep-report-html"}  # residuals: a first run scans ([scan] weekly)


def _runs_and_artifacts(parent_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        parent = client.read_flow_run(parent_id)
        (child,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))
        found = {}
        for run in (parent, child):
            arts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
            found[run.id] = {a.key: a for a in arts if a.key}  # unkeyed: Prefect's own result records
    return parent, child, found[parent.id], found[child.id]


def test_nightly_run_holds_the_artifacts_is_named_after_the_sweep_and_fails_with_one_line(prefect_harness,
                                                                                          tmp_path):
    from flows.sweep import nightly_sweep

    write_config(tmp_path, delete_raw=False)
    write_raw(tmp_path)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")
    record, _ = Registry(settings.blacklist_db).add(email=PEOPLE["bo"]["email"])
    set_created_at(settings.blacklist_db, record.blacklist_id, hours_ago=30)  # overdue: the run must fail

    state = nightly_sweep(config=str(settings.config_path), return_state=True)
    assert state.is_failed(), state
    (run_id,) = [p.name for p in settings.report_dir.iterdir() if p.is_dir()]
    html = settings.report_dir / run_id / "report.html"
    assert state.message == ("deadline missed: 1 blacklist entry older than 24 h with data still present; "
                             f"see {html}")

    parent, child, on_parent, on_child = _runs_and_artifacts(state.state_details.flow_run_id)
    assert (parent.name, child.name) == (f"gdpr_sweep_nightly-{run_id}", f"gdpr_sweep-{run_id}")
    assert set(on_parent) == KEYS and on_child == {}
    assert "DEADLINE MISSED" in on_parent["gdpr-sweep-report"].data
    assert on_parent["gdpr-sweep-report-html"].data == f"[HTML report {run_id}]({html.resolve().as_uri()})"
    assert all(a.task_run_id is None for a in on_parent.values())
