"""The error hierarchy. Messages name what is wrong and where, never a person's data.

Each error carries the process exit code of SPEC §6: 1 failure while running, 2 invalid input or
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
