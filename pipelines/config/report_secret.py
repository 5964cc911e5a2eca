"""The operator's report secret: the key of the HMAC hashes that name people in reports.

Read at the edge (CLI and flow), never inside `pipelines/`. In order:

1. `GDPR_SWEEP_REPORT_SECRET`: the secret itself (at least 16 characters);
2. `GDPR_SWEEP_REPORT_SECRET_FILE`: a file holding it;
3. the Prefect Secret block `gdpr-sweep-report-secret`, where a Prefect API is at hand
   (pipelines/config/secret_blocks.py);
4. `<work_dir>/report-secret`: created on first use with 32 random bytes, mode 0600.

Keep the secret out of the report folder: with it, anyone holding the reports could test guessed
emails against them. Back it up: without it, `report lookup` cannot read older reports.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from pipelines.config.secret_blocks import REPORT_SECRET_BLOCK, secret_block
from pipelines.config.settings import Settings
from pipelines.core.errors import ConfigError

ENV_SECRET = "GDPR_SWEEP_REPORT_SECRET"
ENV_SECRET_FILE = "GDPR_SWEEP_REPORT_SECRET_FILE"
DEFAULT_NAME = "report-secret"
MIN_LENGTH = 16


def secret_path(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    configured = environ.get(ENV_SECRET_FILE)
    return Path(configured) if configured else settings.work_dir / DEFAULT_NAME


def report_secret(settings: Settings, environ: Mapping[str, str] | None = None, create: bool = True) -> bytes:
    """The secret as bytes; the default file is created (0600) when missing and `create` is true."""
    environ = os.environ if environ is None else environ
    direct = environ.get(ENV_SECRET)
    if direct:
        if len(direct) < MIN_LENGTH:
            raise ConfigError(f"{ENV_SECRET} is too short: use at least {MIN_LENGTH} characters")
        return direct.encode("utf-8")
    if not environ.get(ENV_SECRET_FILE):
        block = secret_block(REPORT_SECRET_BLOCK, environ)
        if block is not None:
            if len(block) < MIN_LENGTH:
                raise ConfigError(f"Prefect Secret block '{REPORT_SECRET_BLOCK}' is too short: "
                                  f"use at least {MIN_LENGTH} characters")
            return block.encode("utf-8")
    path = secret_path(settings, environ)
    if not path.exists():
        if environ.get(ENV_SECRET_FILE) or not create:
            raise ConfigError(f"{path}: report secret file not found (set {ENV_SECRET_FILE} or {ENV_SECRET})")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < MIN_LENGTH:
        raise ConfigError(f"{path}: report secret is too short: use at least {MIN_LENGTH} characters")
    return value.encode("utf-8")
