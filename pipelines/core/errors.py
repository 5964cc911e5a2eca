"""The error hierarchy. Messages name what is wrong and where, never a person's data.

Each error carries the process exit code of §6: 1 failure while running, 2 invalid input or
usage, 3 not found.
"""

from __future__ import annotations


class SweepError(Exception):
    """A failure while running (exit code 1)."""

    exit_code = 1


class InputError(SweepError):
    """Invalid input or usage: bad email, scope, import file, configuration (exit code 2)."""

    exit_code = 2


class ConfigError(InputError):
    """The configuration file is missing, malformed or inconsistent."""


class SchemaError(InputError):
    """A dataset's files do not have the configured columns, or they have the wrong type."""


class DataFileError(InputError):
    """A Parquet file cannot be read: truncated, corrupt, or not Parquet."""


class NotFound(SweepError):
    """The thing asked for does not exist (exit code 3)."""

    exit_code = 3


class Busy(SweepError):
    """Another run holds the lock on the same working folder (exit code 1)."""


class ChangedWhileRead(SweepError):
    """A file changed (or vanished) between the moment the run read it and the moment it used it
    (exit code 1; nothing was published or deleted on its account, the next run takes it in)."""


class StorageError(SweepError):
    """The file system refused a write, link, rename or delete: disk full, permission denied, read-only
    (exit code 1). Retrying at once would not help."""


_OS_HINTS = {
    28: "no space left on the device", 122: "disk quota exceeded", 13: "permission denied",
    1: "operation not permitted", 30: "read-only file system", 2: "no such file or directory",
}


def storage_error(exc: OSError, path: object, doing: str,
                  outcome: str = "nothing was published; the previous version is intact") -> StorageError:
    """A one-line StorageError naming the file, what the run was doing with it, and what it left."""
    what = _OS_HINTS.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()
    return StorageError(f"{what} while {doing} {path}; fix that (free space, permissions) and run again; {outcome}")
