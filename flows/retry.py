"""When a task's retry is worth it: I/O hiccups yes, bad input never (it will not get better)."""

from __future__ import annotations

from typing import Any

from pipelines.core.errors import ChangedWhileRead, InputError, NotFound, StorageError


def retry_unless_input_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry unless the task failed with an InputError (exit code 2:
    corrupt file, schema mismatch, bad configuration), a StorageError (disk full, permission denied),
    ChangedWhileRead or NotFound (no such blacklist entry), so these fail at once with one message."""
    try:
        state.result()
    except (InputError, StorageError, ChangedWhileRead, NotFound):  # bad input, disk full, changed, absent
        return False
    except BaseException:
        return True
    return True
