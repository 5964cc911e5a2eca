"""How a flow's steps run (docs/decisions/0291-cli-runs-without-a-server.md).

`as_task` makes a Prefect task of a targeted operation's step (`pipelines/operations/targeted.py`):
each step becomes a task named after it, so the run shows Extract, Match, Purge, Verify, Publish,
Report; retries go on the steps marked `retry` (reads), never on bad input (flows/retry.py). The CLI
and the HTTP API run the same steps without Prefect.

The sweep's flow body calls its tasks through `run`, `submit` and `map`. Inside a flow run (a
deployment, a worker, `gdpr-sweep sweep` with a Prefect server configured) these are Prefect's own
calls: each step is a task run the server records. Outside one (`gdpr-sweep sweep` with no server: the
flow's function called directly) each step is the task's own function, called in this process: the
same code, the same arguments, the same retries on I/O steps (the task's `retries`,
`retry_delay_seconds` and the `flows/retry.py` rule), mapped steps on a thread pool of one thread per
core like Prefect's `ThreadPoolTaskRunner`. No API is contacted, so no temporary server is started.

`stage(name, fn)` groups such calls: `fn` is a part of the flow body (the match's two passes, the
purge of every dataset, the verification) that runs as ONE task named `name` when the flow's task
runner is Prefect's thread pool: its steps then run inside that task as they run without a server
(threads, the steps' own retries), so the run shows Extract, Match, Purge, Verify as one task each
instead of one per partition and per pass (each task run costs Prefect's engine tens of
milliseconds). On any other runner (a Dask cluster) `fn` runs in the flow body and its steps are
mapped tasks the runner spreads (docs/decisions/0321-one-task-per-stage.md).
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import BaseAnnotation, quote

from flows.retry import retry_unless_input_error, worth_retrying

P = ParamSpec("P")
R = TypeVar("R")

_TASKS: dict[tuple[str, Callable[..., Any], bool], Task[Any, Any]] = {}
_LOCK = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_INSIDE_STAGE: contextvars.ContextVar[bool] = contextvars.ContextVar("gdpr_sweep_inside_stage", default=False)


def as_task(name: str, fn: Callable[P, R], /, *, retry: bool = False) -> Callable[P, R]:
    """The Prefect task running `fn` under `name` (made once per step, then reused)."""
    key = (name, fn, retry)
    with _LOCK:
        made = _TASKS.get(key)
        if made is None:
            wrap = (task(name=name, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2,
                         retry_condition_fn=retry_unless_input_error) if retry
                    else task(name=name, cache_policy=NO_CACHE))
            made = _TASKS[key] = wrap(fn)
    return cast(Callable[P, R], made)


def in_flow_run() -> bool:
    """Whether `run`, `submit` and `map` make task runs: in a flow run's body, not inside a stage's task."""
    return FlowRunContext.get() is not None and not _INSIDE_STAGE.get()


def spreads() -> bool:
    """Whether the flow run's task runner may run tasks outside this process (a Dask cluster): then each
    partition is a task of its own, the unit the runner spreads."""
    ctx = FlowRunContext.get()
    return ctx is not None and not isinstance(ctx.task_runner, ThreadPoolTaskRunner)


def logger(name: str) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The flow run's logger (its lines stored with the run), or the module's logger outside a run."""
    return get_run_logger() if FlowRunContext.get() is not None else logging.getLogger(name)  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    """The value inside Prefect's `quote(...)` / `unmapped(...)` wrappers, as a task run would get it."""
    return value.value if isinstance(value, BaseAnnotation) else value


def _call(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The task's function with the task's retry settings (I/O hiccups retried, bad input never)."""
    fn: Callable[..., Any] = task.fn
    args, kwargs = tuple(_plain(a) for a in args), {k: _plain(v) for k, v in kwargs.items()}
    retries = int(task.retries or 0)
    delays = task.retry_delay_seconds
    for attempt in range(retries + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempt == retries or not worth_retrying(exc):
                raise
            delay = float((delays[min(attempt, len(delays) - 1)] if isinstance(delays, list) else delays) or 0)
            # the stage's task run (or the CLI's log) shows the retry a task run of its own would have shown
            logger(__name__).warning("step %s failed (%s); retry %d of %d in %g s", task.name, type(exc).__name__,
                                     attempt + 1, retries, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _inside_stage(fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
    """A stage's task body: `fn` with its steps run in place (threads, their own retries)."""
    token = _INSIDE_STAGE.set(True)
    try:
        return fn(*args, **kwargs)
    finally:
        _INSIDE_STAGE.reset(token)


def stage(name: str, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run `fn(*args, **kwargs)`, a part of the flow body that calls `run`/`submit`/`map`: as one task
    named `name` in a flow run on the thread pool; in the flow body (its steps mapped tasks) on a
    runner that spreads them; in place outside a flow run. Its arguments are passed to the task as
    they are (`quote`): Prefect does not walk them looking for futures."""
    if not in_flow_run() or spreads():
        return fn(*args, **kwargs)
    step: Any = as_task(name, _inside_stage)  # called with quoted arguments, unwrapped before it runs
    return cast(R, step(quote(fn), quote(args), quote(kwargs)))


def run(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one step now and return its result."""
    return task(*args, **kwargs) if in_flow_run() else _call(task, args, kwargs)


class _Done:
    """Futures of steps started outside a flow run, with the `.result()` of Prefect's futures."""

    def __init__(self, futures: list[Future[Any]], many: bool):
        self.futures, self.many = futures, many

    def result(self) -> Any:
        results = [f.result() for f in self.futures]
        return results if self.many else results[0]


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="gdpr-sweep-step")
    return _pool


def _start(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
    """`_call` on the pool, in a copy of the caller's context: inside a stage the step sees the stage's
    task run (its logger, Prefect's settings), as a task run of its own would."""
    return _executor().submit(contextvars.copy_context().run, _call, task, args, kwargs)


def submit(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Start one step; `.result()` waits for it (and raises its error)."""
    if in_flow_run():
        return task.submit(*args, **kwargs)
    return _Done([_start(task, args, kwargs)], many=False)


def map(task: Any, **kwargs: Any) -> Any:  # noqa: A001 - Prefect's name for it
    """Start the step once per element of the list arguments (`unmapped(...)` ones are shared);
    `.result()` returns the results in order."""
    if in_flow_run():
        return task.map(**kwargs)
    lengths = {len(v) for v in kwargs.values() if not isinstance(v, BaseAnnotation)}
    if len(lengths) > 1:
        raise ValueError(f"mapped arguments of {task.name} differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    calls = [{k: (v.value if isinstance(v, BaseAnnotation) else v[i]) for k, v in kwargs.items()} for i in range(n)]
    return _Done([_start(task, (), c) for c in calls], many=True)
