"""Shared fixtures. Prefect runs under one session-scoped test harness (a real local API)."""

from __future__ import annotations

import tempfile

import pytest

from tests.support import prefect_env
from tests.support.hypothesis_profiles import register_profiles

# Prefect reads these at import: keep its home out of the user's ~/.prefect, and quiet offline.
prefect_env.configure_process(tempfile.mkdtemp(prefix="gdpr-sweep-prefect-"))
register_profiles()


@pytest.fixture(scope="session")
def prefect_harness():
    """One real Prefect API (SQLite, migrated once) for every flow test."""
    with prefect_env.temporary_api():
        yield
