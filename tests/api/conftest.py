"""A real `gdpr-sweep serve` process on a free loopback port, called with httpx (no proxies)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from pipelines.registry.registry import Registry

KEY = "test-key-0123456789abcdef"
CONFIG = """
[sweep]
work_dir = "work"
report_dir = "reports"
blacklist_db = "blacklist.db"

[[datasets]]
name = "profiles"
kind = "profiles"
path = "clean/profiles"
email = "Info.Email"
user_id = "UserId"
device_ids = "DeviceIds"
scope = "Scope"

[[datasets]]
name = "events"
kind = "events"
path = "clean/events"
email = "User.Email"
user_id = "User.UserId"
device_id = "DeviceId"
scope = "Scope"
"""
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


@dataclass
class Server:
    url: str
    root: Path
    proc: subprocess.Popen
    key: str | None
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "gdpr-sweep.toml"

    @property
    def registry(self) -> Registry:
        return Registry(self.root / "blacklist.db")

    def client(self, key: str | None = None, **kwargs) -> httpx.Client:
        """A client sending the API key (the server's own unless `key` is given; "" sends none)."""
        key = self.key if key is None else key
        headers = {"X-Api-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, trust_env=False, timeout=60, **kwargs)

    @property
    def log(self) -> str:
        return "".join(self.stderr_lines)


def start_server(root: Path, key: str | None = KEY, *extra: str) -> Server:
    """Start `gdpr-sweep serve --port 0` in `root` and wait until /healthz answers."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "gdpr-sweep.toml").exists():
        (root / "gdpr-sweep.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDPR_SWEEP_")}
    if key is not None:
        env["GDPR_SWEEP_API_KEY"] = key
    proc = subprocess.Popen([sys.executable, "-m", "gdpr_sweep", "--config", str(root / "gdpr-sweep.toml"),
                             "serve", "--port", "0", *extra],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    first = proc.stdout.readline()
    match = _LISTENING.search(first)
    if not match:
        proc.wait(timeout=30)
        raise AssertionError(f"server did not start: {first!r} {''.join(lines)}")
    server = Server(match.group(1), root, proc, key, lines)
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=server.url, trust_env=False, timeout=5) as probe:
        while True:
            try:
                if probe.get("/healthz").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                stop_server(server)
                raise AssertionError(f"server not healthy: {server.log}")
            time.sleep(0.05)


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    server.proc.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """One server per test module (API key required); tests use distinct identities."""
    srv = start_server(tmp_path_factory.mktemp("api"))
    yield srv
    stop_server(srv)
    assert "@" not in srv.log, "the server log must not carry emails"


@pytest.fixture
def client(server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
