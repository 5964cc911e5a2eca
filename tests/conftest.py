"""Shared fixtures. Prefect runs under one session-scoped test harness (a real local API); S3 is moto's
real server on 127.0.0.1 (`s3_server`, one per test module, used by tests/scaleout and tests/contract)."""

from __future__ import annotations

import os
import tempfile

import pytest

from tests.support import prefect_env
from tests.support.hypothesis_profiles import register_profiles
from tests.support.procs import free_port

# Prefect reads these at import: keep its home out of the user's ~/.prefect, and quiet offline.
prefect_env.configure_process(tempfile.mkdtemp(prefix="gdpr-sweep-prefect-"))
register_profiles()

_AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture(scope="session")
def prefect_harness():
    """One real Prefect API (SQLite, migrated once) for every flow test."""
    with prefect_env.temporary_api():
        yield


@pytest.fixture(scope="module")
def s3_server():
    """Start moto's S3 server (a real HTTP S3 API on 127.0.0.1 and a free port); yield the S3Settings
    that reach it. The AWS variables it sets (pyarrow opens s3:// paths with them) are restored
    afterwards."""
    import logging

    from moto.server import ThreadedMotoServer

    from pipelines.config.settings import S3Settings
    from pipelines.datasets import objectstore

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    saved = {k: os.environ.get(k) for k in _AWS_VARS}
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    settings = S3Settings(endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1",
                          access_key_id="testing", secret_access_key="testing")
    objectstore.configure(settings)
    try:
        yield settings
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
