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

from pipelines.errors import ConfigError


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
