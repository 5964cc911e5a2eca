"""How a targeted operation runs its steps: one implementation, two ways of running it.

`pipelines.operations.targeted` writes each operation (ClearUserData, the ingest guard) once, as a
sequence of named steps: `step(name, fn)(...)`. The command line and the HTTP API pass `direct`, which
calls the step as it is (no Prefect: an answer someone waits for); `flows/` passes a wrapper that runs
each step as a Prefect task of that name, with retries on the steps marked `retry` (reads that may
be repeated safely). The order of the steps, the run lock, the reports and the chain are the same
either way, because they are written in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Step(Protocol):
    """`step(name, fn, retry=...)` returns what runs `fn`: `fn` itself, or a task wrapping it."""

    def __call__(self, name: str, fn: Callable[P, R], /, *, retry: bool = False) -> Callable[P, R]: ...


def direct(name: str, fn: Callable[P, R], /, *, retry: bool = False) -> Callable[P, R]:
    """Run the step in place (CLI, HTTP API): no orchestration, no retries."""
    return fn
