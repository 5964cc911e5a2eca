"""Secrets from Prefect Secret blocks, beside the environment and files (README "Run and schedule").

A deployment's flow runs on a worker whose environment the operator may not control; Prefect keeps
secrets as Secret blocks on its server instead. Each secret is looked up in this order, first
found wins: its environment variable, the file its `..._FILE` variable names, the Prefect Secret
block below, then the built-in default (for the report secret `work_dir/report-secret`, for S3 the
AWS credential chain; the HTTP API key has none).

| block name | holds | instead of |
| --- | --- | --- |
| `gdpr-sweep-report-secret` | the report secret (16+ characters) | `GDPR_SWEEP_REPORT_SECRET`(`_FILE`) |
| `gdpr-sweep-api-key` | the HTTP API key of `gdpr-sweep serve` | `GDPR_SWEEP_API_KEY`, `--api-key-file` |
| `gdpr-sweep-auditor-key` | the auditor's key of `gdpr-sweep serve` (reports only) | `GDPR_SWEEP_AUDITOR_KEY`, `--auditor-key-file` |
| `gdpr-sweep-s3-access-key-id` | S3 access key id | `[s3] access_key_id`, `AWS_ACCESS_KEY_ID` |
| `gdpr-sweep-s3-secret-access-key` | S3 secret access key | `[s3] secret_access_key`, `AWS_SECRET_ACCESS_KEY` |

Blocks are read only where a Prefect API is at hand: inside a flow run, or with `PREFECT_API_URL`
set (so `gdpr-sweep serve` and `gdpr-sweep report lookup` read the same blocks as the deployments).
No API is started just to look. A block that exists but cannot be read, or a server that does not
answer, is an error: falling back silently could hash reports under another secret.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from pipelines.config.settings import Settings
from pipelines.core.errors import ConfigError

REPORT_SECRET_BLOCK = "gdpr-sweep-report-secret"
API_KEY_BLOCK = "gdpr-sweep-api-key"
AUDITOR_KEY_BLOCK = "gdpr-sweep-auditor-key"
S3_KEY_ID_BLOCK = "gdpr-sweep-s3-access-key-id"
S3_SECRET_BLOCK = "gdpr-sweep-s3-secret-access-key"


def prefect_api_at_hand(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    if environ.get("PREFECT_API_URL"):
        return True
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def secret_block(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the Prefect Secret block `name`; None without a Prefect API or without the block."""
    if not prefect_api_at_hand(environ):
        return None
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            doc = client.read_block_document_by_name(name, block_type_slug="secret", include_secrets=True)
    except ObjectNotFound:
        return None
    except Exception as exc:  # unreachable server, refused request: say which block, not the traceback
        raise ConfigError(f"cannot read Prefect Secret block '{name}': {type(exc).__name__}") from None
    value = (doc.data or {}).get("value")
    if value is not None and hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"Prefect Secret block '{name}' must hold a non-empty string")
    return value.strip()


def with_secret_blocks(settings: Settings, environ: Mapping[str, str] | None = None) -> Settings:
    """`settings` with S3 keys from the Secret blocks, when neither `[s3]` nor the AWS variables give them."""
    environ = os.environ if environ is None else environ
    s3 = settings.s3
    if (s3.access_key_id and s3.secret_access_key) or environ.get("AWS_ACCESS_KEY_ID") or environ.get("AWS_PROFILE"):
        return settings
    key_id, secret = secret_block(S3_KEY_ID_BLOCK, environ), secret_block(S3_SECRET_BLOCK, environ)
    if key_id is None and secret is None:
        return settings
    if key_id is None or secret is None:
        raise ConfigError(f"create both Prefect Secret blocks '{S3_KEY_ID_BLOCK}' and '{S3_SECRET_BLOCK}', "
                          "or neither")
    return _replace(settings, s3=_replace(s3, access_key_id=key_id, secret_access_key=secret))


def _replace(obj, **changes):  # type: ignore[no-untyped-def]
    """A copy with `changes`: dataclasses and pydantic models alike."""
    if hasattr(obj, "model_copy"):
        return obj.model_copy(update=changes)
    return dataclasses.replace(obj, **changes)
