"""README "Run and schedule" end to end (issue 17): a real Prefect server on a free loopback port with a
fresh PREFECT_HOME, the README's own bash blocks run as written (only the port changed), a worker in a
separate working copy (its own clone) whose flow runs clone the repository (the committed HEAD, pushed
to a bare repository in tmp) and install requirements.txt, the alerting automation created, the nightly deployment triggered twice:

1. Completed; the artifacts are on the triggered run, which is named after the report's run id; the
   blacklisted rows are gone from the cleaned data;
2. after a raw snapshot arrives with a configured column renamed: Failed, the state's message the
   one-line reason, the cleaned data unchanged, and the alerting automation's webhook called.

The worker's flow runs use this suite's .venv (the install step finds everything satisfied).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest

from gdpr_sweep.demo import prepare_demo
from pipelines.config.settings import load_settings
from pipelines.registry.registry import Registry
from tests.support.prefect_env import child_env, process_defaults
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
pytestmark = pytest.mark.slow


def readme_block(marker: str) -> str:
    """The one bash block of README "Run and schedule" that contains `marker`, as written."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## Run and schedule\n")
    section = text[start:text.index("\n## ", start + 1)]  # up to the next top-level section
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S) if marker in b]
    return block


class _Recorder(BaseHTTPRequestHandler):
    calls: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Recorder.calls.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Recorder.calls = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Recorder.calls
    server.shutdown()


def _git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


@pytest.fixture
def checkouts(tmp_path):
    """origin.git (HEAD pushed as main), a deployer's fresh clone and a worker's separate clone, both
    with `.venv` pointing at this suite's environment (what `./scripts/bootstrap` would make)."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs git and a git checkout of the repository")
    origin, deployer, worker = tmp_path / "origin.git", tmp_path / "deployer", tmp_path / "worker"
    _git("init", "--bare", "-q", str(origin))
    _git("config", "receive.shallowUpdate", "true", cwd=origin)  # CI may run in a shallow clone
    _git("push", "-q", str(origin), "HEAD:refs/heads/main", cwd=ROOT)
    _git("symbolic-ref", "HEAD", "refs/heads/main", cwd=origin)
    _git("clone", "-q", str(origin), str(deployer))
    _git("clone", "-q", str(origin), str(worker))
    for folder in (deployer, worker):
        (folder / ".venv").symlink_to(Path(sys.prefix))
    return deployer, worker


class Shell:
    """One bash script in its own session (so everything it starts, `&` included, can be stopped),
    output in files (a background child keeps pipes open)."""

    def __init__(self, script: str, cwd: Path, env: dict, logs: Path):
        logs.mkdir(parents=True, exist_ok=True)
        n = len(list(logs.iterdir()))
        self.out, self.err = logs / f"{n}.out", logs / f"{n}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=cwd, env=env, stdout=out, stderr=err,
                                         start_new_session=True)

    def finish(self, timeout: float = 600) -> Shell:
        self.returncode = self.proc.wait(timeout=timeout)
        self.stdout, self.stderr = self.out.read_text(), self.err.read_text()
        return self

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=30)
                time.sleep(1)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


def _api(api: str, method: str, path: str, json: dict | None = None, patience: float = 600) -> dict | list:
    """One call to the server's REST API. A server starved of CPU (2 shared cores) may not answer for a
    while: retry on timeouts and refused connections within `patience` seconds, never on HTTP errors."""
    deadline = time.monotonic() + patience
    while True:
        try:
            response = httpx.request(method, f"{api}{path}", json=json, timeout=60)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
            continue
        response.raise_for_status()
        return response.json()


def _wait_final(api: str, flow_run_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = _api(api, "GET", f"/flow_runs/{flow_run_id}")
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(2)
    raise AssertionError(f"flow run still {run['state_type']} after {timeout} s")


def _trigger(command: str, deployer: Path, env: dict, logs: Path) -> str:
    shell = Shell(command, deployer, env, logs).finish()
    assert shell.returncode == 0, shell.stderr[-2000:]
    return re.search(r"UUID:\s*([0-9a-f-]{36})", shell.stdout).group(1)


def _assert_alerts_on_failed_or_crashed(automation: dict, deployment_id: str) -> None:
    """The automation README "Alerting" creates: enabled, reacting to one Failed or Crashed flow run
    related to the nightly deployment, sending a notification."""
    trigger = automation["trigger"]
    related = trigger["match_related"]
    related = related if isinstance(related, list) else [related]
    assert automation["enabled"] and automation["name"] == "gdpr-sweep nightly failed"
    assert trigger["type"] == "event" and trigger["posture"] == "Reactive" and trigger["threshold"] == 1
    assert set(trigger["expect"]) == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert trigger["match"] == {"prefect.resource.id": "prefect.flow-run.*"}
    assert {"prefect.resource.id": f"prefect.deployment.{deployment_id}",
            "prefect.resource.role": "deployment"} in related
    assert [a["type"] for a in automation["actions"]] == ["send-notification"]


def _clean_digest(settings) -> dict:
    out = {}
    for ds in settings.datasets:
        out[ds.name] = str(ds.path.resolve())
        for f in sorted(ds.path.resolve().rglob("*.parquet")):
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def test_readme_deployment_sequence_end_to_end(checkouts, webhook, tmp_path):
    deployer, worker = checkouts
    settings = load_settings(deployer / "gdpr-sweep.toml")
    prepare_demo(settings, events=3000, profiles=200)
    entries = Registry(settings.blacklist_db).snapshot().records
    emails = [r.email for r in entries if r.email and r.scope is None]
    assert emails

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    server_block, worker_block, run_block = (readme_block(m).replace("4200", str(port)) for m in (
        "prefect server start", "prefect worker start", "prefect deployment run gdpr_sweep_nightly/nightly"))
    env = child_env(None, drop=("PREFECT_", "GDPR_SWEEP_"), **process_defaults(tmp_path / "client-home"),
                    PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="5",
                    GDPR_SWEEP_API_WAIT_SECONDS="600")
    logs = tmp_path / "logs"
    exports = "\n".join(line for line in server_block.splitlines() if line.startswith("export "))
    server = work = None
    try:
        server = Shell(server_block, deployer, env, logs)  # starts the server (&), then ./scripts/prefect-setup
        assert server.proc.wait(timeout=600) == 0, (server.out.read_text() + server.err.read_text())[-3000:]
        deployments = _api(api, "POST", "/deployments/filter", {})
        assert {d["name"] for d in deployments} == {"nightly", "ingest", "clear-user-data"}
        nightly_id = next(d["id"] for d in deployments if d["name"] == "nightly")
        assert _api(api, "GET", "/work_pools/gdpr-sweep")["type"] == "process"

        # The worker starts in its own working copy while the pool step runs again and the alert is created.
        work = Shell(worker_block, worker, {**env, "PREFECT_HOME": str(tmp_path / "worker-home")}, logs)
        again = Shell(exports + "\n.venv/bin/python -m flows.deploy_steps", deployer, env, logs)
        alert = Shell(exports + f"\n.venv/bin/python -m flows.alerting --webhook-url {webhook[0]}", deployer, env,
                      logs)
        again, alert = again.finish(), alert.finish()
        assert again.returncode == 0 and "exists (type process)" in again.stdout, again.stderr[-2000:]
        assert alert.returncode == 0, alert.stderr[-2000:]
        (automation,) = _api(api, "POST", "/automations/filter", {})
        _assert_alerts_on_failed_or_crashed(automation, nightly_id)

        first = _wait_final(api, _trigger(exports + "\n" + run_block, deployer, env, logs))
        assert first["state_type"] == "COMPLETED", (first["state"], work.err.read_text()[-3000:])
        (run_id,) = [p.name for p in settings.report_dir.iterdir() if p.is_dir() and not p.name.startswith("_")]
        assert first["name"] == f"gdpr_sweep_nightly-{run_id}"
        artifacts = _api(api, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [first["id"]]}}})
        assert {a["key"] for a in artifacts if a["key"]} >= {"gdpr-sweep-report", "gdpr-sweep-dataset-profiles",
                                                             "gdpr-sweep-dataset-events", "gdpr-sweep-deadline",
                                                             "gdpr-sweep-residuals", "gdpr-sweep-report-html"}
        events = settings.dataset("events").path
        with duckdb.connect() as con:
            left = con.execute(f"""SELECT count(*) FROM read_parquet('{events}/**/*.parquet', hive_partitioning = false)
                                   WHERE lower(trim("User"."Email")) IN (SELECT unnest($e))""", {"e": emails}).fetchone()[0]
            total = con.execute(f"SELECT count(*) FROM read_parquet('{events}/**/*.parquet')").fetchone()[0]
        assert left == 0 and total > 0

        # A snapshot whose configured column is renamed: the next run fails, the cleaned data stays.
        before = _clean_digest(settings)
        table = pq.read_table(next(events.resolve().glob("*.parquet")))
        renamed = table.rename_columns(["Device" if n == "DeviceId" else n for n in table.column_names])
        source = settings.dataset("events").source
        source.mkdir(parents=True, exist_ok=True)
        pq.write_table(renamed, source / "late-snapshot.parquet")
        second = _wait_final(api, _trigger(exports + "\n" + run_block, deployer, env, logs))
        assert second["state_type"] == "FAILED", (second["state"], work.err.read_text()[-3000:])
        message = second["state"]["message"]
        assert "\n" not in message and "late-snapshot.parquet" in message and "DeviceId" in message, message
        assert not message.startswith("Flow run encountered"), message
        assert _clean_digest(settings) == before

        deadline = time.monotonic() + 120  # the automation's notification reaches the webhook
        while not webhook[1] and time.monotonic() < deadline:
            time.sleep(1)
        assert webhook[1], "the alert was not sent"
        (call,) = webhook[1]
        assert "Failed" in call["subject"] and message in call["text"]

        # The README's Docker variant on the same server: the same deployments (ids, so the alert still
        # applies), entrypoints, parameters and schedules, now in the Docker pool with the image and the lake.
        docker = Shell(exports + "\n" + readme_block("--prefect-file docker/prefect.yaml"), deployer, env, logs)
        assert docker.finish().returncode == 0, (docker.stdout + docker.stderr)[-3000:]
        assert _api(api, "GET", "/work_pools/gdpr-sweep-docker")["type"] == "docker"
        moved = {d["name"]: d for d in _api(api, "POST", "/deployments/filter", {})}
        for before_docker in deployments:
            after = moved[before_docker["name"]]
            assert after["id"] == before_docker["id"] and after["work_pool_name"] == "gdpr-sweep-docker"
            assert after["job_variables"] == {"image": "registry.example.com/gdpr-sweep:1.0",
                                              "volumes": ["/srv/lake:/srv/lake"]}
            assert after["parameters"] == {"config": "/srv/lake/gdpr-sweep.toml"}
            assert after["pull_steps"] == [{"prefect.deployments.steps.set_working_directory":
                                            {"directory": "/opt/gdpr-sweep"}}]
            for key in ("entrypoint", "parameter_openapi_schema"):
                assert after[key] == before_docker[key], key
            assert [x["schedule"] for x in after["schedules"]] == [x["schedule"] for x in before_docker["schedules"]]
    finally:
        for shell in (work, server):  # the worker first: a worker outliving its server hangs
            if shell is not None:
                shell.stop()
