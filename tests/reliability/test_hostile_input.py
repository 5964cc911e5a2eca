"""Hostile input (§6): every bad case gets a clear error naming what and where, the right exit
code, and nothing changes: no dataset, report or blacklist entry is touched.

The matrix runs the real sweep flow (one Prefect harness) on a copy of a small lake that was swept
once; a few cases also run the real `gdpr-sweep` command to check the exit code and the one-line
message. Cases that are awkward but valid (quotes, semicolons and SQL keywords in column names and
values, very long strings, unicode emails) must sweep correctly instead.

How we checked that these tests fail when their protection is removed (each broken in a copy of the
code): without the `_scan` wrapper in `pipelines/core/match.py` (DuckDB errors passed through) the
invalid-UTF-8 case fails: DuckDB's InvalidInputException is not an exit-2 error and its message
quotes the email. The other protections are single checks whose removal lets the case through:
`match.check_files` called from `pipelines.datasets.sweep.plan_dataset` (sibling and mistyped schemas),
`settings._check_inside_base` (outside-base cases), the empty-dataset check in `plan_dataset`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config.settings import load_settings
from pipelines.core.errors import ConfigError, DataFileError, InputError, SchemaError
from pipelines.registry.registry import Registry
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    make_event,
    make_profile,
    read_dataset,
    sweep,
    write,
)
from tests.support import procs
from tests.support.lake import dataset, dataset_tables, lake_toml, two_datasets

BLACKLISTED = "anna.secret@example.com"
CONFIG = lake_toml(*two_datasets())


def build_lake(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "gdpr-sweep.toml").write_text(CONFIG)
    for i in range(2):
        write(root / f"raw/profiles/part-{i}.parquet",
              [make_profile(BLACKLISTED if i == 0 else f"p{i}@example.com", device_ids=[f"dev-secret-{i}"],
                            profile_id=f"p{i}"), make_profile(f"kept{i}@example.com", profile_id=f"k{i}")],
              PROFILE_SCHEMA)
        write(root / f"raw/events/part-{i}.parquet",
              [make_event(BLACKLISTED, device_id="dev-secret-0"), make_event(f"kept{i}@example.com", device_id="d9"),
               make_event(device_id="dev-secret-0", anonymous=True)], EVENT_SCHEMA)
    Registry(root / "blacklist.db").add(email=BLACKLISTED, source="cli")
    Registry(root / "blacklist.db").add(user_id="u-secret-9", source="cli")
    return root / "gdpr-sweep.toml"


@pytest.fixture(scope="module")
def swept_lake(prefect_harness, tmp_path_factory):
    """A lake swept once by the real flow: cleaned versions, a report, a registry."""
    from flows.sweep import gdpr_sweep

    root = tmp_path_factory.mktemp("hostile-base") / "lake"
    config = build_lake(root)
    gdpr_sweep(config=str(config))
    return root


@pytest.fixture
def lake(swept_lake, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(swept_lake, root, symlinks=True)
    return root


def state(root: Path) -> dict[str, str]:
    """Every path under the lake with its bytes' hash or symlink target (the working folder's lock and
    the SQLite files are left out: the registry is compared through its own snapshot and history)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir.split(os.sep)[0] == "work":
            continue
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = os.path.join(rel_dir, name)
            if name.startswith("blacklist.db"):
                continue
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[rel] = "dir"
    registry = Registry(root / "blacklist.db")
    found["registry"] = json.dumps([r.to_json() for r in registry.snapshot().records]) + json.dumps(registry.history())
    return found


# --- the bad cases -------------------------------------------------------------------------------

def _valid_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([make_event("x@example.com")], schema=EVENT_SCHEMA), sink)
    return sink.getvalue().to_pybytes()


def truncated(root):
    data = _valid_bytes()
    (root / "raw/events/part-9.parquet").write_bytes(data[: len(data) // 2])


def random_bytes(root):
    (root / "raw/events/part-9.parquet").write_bytes(os.urandom(4096))


def zero_length(root):
    (root / "raw/events/part-9.parquet").write_bytes(b"")


def magic_but_garbage(root):
    (root / "raw/events/part-9.parquet").write_bytes(b"PAR1" + os.urandom(200) + b"\x10\x00\x00\x00PAR1")


def csv_named_parquet(root):
    (root / "raw/events/part-9.parquet").write_text("DeviceId,Email\nd1,x@example.com\n")


def sibling_extra_column(root):
    schema = EVENT_SCHEMA.append(pa.field("Extra", pa.string()))
    write(root / "raw/events/part-9.parquet", [make_event("x@example.com", Extra="e")], schema)


def sibling_other_type(root):
    schema = EVENT_SCHEMA.set(EVENT_SCHEMA.get_field_index("EventType"), pa.field("EventType", pa.int64()))
    write(root / "raw/events/part-9.parquet", [make_event("x@example.com", EventType=7)], schema)


def mistyped_email(root):
    user = pa.struct([("Name", pa.string()), ("Email", pa.int64()), ("UserId", pa.string())])
    schema = EVENT_SCHEMA.set(EVENT_SCHEMA.get_field_index("User"), pa.field("User", user))
    write(root / "raw/events/part-9.parquet", [make_event(12345)], schema)


def mistyped_scope(root):
    schema = EVENT_SCHEMA.set(EVENT_SCHEMA.get_field_index("Scope"), pa.field("Scope", pa.list_(pa.string())))
    write(root / "raw/events/part-9.parquet", [make_event("x@example.com", scope=["a"])], schema)


def missing_column(root):
    config = root / "gdpr-sweep.toml"
    config.write_text(config.read_text().replace('email = "User.Email"', 'email = "User.Mail"'))


def hostile_column_name_missing(root):
    config = root / "gdpr-sweep.toml"
    config.write_text(config.read_text().replace('email = "User.Email"',
                                                 "email = 'User.Email\"; DROP TABLE hits; --'"))


def invalid_utf8(root):
    bad = pa.array([f"{BLACKLISTED}".encode(), b"\xff\xfe" + BLACKLISTED.encode()], pa.binary())
    emails = pa.Array.from_buffers(pa.string(), len(bad), bad.buffers())
    user = pa.StructArray.from_arrays([pa.array(["N", "N"]), emails, pa.array([None, None], pa.string())],
                                      fields=list(EVENT_SCHEMA.field("User").type))
    base = pa.Table.from_pylist([make_event("a@example.com"), make_event("b@example.com")], schema=EVENT_SCHEMA)
    table = base.set_column(base.schema.get_field_index("User"), "User", user)
    pq.write_table(table, root / "raw/events/part-9.parquet")


def empty_dataset(root):
    config = root / "gdpr-sweep.toml"
    (root / "raw/orders").mkdir(parents=True)
    config.write_text(config.read_text() + dataset_tables(dataset("orders", "events", source="raw/orders",
                                                                   email="Email")))


def reserved_column(root):
    schema = EVENT_SCHEMA.append(pa.field("file_row_number", pa.int64()))
    write(root / "raw/events/part-9.parquet", [make_event("x@example.com", file_row_number=1)], schema)


def path_outside_base(root):
    config = root / "gdpr-sweep.toml"
    config.write_text(config.read_text().replace('path = "clean/events"', 'path = "../outside/events"'))


def absolute_path_outside_base(root):
    config = root / "gdpr-sweep.toml"
    config.write_text(config.read_text().replace('source = "raw/events"', 'source = "/tmp"'))


def symlinked_parent_outside_base(root):
    outside = root.parent / "elsewhere"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    config = root / "gdpr-sweep.toml"
    config.write_text(config.read_text().replace('path = "clean/events"', 'path = "escape/events"'))


CASES = {
    # name: (mutation, error class, words the message must contain)
    "truncated": (truncated, DataFileError, ["part-9.parquet"]),
    "random-bytes": (random_bytes, DataFileError, ["part-9.parquet"]),
    "zero-length": (zero_length, DataFileError, ["part-9.parquet"]),
    "magic-but-garbage": (magic_but_garbage, DataFileError, ["part-9.parquet"]),
    "csv-named-parquet": (csv_named_parquet, DataFileError, ["part-9.parquet"]),
    "sibling-extra-column": (sibling_extra_column, SchemaError, ["part-9.parquet", "Extra"]),
    "sibling-other-type": (sibling_other_type, SchemaError, ["part-9.parquet", "EventType"]),
    "mistyped-email": (mistyped_email, SchemaError, ["part-9.parquet", "User.Email", "events"]),
    "mistyped-scope": (mistyped_scope, SchemaError, ["part-9.parquet", "Scope"]),
    "missing-column": (missing_column, SchemaError, ["events", "User.Mail"]),
    "hostile-column-name": (hostile_column_name_missing, SchemaError, ["events", "DROP TABLE"]),
    "invalid-utf8": (invalid_utf8, DataFileError, ["part-9.parquet", "UTF-8"]),
    "empty-dataset": (empty_dataset, InputError, ["orders", "no Parquet files"]),
    "reserved-column": (reserved_column, SchemaError, ["file_row_number"]),
    "path-outside-base": (path_outside_base, ConfigError, ["outside the base folder", "path"]),
    "absolute-path-outside-base": (absolute_path_outside_base, ConfigError, ["outside the base folder"]),
    "symlinked-parent-outside-base": (symlinked_parent_outside_base, ConfigError, ["outside the base folder"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_and_changes_nothing(lake, name):
    """The real flow refuses the input with the case's error class (its exit code: 2) and a message
    naming the file, dataset or column, never a person's data; the lake is byte-for-byte unchanged."""
    from flows.sweep import gdpr_sweep

    mutate, error, words = CASES[name]
    mutate(lake)
    before = state(lake)
    with pytest.raises(error) as raised:
        gdpr_sweep(config=str(lake / "gdpr-sweep.toml"))
    message = str(raised.value)
    assert raised.value.exit_code == 2
    for word in words:
        assert word in message, message
    assert "\n" not in message
    assert BLACKLISTED not in message and "secret" not in message.replace("anna.secret", "")
    assert state(lake) == before


def run_cli(lake: Path, *args: str, api_url: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GDPR_SWEEP_CONFIG": str(lake / "gdpr-sweep.toml")}
    if api_url:
        env["PREFECT_API_URL"] = api_url  # the harness's API: no second temporary server to start
    return procs.run_cli(None, *args, env=env, cwd=lake)


@pytest.mark.parametrize("name", ["invalid-utf8", "path-outside-base"])
def test_cli_exit_code_and_one_line_message(lake, name):
    """The real command: exit code 2, exactly one `gdpr-sweep: error:` line, no personal data in any
    output (Prefect's own failure logs included), nothing changed."""
    from prefect.settings import get_current_settings

    mutate, _, words = CASES[name]
    mutate(lake)
    before = state(lake)
    proc = run_cli(lake, "sweep", api_url=str(get_current_settings().api.url))
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("gdpr-sweep: error:")]
    assert len(errors) == 1 and all(w in errors[0] for w in words), proc.stderr[-2000:]
    assert BLACKLISTED not in proc.stderr + proc.stdout
    assert state(lake) == before


@pytest.mark.parametrize("email", [
    "x" * 250 + "@example.com",  # over 254 characters
    "anna secret@example.com", "no-at-sign", "@example.com", "anna@", "anna@exa\x07mple.com",
])
def test_cli_rejects_bad_blacklist_email_without_echoing_it(lake, email):
    before = state(lake)
    proc = run_cli(lake, "blacklist", "add", "--email", email)
    assert proc.returncode == 2
    assert proc.stderr.startswith("gdpr-sweep: error:") and proc.stderr.count("\n") == 1
    assert email not in proc.stderr and "anna" not in proc.stderr
    assert state(lake) == before


# --- awkward but valid: must sweep correctly -----------------------------------------------------

WEIRD_CONFIG = lake_toml(dataset("weird", "events", source="raw/weird", email="Us\"er;DROP TABLE entries;--.E'mail SELECT",
                                 user_id="select", device_id="from", scope="Scope; DELETE"))


def test_quotes_semicolons_and_sql_keywords_in_names_and_values(tmp_path):
    """Identifiers go through one quoting helper and values are bound: hostile names and values are
    just names and values. Removing `quote_ident`'s doubling of `"` breaks this test."""
    root = tmp_path
    (root / "gdpr-sweep.toml").write_text(WEIRD_CONFIG)
    user = pa.struct([("E'mail SELECT", pa.string()), ("Name", pa.string())])
    schema = pa.schema([('Us"er;DROP TABLE entries;--', user), ("select", pa.string()), ("from", pa.string()),
                        ("Scope; DELETE", pa.string())])
    evil = "o'brien\";DROP/**/TABLE/**/entries;--@example.com"
    rows = [
        {'Us"er;DROP TABLE entries;--': {"E'mail SELECT": evil.upper(), "Name": "x"}, "select": None, "from": "d1",
         "Scope; DELETE": "'; DROP"},
        {'Us"er;DROP TABLE entries;--': {"E'mail SELECT": "kept@example.com", "Name": "y"}, "select": "1 OR 1=1",
         "from": "d1", "Scope; DELETE": "'; DROP"},
        {'Us"er;DROP TABLE entries;--': None, "select": "' OR ''='", "from": "d2", "Scope; DELETE": None},
    ]
    write(root / "raw/weird/a.parquet", rows, schema)
    settings = load_settings(root / "gdpr-sweep.toml")
    registry = Registry(settings.blacklist_db)
    registry.add(email=evil, source="cli")
    registry.add(user_id="' OR ''='", source="cli")
    sweep(list(settings.datasets), registry.snapshot().entries)
    # Row 0 by email, row 1 through device d1 (linked by row 0, same scope), row 2 by its user id.
    assert read_dataset(settings.dataset("weird")).num_rows == 0
    assert len(registry.snapshot().records) == 2

    registry.remove(registry.list(user_id="' OR ''='").items[0].blacklist_id)
    write(root / "raw/weird/a.parquet", rows, schema)
    sweep(list(settings.datasets), registry.snapshot().entries, run_id="r2")
    assert read_dataset(settings.dataset("weird")).to_pylist() == [rows[2]]


def test_very_long_strings_and_unicode_emails(tmp_path):
    """A 1 MB name and a 100 000-character email travel through unchanged; IDN and NFD/NFC spellings of
    a blacklisted unicode email are removed; the punycode spelling is a different address and stays
    (documented in docs/reliability.md)."""
    root = tmp_path
    (root / "gdpr-sweep.toml").write_text(CONFIG)
    long_name = "N" * 1_000_000
    long_email = "l" * 100_000 + "@example.com"
    profiles = [
        make_profile("JÖRG@BÜCHER.EXAMPLE", profile_id="upper"),
        make_profile("jo\u0308rg@bu\u0308cher.example", profile_id="nfd"),
        make_profile("jörg@xn--bcher-kva.example", profile_id="punycode"),
        make_profile(long_email, profile_id="long", Name=long_name),
        make_profile("ΟΔΟΣ@EXAMPLE.GR", profile_id="sigma"),
    ]
    write(root / "raw/profiles/a.parquet", profiles, PROFILE_SCHEMA)
    write(root / "raw/events/a.parquet", [make_event(long_email)], EVENT_SCHEMA)
    settings = load_settings(root / "gdpr-sweep.toml")
    registry = Registry(settings.blacklist_db)
    registry.add(email="Jörg@Bücher.example", source="cli")
    registry.add(email="οδοσ@example.gr", source="cli")
    sweep(list(settings.datasets), registry.snapshot().entries)
    kept = read_dataset(settings.dataset("profiles")).to_pylist()
    assert [p["ProfileId"] for p in kept] == ["punycode", "long"]
    assert kept[1]["Name"] == long_name and kept[1]["Info"]["Email"] == long_email
    assert read_dataset(settings.dataset("events")).to_pylist()[0]["User"]["Email"] == long_email
