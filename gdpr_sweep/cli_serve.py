"""`gdpr-sweep serve`: the HTTP API on the blacklist registry (gdpr_sweep/api.py, README "HTTP API")."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
from pathlib import Path

import click

from gdpr_sweep.cli_common import Context, handle_errors, pass_ctx
from pipelines.config.secret_blocks import API_KEY_BLOCK, AUDITOR_KEY_BLOCK, secret_block
from pipelines.core.errors import InputError

API_KEY_ENV = "GDPR_SWEEP_API_KEY"
AUDITOR_KEY_ENV = "GDPR_SWEEP_AUDITOR_KEY"
DEFAULT_PORT = 8410
MIN_KEY_LENGTH = 16


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(key_file: Path | None, no_auth: bool, host: str) -> str | None:
    """The key from GDPR_SWEEP_API_KEY, --api-key-file or the Prefect Secret block `gdpr-sweep-api-key`;
    None only with --no-auth on loopback."""
    env_key = os.environ.get(API_KEY_ENV) or None
    if key_file is not None and env_key is not None:
        raise InputError(f"give the API key once: {API_KEY_ENV} or --api-key-file, not both")
    key = env_key
    if key is None and key_file is None and not no_auth:
        key = secret_block(API_KEY_BLOCK)  # with PREFECT_API_URL set (pipelines/config/secret_blocks.py)
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"{key_file}: cannot read the API key file ({exc.strerror})") from None
    if no_auth:
        if key is not None:
            raise InputError("--no-auth and an API key contradict each other; drop one")
        if not _is_loopback(host):
            raise InputError(f"--no-auth is only allowed on a loopback address, not {host!r}")
        return None
    if key is None:
        raise InputError(f"set an API key: export {API_KEY_ENV}=<random, >= {MIN_KEY_LENGTH} characters> "
                         "or --api-key-file PATH (or --no-auth for a loopback-only trial)")
    return _checked(key, "the API key")


def _checked(key: str, what: str) -> str:
    if len(key) < MIN_KEY_LENGTH or any(ch.isspace() or ord(ch) < 33 for ch in key):
        raise InputError(f"{what} must be at least {MIN_KEY_LENGTH} printable characters without spaces")
    return key


def resolve_auditor_key(key_file: Path | None, api_key: str | None) -> str | None:
    """The auditor's key (read-only report routes) from GDPR_SWEEP_AUDITOR_KEY, --auditor-key-file or the
    Prefect Secret block `gdpr-sweep-auditor-key`; None when none is given (no auditor access). It must
    differ from the blacklist key: one key per role."""
    env_key = os.environ.get(AUDITOR_KEY_ENV) or None
    if key_file is not None and env_key is not None:
        raise InputError(f"give the auditor key once: {AUDITOR_KEY_ENV} or --auditor-key-file, not both")
    key = env_key
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"{key_file}: cannot read the auditor key file ({exc.strerror})") from None
    if key is None:
        key = secret_block(AUDITOR_KEY_BLOCK)
    if key is None:
        return None
    key = _checked(key, "the auditor key")
    if api_key is not None and key == api_key:
        raise InputError("the auditor key must differ from the API (blacklist) key: give the auditor a key of its own")
    return key


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP. Without
    # it every answer (headers, then body: two writes) waited for the client's delayed ACK, ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted connections (Linux)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="GDPR_SWEEP_API_HOST",
              help="Address to listen on. Also GDPR_SWEEP_API_HOST.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              envvar="GDPR_SWEEP_API_PORT", help="Port; 0 picks a free one (printed). Also GDPR_SWEEP_API_PORT.")
@click.option("--api-key-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help=f"File holding the API key (instead of {API_KEY_ENV}).")
@click.option("--auditor-key-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help=f"File holding the auditor's key (read-only reports under /api/reports; instead of "
                   f"{AUDITOR_KEY_ENV}).")
@click.option("--no-auth", is_flag=True,
              help="Serve without an API key: loopback only, and reads of the blacklist are refused.")
@pass_ctx
@handle_errors
def serve(ctx: Context, host: str, port: int, api_key_file: Path | None, auditor_key_file: Path | None,
          no_auth: bool) -> None:
    """Serve the blacklist over HTTP (Optimizely and CrossEngage compatible paths), and the reports
    read-only to a separate auditor key (/api/reports)."""
    import uvicorn

    from gdpr_sweep.api import create_app
    from pipelines.registry.registry import Registry

    settings = ctx.settings
    api_key = resolve_api_key(api_key_file, no_auth, host)
    auditor_key = resolve_auditor_key(auditor_key_file, api_key)
    Registry(settings.blacklist_db).snapshot()  # open (or create) the store now, not on the first call
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = _bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"gdpr-sweep API listening on http://{shown}:{bound_port} "
               f"({'API key required' if api_key else 'no authentication; blacklist reads refused'}; "
               f"{'reports for the auditor key' if auditor_key else 'no auditor key: reports not served'})")
    if not _is_loopback(bound_host):
        click.echo("gdpr-sweep: warning: plain HTTP on a non-loopback address; the API key and emails cross the "
                   "network in clear text: put a TLS-terminating proxy in front", err=True)
    sys.stdout.flush()
    config = uvicorn.Config(create_app(settings, api_key, auditor_key), log_level="info", access_log=False,
                            server_header=False, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])
