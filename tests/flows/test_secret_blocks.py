"""Secrets from real Prefect Secret blocks on the test API (pipelines/config/secret_blocks.py): the report
secret, the S3 keys and the HTTP API key; the environment still wins; no API, no lookup."""

from __future__ import annotations

import json
import os

import pytest

from pipelines.config.report_secret import report_secret
from pipelines.config.secret_blocks import (
    API_KEY_BLOCK,
    REPORT_SECRET_BLOCK,
    S3_KEY_ID_BLOCK,
    S3_SECRET_BLOCK,
    with_secret_blocks,
)
from pipelines.config.settings import load_settings
from pipelines.core.errors import ConfigError, InputError
from pipelines.reporting import report as reports
from tests.report_support import write_config, write_raw

BLOCKS = {REPORT_SECRET_BLOCK: "block-report-secret-0123456789", API_KEY_BLOCK: "block-api-key-0123456789abcdef",
          S3_KEY_ID_BLOCK: "AKIABLOCKKEYID", S3_SECRET_BLOCK: "block-s3-secret-access-key"}
_SECRET_VARS = ("GDPR_SWEEP_REPORT_SECRET", "GDPR_SWEEP_REPORT_SECRET_FILE", "GDPR_SWEEP_API_KEY",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE")


@pytest.fixture
def secret_blocks(prefect_harness, monkeypatch):
    """The four Secret blocks on the session's Prefect API; deleted afterwards (other tests must not see them)."""
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client

    for var in _SECRET_VARS:
        monkeypatch.delenv(var, raising=False)
    for name, value in BLOCKS.items():
        Secret(value=value).save(name, overwrite=True)
    yield BLOCKS
    with get_client(sync_client=True) as client:
        for name in BLOCKS:
            doc = client.read_block_document_by_name(name, block_type_slug="secret")
            client.delete_block_document(doc.id)


def test_a_sweep_reads_the_report_secret_and_s3_keys_from_secret_blocks(secret_blocks, tmp_path):
    from prefect import flow

    from flows.sweep import gdpr_sweep

    write_config(tmp_path, delete_raw=True)
    write_raw(tmp_path)
    settings = load_settings(tmp_path / "gdpr-sweep.toml")

    @flow
    def inside_a_flow():
        s = with_secret_blocks(settings)
        return s.s3.access_key_id, s.s3.secret_access_key, report_secret(settings)

    assert inside_a_flow() == (BLOCKS[S3_KEY_ID_BLOCK], BLOCKS[S3_SECRET_BLOCK], BLOCKS[REPORT_SECRET_BLOCK].encode())
    report = json.loads(open(gdpr_sweep(config=str(settings.config_path))).read())
    assert report["identity_hash"]["key_id"] == reports.key_id(BLOCKS[REPORT_SECRET_BLOCK].encode())
    assert not (settings.work_dir / "report-secret").exists()  # the default file was not needed

    # The environment wins over a block; outside a flow and without PREFECT_API_URL no block is read.
    env_secret = "env-report-secret-0123456789"
    assert report_secret(settings, environ={"GDPR_SWEEP_REPORT_SECRET": env_secret}) == env_secret.encode()
    assert "PREFECT_API_URL" not in os.environ
    assert report_secret(settings, environ={}) != BLOCKS[REPORT_SECRET_BLOCK].encode()
    assert (settings.work_dir / "report-secret").exists()
    assert with_secret_blocks(settings, environ={"AWS_ACCESS_KEY_ID": "x"}).s3.access_key_id is None


def test_serve_reads_the_api_key_from_a_secret_block_with_prefect_api_url(secret_blocks, monkeypatch):
    from prefect.settings import PREFECT_API_URL

    from gdpr_sweep.cli import cli  # noqa: F401  (cli_serve is imported through the command group)
    from gdpr_sweep.cli_serve import resolve_api_key

    with pytest.raises(InputError, match="set an API key"):  # no Prefect API at hand: no block read
        resolve_api_key(None, False, "127.0.0.1")
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    assert resolve_api_key(None, False, "127.0.0.1") == BLOCKS[API_KEY_BLOCK]
    monkeypatch.setenv("GDPR_SWEEP_API_KEY", "env-api-key-0123456789abcdef")
    assert resolve_api_key(None, False, "127.0.0.1") == "env-api-key-0123456789abcdef"


def test_one_s3_block_without_the_other_is_refused(secret_blocks, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    with get_client(sync_client=True) as client:
        client.delete_block_document(client.read_block_document_by_name(S3_SECRET_BLOCK, "secret").id)
    from prefect.blocks.system import Secret

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    settings = load_settings(write_config(tmp_path))
    try:
        with pytest.raises(ConfigError, match="create both Prefect Secret blocks"):
            with_secret_blocks(settings)
    finally:
        Secret(value=BLOCKS[S3_SECRET_BLOCK]).save(S3_SECRET_BLOCK, overwrite=True)  # the fixture deletes it
