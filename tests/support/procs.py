"""The one spawner of `gdpr-sweep` processes for tests and benchmarks: the CLI (`run_cli`) and the
HTTP server (`start_server`: `gdpr-sweep serve` on a free 127.0.0.1 port, ready when /healthz
answers, stopped by `stop_server` or as a context manager), plus `free_port`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.lake import lake_toml, two_datasets

COMMAND = (sys.executable, "-m", "gdpr_sweep")
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def free_port() -> int:
    """A loopback port free right now (closed again: the caller binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(config: Path | None, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 300, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run `gdpr-sweep [--config CONFIG] ARGS...` (in the config's folder unless `cwd`), capturing text.
    `umask` sets the child's (file-mode tests: the typical 022)."""
    command = [*COMMAND, *(["--config", str(config)] if config is not None else []), *args]
    folder = cwd if cwd is not None else (config.parent if config is not None else None)
    preexec = (lambda: os.umask(umask)) if umask is not None else None  # noqa: PLW0108
    return subprocess.run(command, capture_output=True, text=True, cwd=folder, timeout=timeout,
                          env=dict(env) if env is not None else None, preexec_fn=preexec)


@dataclass
class Server:
    """A running `gdpr-sweep serve` in `root` (its configuration `root/gdpr-sweep.toml`)."""

    url: str
    root: Path
    proc: subprocess.Popen[str]
    key: str | None
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "gdpr-sweep.toml"

    @property
    def registry(self):  # noqa: ANN201 (imported lazily: a benchmark may not need it)
        from pipelines.registry.registry import Registry

        return Registry(self.root / "blacklist.db")

    def client(self, key: str | None = None, **kwargs) -> httpx.Client:
        """A client sending the API key (the server's own unless `key` is given; "" sends none)."""
        key = self.key if key is None else key
        headers = {"X-Api-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, trust_env=False, timeout=60, **kwargs)

    @property
    def log(self) -> str:
        return "".join(self.stderr_lines)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        stop_server(self)


def start_server(root: Path, key: str | None, *extra: str, env: Mapping[str, str] | None = None,
                 ready_seconds: float = 60, keep_log: bool = True) -> Server:
    """Start `gdpr-sweep serve --port 0` in `root` (writing a two-dataset configuration there if it has
    none) with `GDPR_SWEEP_API_KEY=key` (None: unset) and wait until /healthz answers 200. The server's
    stderr is kept in `Server.log` (`keep_log=False`: discarded, for a benchmark)."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "gdpr-sweep.toml").exists():
        (root / "gdpr-sweep.toml").write_text(lake_toml(*two_datasets(source_root=None)))
    child = {k: v for k, v in (os.environ if env is None else env).items() if not k.startswith("GDPR_SWEEP_")}
    if key is not None:
        child["GDPR_SWEEP_API_KEY"] = key
    proc = subprocess.Popen([*COMMAND, "--config", str(root / "gdpr-sweep.toml"), "serve", "--port", "0", *extra],
                            cwd=root, env=child, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if keep_log else subprocess.DEVNULL, text=True)
    lines: list[str] = []
    if keep_log:
        threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    first = proc.stdout.readline()  # type: ignore[union-attr]
    match = _LISTENING.search(first)
    if not match:
        proc.wait(timeout=30)
        raise AssertionError(f"server did not start: {first!r} {''.join(lines)}")
    server = Server(match.group(1), root, proc, key, lines)
    _wait_healthy(server, ready_seconds)
    return server


def _wait_healthy(server: Server, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=server.url, trust_env=False, timeout=5) as probe:
        while True:
            try:
                if probe.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.proc.poll() is not None:
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
    if server.proc.stdout is not None:
        server.proc.stdout.close()
