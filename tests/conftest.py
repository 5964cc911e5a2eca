"""Shared fixtures. Prefect runs under one session-scoped test harness (a real local API)."""

from __future__ import annotations

import os
import tempfile

import pytest

# Prefect reads these at import: keep its home out of the user's ~/.prefect, and quiet offline.
_PREFECT_HOME = tempfile.mkdtemp(prefix="gdpr-sweep-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@pytest.fixture(scope="session")
def prefect_harness():
    """One real Prefect API (SQLite, migrated once) for every flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
