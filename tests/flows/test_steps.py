"""flows/steps.py: a stage is one task run on the thread pool, its steps keep their own retries (I/O
hiccups retried and logged on the stage's run, bad input never), and outside a flow run the same steps
run in place (docs/decisions/0321-one-task-per-stage.md, 0291)."""

from __future__ import annotations

import threading

import pytest
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows import steps
from flows.retry import retry_unless_input_error
from pipelines.core.errors import DataFileError


class Flaky:
    """Fails the first call per key with `error`, then answers; counts every call."""

    def __init__(self, error: Exception):
        self.error, self.calls, self.lock = error, {}, threading.Lock()

    def __call__(self, key: str, add: int) -> str:
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            first = self.calls[key] == 1
        if first:
            raise self.error
        return f"{key}+{add}"


def _step(fn: Flaky):
    return task(name="read_part", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=0,
                retry_condition_fn=retry_unless_input_error)(fn)


def _body(step, keys: list[str]) -> list[str]:
    """A stage's body as the sweep writes them: mapped steps, then one more step."""
    parts = steps.map(step, key=keys, add=unmapped(1)).result()
    return [*parts, steps.run(step, "last", 2)]


def test_outside_a_flow_run_steps_run_in_place_with_their_retries():
    flaky = Flaky(OSError("hiccup"))
    assert steps.stage("match", _body, _step(flaky), ["a", "b"]) == ["a+1", "b+1", "last+2"]
    assert flaky.calls == {"a": 2, "b": 2, "last": 2}

    bad = Flaky(DataFileError("part-1.parquet: not a Parquet file"))
    with pytest.raises(DataFileError):
        steps.stage("match", _body, _step(bad), ["a", "b"])
    assert set(bad.calls.values()) == {1}  # bad input: no retry


def _task_runs_and_logs(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # the run's log lines are sent in batches: send what is queued first
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return runs, logs


def test_in_a_flow_run_a_stage_is_one_task_run_and_shows_the_retries_of_its_steps(prefect_harness):
    flaky = Flaky(OSError("hiccup"))

    @flow(name="stage-test")
    def staged(keys: list[str]) -> list[str]:
        return steps.stage("match", _body, _step(flaky), keys)

    state = staged(["a", "b"], return_state=True)
    assert state.is_completed() and state.result() == ["a+1", "b+1", "last+2"]
    assert flaky.calls == {"a": 2, "b": 2, "last": 2}
    runs, logs = _task_runs_and_logs(state.state_details.flow_run_id)
    assert [r.name.rsplit("-", 1)[0] for r in runs] == ["match"]  # not one per step or partition
    retries = [log.message for log in logs if "retry" in log.message]
    assert sorted(retries) == ["step read_part failed (OSError); retry 1 of 2 in 0 s"] * 3
    assert {log.task_run_id for log in logs if "retry" in log.message} == {runs[0].id}


def test_in_a_flow_run_a_stage_fails_with_its_step_error_once(prefect_harness):
    bad = Flaky(DataFileError("part-1.parquet: not a Parquet file"))

    @flow(name="stage-test-failing")
    def staged(keys: list[str]) -> list[str]:
        return steps.stage("match", _body, _step(bad), keys)

    state = staged(["a"], return_state=True)
    assert state.is_failed()
    with pytest.raises(DataFileError, match="part-1.parquet"):
        state.result()
    runs, _ = _task_runs_and_logs(state.state_details.flow_run_id)
    assert [(r.name.rsplit("-", 1)[0], r.state.type.value, r.run_count) for r in runs] == [("match", "FAILED", 1)]
    assert bad.calls == {"a": 1}
