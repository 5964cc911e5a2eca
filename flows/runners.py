"""Which task runner the sweep's per-file tasks run on (`[sweep] task_runner`, docs/decisions/0009).

`local`: Prefect's thread pool in the flow's process, at most one thread per core. `dask`:
prefect-dask's DaskTaskRunner on an existing scheduler (`dask_address`), or on a local cluster of
`dask_workers` processes with one thread each. The flow's results do not depend on the choice.
"""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from pipelines.config.settings import Settings


def task_runner_for(settings: Settings) -> TaskRunner:  # type: ignore[type-arg]
    if settings.task_runner == "dask":
        from flows.dask_runner import ReportingDaskTaskRunner

        if settings.dask_address:
            return ReportingDaskTaskRunner(address=settings.dask_address)
        # One thread per worker process: DuckDB and pyarrow already use the cores they are given.
        return ReportingDaskTaskRunner(cluster_kwargs={"n_workers": settings.dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=max(1, os.cpu_count() or 1))


def partitions_per_dataset(settings: Settings) -> int:
    """How many tasks each per-partition step gets per dataset: one in-process (a task costs ~0.2 s of
    orchestration), two per Dask worker so a slow partition does not idle the others."""
    return 2 * settings.dask_workers if settings.task_runner == "dask" else 1
