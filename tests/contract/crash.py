"""A crash between two steps of a real `gdpr-sweep sweep`, with the reliability suite's fault runner
(tests/reliability/fault_runner.py): the command runs in its own process, against the session's
Prefect API, and is killed with SIGKILL right after the flow published one dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.reliability.conftest import cli_env, harness_api_url

RUNNER = Path(__file__).resolve().parents[1] / "reliability" / "fault_runner.py"


def kill_between_steps(config: Path, after_publish_of: str) -> subprocess.CompletedProcess:
    spec = {"argv": ["--config", str(config), "sweep"],
            "hooks": [{"when": "after", "step": "publish", "dataset": after_publish_of, "action": "kill", "args": []}]}
    path = config.with_name("crash-spec.json")
    path.write_text(json.dumps(spec))
    return subprocess.run([sys.executable, str(RUNNER), str(path)], capture_output=True, text=True,
                          env=cli_env(harness_api_url()), cwd=config.parent, timeout=300)
