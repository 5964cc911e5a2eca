"""A real S3 API for the scale-out tests: moto's server on 127.0.0.1 and a free port, one per module."""

from __future__ import annotations

import os

import pytest

from pipelines.config.settings import S3Settings
from tests.support.procs import free_port

_AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture(scope="module")
def s3_server():
    """Start moto's S3 server; yield the S3Settings that reach it. The AWS variables it sets (pyarrow
    opens s3:// paths with them) are restored afterwards."""
    import logging

    from moto.server import ThreadedMotoServer

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
