"""What a sweep shows in Prefect, and where: on the flow run the user triggered (README "Run and schedule").

A deployment runs `nightly_sweep`, which runs `gdpr_sweep` as a subflow; `gdpr-sweep sweep` runs
`gdpr_sweep` alone. Either way the artifacts (report summary, one table per dataset, the deadline
table, a link to the HTML report) go to the root of the run tree, the run a user opens in the UI,
and every run of the tree is named after the sweep's run id (`gdpr_sweep_nightly-<run_id>`), so the
UI, the report folder `report_dir/<run_id>/` and `gdpr-sweep report show <run_id>` agree. The
ClearUserData and ingest flows name their runs the same way (`clear_user_data-<run_id>`,
`ingest-<run_id>`): a run id is a time and a kind, never a blacklist id or anything personal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import LinkArtifact, MarkdownArtifact, TableArtifact
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.states import Failed, State

from pipelines.core.errors import SweepError
from pipelines.reporting import report as reports
from pipelines.reporting import residual_report


def run_tree() -> list[tuple[UUID, str]]:
    """(flow run id, flow name) from the current flow run up to the root run, the one triggered."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return []
    chain: list[tuple[UUID, str]] = []
    with get_client(sync_client=True) as client:
        run = ctx.flow_run
        while True:
            flow = client.read_flow(run.flow_id)
            chain.append((run.id, flow.name))
            if run.parent_task_run_id is None or len(chain) > 16:
                return chain
            parent_task = client.read_task_run(run.parent_task_run_id)
            if parent_task.flow_run_id is None:
                return chain
            run = client.read_flow_run(parent_task.flow_run_id)


def name_runs(tree: list[tuple[UUID, str]], run_id: str) -> None:
    """Name every run of the tree `<flow name>-<run_id>` (none outside a flow run: nothing to name)."""
    if not tree:
        return
    with get_client(sync_client=True) as client:
        for flow_run_id, flow_name in tree:
            client.update_flow_run(flow_run_id, name=f"{flow_name}-{run_id}")


def artifact_key(name: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "dataset"


def report_link(path: str, report_url: str | None) -> str:
    """Where the HTML report can be opened: its uploaded copy when `report_url` is set, else the file."""
    html = Path(path).with_suffix(".html")
    if report_url:
        return f"{report_url.rstrip('/')}/{html.parent.name}/{html.name}"
    return html.resolve().as_uri()


def publish_report_artifacts(tree: list[tuple[UUID, str]], written: dict[str, Any], report_url: str | None) -> None:
    """The report on the triggered (root) flow run: summary, one table per dataset, the deadline table,
    a link to the HTML page. Called from the flow body, not a task, so no task run owns them. Outside a
    flow run (no Prefect server: docs/decisions/0291) there is no run to show them on: the report is all."""
    if not tree:
        return
    target = tree[-1][0] if tree else None
    report, path = written["report"], written["path"]
    run_id = report["run"]["run_id"]
    MarkdownArtifact(markdown=reports.summary_markdown(report, path), key="gdpr-sweep-report",
                     description=f"gdpr-sweep report {run_id}", flow_run_id=target).create()
    for d in report["datasets"]:
        TableArtifact(table=reports.dataset_table(d), key=f"gdpr-sweep-dataset-{artifact_key(d['name'])}",
                      description=f"{d['name']}: files, rows in/out/removed, output SHA-256",
                      flow_run_id=target).create()
    TableArtifact(table=reports.deadline_table(report), key="gdpr-sweep-deadline",
                  description="Blacklist entries: created, first verified gone, rows still present",
                  flow_run_id=target).create()
    residuals = report.get("residuals")
    if residuals and residuals.get("scanned"):
        TableArtifact(table=residual_report.table_rows(residuals), key="gdpr-sweep-residuals",
                      description=f"Residual scan: {residuals['status']} (rows per column and BlacklistId, never "
                                  "a value)", flow_run_id=target).create()
    LinkArtifact(link=report_link(path, report_url), link_text=f"HTML report {run_id}", key="gdpr-sweep-report-html",
                 description="The run's sealed HTML report (report.html)", flow_run_id=target).create()


def failed_with_reason(exc: SweepError) -> State:
    """The flow run's final state for an expected failure: Failed, its message the one-line reason
    (what `gdpr-sweep` prints after `error:`), which alerts and the UI's run list show as is."""
    message = " ".join(str(exc).split())
    get_run_logger().error("failed: %s", message)
    return Failed(message=message)
