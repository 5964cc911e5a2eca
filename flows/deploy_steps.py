"""prefect.yaml's build step: where workers get the code, and which configuration the deployments read.

`prefect deploy --all` runs `source_defaults` once per deployment in the deploying checkout. Its
values are written into each deployment: the `git_clone` pull step (repository and ref) and the
`config` parameter. Each comes from an environment variable, else a default taken from the checkout
(README "Run and schedule"):

- `GDPR_SWEEP_REPO`: repository URL workers clone; default the checkout's `origin` remote, else the
  checkout's own folder (a worker on the same machine can clone that);
- `GDPR_SWEEP_REF`: branch or tag to clone; default the checkout's current branch;
- `GDPR_SWEEP_CONFIG`: the configuration file as workers see it; default this checkout's
  `gdpr-sweep.toml`, as an absolute path (a worker clones into a temporary folder, so a relative
  path would point into that clone).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipelines.core.errors import ConfigError


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def source_defaults() -> dict[str, str]:
    """{"repository", "ref", "config"} for the deployments, from the environment or this checkout."""
    root = _git("rev-parse", "--show-toplevel")
    repository = os.environ.get("GDPR_SWEEP_REPO") or _git("remote", "get-url", "origin") or root
    ref = os.environ.get("GDPR_SWEEP_REF") or _git("symbolic-ref", "--short", "-q", "HEAD")
    if not repository:
        raise ConfigError("not in a git checkout: set GDPR_SWEEP_REPO to the repository workers should clone")
    if not ref:
        raise ConfigError("the checkout has no current branch (detached HEAD): set GDPR_SWEEP_REF to a branch or tag")
    config = os.environ.get("GDPR_SWEEP_CONFIG") or str(Path("gdpr-sweep.toml").resolve())
    return {"repository": repository, "ref": ref, "config": config}


DOCKER_VARIABLES = {"image": "GDPR_SWEEP_IMAGE", "lake": "GDPR_SWEEP_LAKE", "config": "GDPR_SWEEP_CONFIG"}


def docker_settings() -> dict[str, str]:
    """{"image", "lake", "config"} for docker/prefect.yaml, from GDPR_SWEEP_IMAGE, GDPR_SWEEP_LAKE (an
    absolute folder, mounted into each container at the same path) and GDPR_SWEEP_CONFIG (inside it)."""
    values = {key: os.environ.get(var, "").strip() for key, var in DOCKER_VARIABLES.items()}
    missing = [DOCKER_VARIABLES[key] for key, value in values.items() if not value]
    if missing:
        raise ConfigError(f"set {', '.join(missing)} before deploying docker/prefect.yaml "
                          "(README 'Run and schedule', Docker work pool)")
    lake, config = Path(values["lake"]), Path(values["config"])
    if not lake.is_absolute() or not config.is_absolute() or not config.is_relative_to(lake):
        raise ConfigError(f"GDPR_SWEEP_LAKE ({lake}) must be an absolute folder and GDPR_SWEEP_CONFIG ({config}) "
                          "a file inside it: containers see only the mounted lake")
    return values


POOL = "gdpr-sweep"
POOL_TYPE = "process"


def ensure_work_pool(wait_seconds: float = 180.0) -> str:
    """Wait for the Prefect API, then create the work pool `gdpr-sweep` (type process) unless it exists.
    An existing pool is left as it is (its job template may be customised); another type is an error."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    deadline = time.monotonic() + wait_seconds
    with get_client(sync_client=True) as client:
        while client.api_healthcheck() is not None:
            if time.monotonic() > deadline:
                raise ConfigError(f"no Prefect API answers at {client.api_url} (is the server started?)")
            time.sleep(1)
        try:
            pool = client.read_work_pool(POOL)
        except ObjectNotFound:
            from prefect.utilities.asyncutils import run_coro_as_sync

            template = run_coro_as_sync(get_default_base_job_template_for_infrastructure_type(POOL_TYPE))
            client.create_work_pool(WorkPoolCreate(name=POOL, type=POOL_TYPE, base_job_template=template or {}))
            return f"work pool '{POOL}' created (type {POOL_TYPE})"
    if pool.type != POOL_TYPE:
        raise ConfigError(f"work pool '{POOL}' exists with type '{pool.type}'; this setup expects '{POOL_TYPE}' "
                          "(delete it, or deploy with your own pool: README 'Run and schedule')")
    return f"work pool '{POOL}' exists (type {POOL_TYPE})"


if __name__ == "__main__":  # scripts/prefect-setup
    import sys

    try:
        wait = os.environ.get("GDPR_SWEEP_API_WAIT_SECONDS", "180")
        try:
            seconds = float(wait)
        except ValueError:
            raise ConfigError(f"GDPR_SWEEP_API_WAIT_SECONDS must be a number of seconds, not {wait!r}") from None
        print(ensure_work_pool(seconds))
    except ConfigError as exc:
        print(f"gdpr-sweep: error: {exc}", file=sys.stderr)
        sys.exit(2)
