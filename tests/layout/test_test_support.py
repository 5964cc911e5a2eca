"""Tests and benchmarks share one copy of their set-up (tests/support/): the lake configuration is
built by `tests/support/lake.py`, Prefect's environment and temporary API by `prefect_env.py`, free
ports and `gdpr-sweep` processes by `procs.py`. A test or bench file that writes one of these again
fails here, naming the file and line and where the one copy lives."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"

# (what is written again, the one place it may stand, files allowed to write it too and why)
RULES = [
    ("[[" + "datasets]]", SUPPORT / "lake.py",
     # the loader's own tests feed it malformed and partial text on purpose
     {ROOT / "tests" / "pipelines" / "test_config.py"}),
    ("prefect_test" + "_harness", SUPPORT / "prefect_env.py", set()),
    ("PREFECT_SERVER_ANALYTICS" + "_ENABLED", SUPPORT / "prefect_env.py", set()),
    ('s.bind(("127.0.0.1", ' + "0))", SUPPORT / "procs.py", set()),
    ('"-m", "gdpr' + '_sweep"', SUPPORT / "procs.py", set()),  # the command line of a `gdpr-sweep` child
    ("listening " + "on", SUPPORT / "procs.py", set()),  # reading the server's first line: start_server
]


def files() -> list[Path]:
    return sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")])


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def copies(needle: str, home: Path, allowed: set[Path], paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        if path == home or path in allowed:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if needle in line:
                found.append(f"{shown(path)}:{n}: {needle!r} again; use {shown(home)}")
    return found


@pytest.mark.parametrize("needle, home, allowed", RULES, ids=[r[0] for r in RULES])
def test_no_copy_of_the_shared_set_up(needle, home, allowed):
    assert needle in home.read_text(encoding="utf-8"), f"{home} no longer holds {needle!r}: update RULES"
    assert copies(needle, home, allowed, files()) == []


def test_a_copy_is_found(tmp_path):
    """The check itself can fail: a file writing a dataset table of its own is reported."""
    rogue = tmp_path / "test_rogue.py"
    rogue.write_text('CONFIG = """\n[[' + 'datasets]]\nname = "x"\n"""\n')
    needle, home, allowed = RULES[0]
    assert copies(needle, home, allowed, [rogue]) == [
        f"{rogue}:2: {needle!r} again; use tests/support/lake.py"]
