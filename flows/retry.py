"""When a task's retry is worth it: I/O hiccups yes, bad input never (it will not get better)."""

from __future__ import annotations

from typing import Any

from pipelines.core.errors import ChangedWhileRead, InputError, NotFound, StorageError


def worth_retrying(exc: BaseException) -> bool:
    """False for an InputError (exit code 2: corrupt file, schema mismatch, bad configuration), a
    StorageError (disk full, permission denied), ChangedWhileRead or NotFound (no such blacklist
    entry), so these fail at once with one message; True for any other error (an I/O hiccup may pass)."""
    return not isinstance(exc, (InputError, StorageError, ChangedWhileRead, NotFound))


def retry_unless_input_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry unless `worth_retrying` says the error will not get better."""
    try:
        state.result()
    except BaseException as exc:  # the task's error, re-raised by its state
        return worth_retrying(exc)
    return True
