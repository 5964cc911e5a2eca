"""The CLI starts without importing s3fs and its botocore tree (~0.9 s): only an S3 location loads it
(pipelines/datasets/objectstore.py `filesystem`)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["gdpr_sweep.cli", "flows.sweep"])
def test_starting_does_not_import_s3fs(module):
    probe = f"import sys, {module}; print(sorted(m for m in ('s3fs', 'aiobotocore', 'botocore') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

