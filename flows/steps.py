"""Run a targeted operation's steps as Prefect tasks (`pipelines/operations/steps.py`).

`as_task` is the `step` the flows hand to `pipelines.operations.targeted`: each step becomes a task
named after it, so the run shows Extract, Match, Purge, Verify, Publish, Report; retries go on the
steps marked `retry` (reads), never on bad input (flows/retry.py). The CLI and the HTTP API run the
same steps without Prefect.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from flows.retry import retry_unless_input_error

P = ParamSpec("P")
R = TypeVar("R")

_TASKS: dict[tuple[str, Callable[..., Any], bool], Task[Any, Any]] = {}
_LOCK = threading.Lock()


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
