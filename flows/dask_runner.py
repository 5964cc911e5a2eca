"""prefect-dask's task runner, with its workers reporting to the flow's own Prefect API.

A Dask worker process runs each task with Prefect's engine, which needs an API. A worker that has no
`PREFECT_API_URL` in its environment starts a temporary API of its own (~14 s each, on a port nobody
chose), and the task runs it records there are lost when it exits. `gdpr-sweep sweep` runs on such a
temporary API (the URL is in Prefect's settings, not in the environment), so the local cluster this
runner starts gets the flow's API URL, once the flow runs and the URL is known, in its workers'
environment. Workers of an existing cluster (`dask_address`) must be started with `PREFECT_API_URL`
pointing at the server the flow uses (README "Scaling out"); a temporary API on 127.0.0.1 cannot be
reached from another machine.
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect_dask import DaskTaskRunner
from prefect_dask.client import PrefectDaskClient


def flow_api_url() -> str | None:
    """The API the current flow run reports to (a server, or the temporary local one)."""
    ctx = FlowRunContext.get()
    client = ctx.client if ctx is not None else None
    if client is None:
        with get_client(sync_client=True) as fresh:
            return str(fresh.api_url).rstrip("/")
    return str(client.api_url).rstrip("/")


class ReportingDaskTaskRunner(DaskTaskRunner):
    """DaskTaskRunner whose local cluster's workers get `PREFECT_API_URL` = the flow's API."""

    @property
    def client(self) -> PrefectDaskClient:
        if self._client is None and not self.address and self._cluster is None:
            url = flow_api_url()
            if url:
                env: dict[str, Any] = dict(self.cluster_kwargs.get("env") or {})
                env.setdefault("PREFECT_API_URL", url)
                self.cluster_kwargs = {**self.cluster_kwargs, "env": env}
        return super().client
