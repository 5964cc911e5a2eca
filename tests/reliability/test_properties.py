"""Property-based tests: hypothesis generates blacklists, profiles and events; the sweep must keep
exactly the rows that `tests/oracle.py` (an independent pure-Python reading of §3) keeps.

How we checked these tests fail when their protection is removed: replacing `ANTI`-safe joins or the
normalisation in `pipelines/core/sql.py` (e.g. `norm_text` without `lower(...)`, `norm_scope` without the
`coalesce(..., 'defaultscope')`, or dropping the `UNION ALL ... unnest(device_ids)` branch of
`CREATE_LINKED`) makes hypothesis find a counterexample within the first ~100 examples; with the Python
and DuckDB lower-casing of `İ` (U+0130) disagreeing, the first test failed until
`pipelines.core.identity.normalize_email` was aligned with DuckDB's simple case mapping.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.config.settings import DatasetConfig
from pipelines.core.identity import normalize_email, validate_user_id
from pipelines.core.match import connect, entries_table, find_matches
from pipelines.core.model import DatasetInput, Entry
from tests import oracle
from tests.helpers import sweep
from tests.support.hypothesis_profiles import examples

# Examples per run (~35 ms each on one DuckDB connection); not derandomized, so every run draws new
# ones. The `thorough` profile (CONTRIBUTING.md) runs ten times as many.
EXAMPLES = examples(ci=200, thorough=2000)
FULL_EXAMPLES = examples(ci=25, thorough=250)  # end-to-end (write, verify, publish) examples: slower, fewer

# --- pools the strategies draw from: small, so that collisions (the interesting cases) are frequent.
BASE_EMAILS = [
    "anna@example.com", "bob@example.org", "jörg@bücher.example", "zoë@example.com",
    "zoe\u0308@example.com",  # combining diaeresis: the same address as the precomposed one (NFC)
    "İnci@example.com",  # U+0130: Python's and DuckDB's lower() disagree on it
    "ΟΔΟΣ@example.gr",  # final sigma: Python's str.lower() gives ς, DuckDB σ
    "o'brien;drop@example.com", "\"quoted\"@example.com",
]
OTHER_EMAILS = ["anna@example.co", "", "   ", "not-an-email", "ANNA@EXAMPLE.COM.evil"]
PADS = ["", " ", "\t", "\n ", "  ", "\u00a0", "\u200b", "\ufeff ", "\u3000", "\u2028\u0085"]  # issue 14
DATA_SCOPES = [None, "", "  ", "\t", "\u00a0\u200b", "shop", "SHOP", " Shop\t", "\u3000shop\ufeff", "outlet",
               "defaultscope", "DefaultScope"]
ENTRY_SCOPES = [None, "shop", "outlet", "DefaultScope"]
STR_USER_IDS = ["u1", "U1", " u1", "u1\u200b", "u2", "1", "01", "2", "", "\u00a0"]
INT_USER_IDS = [1, 2, 10]
STR_DEVICES = ["d1", "d2", "D1", "1", "2", " d1\u00a0", "", " ", "\ufeff"]
INT_DEVICES = [1, 2, 3]
ENTRY_USER_IDS = ["u1", "u2", "1", "2", "01", "10"]


def fullwidth(value: str) -> str:
    """ASCII `!`..`~` in their fullwidth forms (U+FF01..U+FF5E), as East Asian input methods type them."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value)


def case_variant(draw, value: str) -> str:
    fn = draw(st.sampled_from([str, str.upper, str.lower, str.title, str.swapcase, fullwidth]))
    return draw(st.sampled_from(PADS)) + fn(value) + draw(st.sampled_from(PADS))


@st.composite
def data_email(draw):
    kind = draw(st.sampled_from(["none", "base", "base", "other"]))
    if kind == "none":
        return None
    if kind == "other":
        return draw(st.sampled_from(OTHER_EMAILS))
    return case_variant(draw, draw(st.sampled_from(BASE_EMAILS)))


@st.composite
def blacklist_entry(draw, index: int):
    email = draw(st.one_of(st.none(), st.sampled_from(BASE_EMAILS).map(lambda e: e)))
    if email is not None:
        email = case_variant(draw, email)
    user_id = draw(st.one_of(st.none(), st.sampled_from(ENTRY_USER_IDS)))
    if email is None and user_id is None:
        user_id = draw(st.sampled_from(ENTRY_USER_IDS))
    return {"bid": f"bid-{index}", "raw_email": email, "user_id": user_id, "scope": draw(st.sampled_from(ENTRY_SCOPES))}


@st.composite
def scenario(draw):
    n_entries = draw(st.integers(0, 4))
    entries = [draw(blacklist_entry(i)) for i in range(n_entries)]
    int_profile_ids = draw(st.booleans())
    int_event_ids = draw(st.booleans())
    int_profile_devices = draw(st.booleans())
    int_event_devices = draw(st.booleans())

    def user_id(ints):
        pool = INT_USER_IDS if ints else STR_USER_IDS
        return draw(st.one_of(st.none(), st.sampled_from(pool)))

    def device(ints):
        return draw(st.one_of(st.none(), st.sampled_from(INT_DEVICES if ints else STR_DEVICES)))

    profiles = []
    for i in range(draw(st.integers(0, 5))):
        devices = draw(st.one_of(st.none(), st.lists(st.just(0), max_size=3)))
        profiles.append({
            "ProfileId": f"p{i}", "UserId": user_id(int_profile_ids),
            "DeviceIds": None if devices is None else [device(int_profile_devices) for _ in devices],
            "Scope": draw(st.sampled_from(DATA_SCOPES)),
            "Info": None if draw(st.integers(0, 9)) == 0 else {"Email": draw(data_email()), "Country": "DE"},
            "Score": Decimal("1.50"),
        })
    events = []
    for i in range(draw(st.integers(0, 8))):
        anonymous = draw(st.integers(0, 5)) == 0
        events.append({
            "EventId": i, "DeviceId": device(int_event_devices), "Scope": draw(st.sampled_from(DATA_SCOPES)),
            "User": None if anonymous else {"Email": draw(data_email()), "UserId": user_id(int_event_ids)},
        })
    return {
        "entries": entries, "profiles": profiles, "events": events,
        "profile_split": draw(st.integers(0, len(profiles))), "event_split": draw(st.integers(0, len(events))),
        "link_through_events": draw(st.booleans()),
        "types": (int_profile_ids, int_event_ids, int_profile_devices, int_event_devices),
    }


def schemas(types):
    int_profile_ids, int_event_ids, int_profile_devices, int_event_devices = types
    id_type = {True: pa.int64(), False: pa.string()}
    profile = pa.schema([
        ("ProfileId", pa.string()), ("UserId", id_type[int_profile_ids]),
        ("DeviceIds", pa.list_(id_type[int_profile_devices])), ("Scope", pa.string()),
        ("Info", pa.struct([("Email", pa.string()), ("Country", pa.string())])),
        ("Score", pa.decimal128(6, 2)),
    ])
    event = pa.schema([
        ("EventId", pa.int32()), ("DeviceId", id_type[int_event_devices]), ("Scope", pa.string()),
        ("User", pa.struct([("Email", pa.string()), ("UserId", id_type[int_event_ids])])),
    ])
    return profile, event


def product_entries(case) -> list[Entry]:
    """The entries as the registry stores them (its own validation and normalisation)."""
    return [Entry(e["bid"], normalize_email(e["raw_email"]) if e["raw_email"] else None,
                  validate_user_id(e["user_id"]) if e["user_id"] else None, e["scope"])
            for e in case["entries"]]


def oracle_entries(case) -> list[dict]:
    return [{"email": oracle.norm_email(e["raw_email"]), "user_id": e["user_id"], "scope": e["scope"]}
            for e in case["entries"]]


def logical(case):
    profiles = [{"email": (p["Info"] or {}).get("Email"), "user_id": p["UserId"], "scope": p["Scope"],
                 "device_ids": p["DeviceIds"]} for p in case["profiles"]]
    events = [{"email": (e["User"] or {}).get("Email"), "user_id": (e["User"] or {}).get("UserId"),
               "scope": e["Scope"], "device_id": e["DeviceId"]} for e in case["events"]]
    return profiles, events


def write_split(folder: Path, rows, split: int, schema) -> dict[str, Path]:
    """Write rows as two files (`a` gets the first `split` rows); an empty dataset has no files."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, part in (("a.parquet", rows[:split]), ("b.parquet", rows[split:])):
        if part or not rows:
            pq.write_table(pa.Table.from_pylist(part, schema=schema), folder / name)
            files[name] = folder / name
    return files


def configs(root: Path):
    profiles = DatasetConfig(name="profiles", kind="profiles", path=root / "clean" / "profiles",
                             source=root / "raw" / "profiles", email="Info.Email", user_id="UserId",
                             device_ids="DeviceIds", scope="Scope")
    events = DatasetConfig(name="events", kind="events", path=root / "clean" / "events",
                           source=root / "raw" / "events", email="User.Email", user_id="User.UserId",
                           device_id="DeviceId", scope="Scope")
    return profiles, events


@pytest.fixture(scope="module")
def workspace():
    folder = Path(tempfile.mkdtemp(prefix="gdpr-sweep-props-"))
    con = connect(threads=1)
    yield folder, con, itertools.count()
    con.close()
    shutil.rmtree(folder, ignore_errors=True)


def expected(case):
    profiles, events = logical(case)
    return oracle.expected_kept(oracle_entries(case), profiles, events, case["link_through_events"])


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=scenario())
def test_matching_equals_oracle(workspace, case):
    """Rows find_matches drops are exactly the rows the oracle removes, for profiles and events."""
    folder, con, counter = workspace
    root = folder / str(next(counter))
    profile_schema, event_schema = schemas(case["types"])
    pconf, econf = configs(root)
    pfiles = write_split(pconf.source, case["profiles"], case["profile_split"], profile_schema)
    efiles = write_split(econf.source, case["events"], case["event_split"], event_schema)
    result = find_matches(con, entries_table(product_entries(case)),
                          [DatasetInput(pconf, pfiles), DatasetInput(econf, efiles)], case["link_through_events"])
    kept_p, kept_e = expected(case)
    for name, rows, kept, split in (("profiles", case["profiles"], kept_p, case["profile_split"]),
                                    ("events", case["events"], kept_e, case["event_split"])):
        m = result.datasets[name]
        dropped = set()
        for rel, numbers in m.drops.items():
            offset = 0 if rel == "a.parquet" else split
            dropped.update(int(n) + offset for n in numbers)
        assert sorted(set(range(len(rows))) - dropped) == kept, name
        assert m.rows_removed == sum(m.by_reason.values()) == len(rows) - len(kept)
        assert all(n >= 1 for n in m.by_entry.values())
    shutil.rmtree(root)


@settings(max_examples=FULL_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=scenario())
def test_sweep_output_equals_oracle(workspace, case):
    """End to end without Prefect: the published datasets hold exactly the oracle's kept rows, every
    value and type unchanged; verification finds nothing; a second sweep removes nothing."""
    folder, _, counter = workspace
    root = folder / str(next(counter))
    profile_schema, event_schema = schemas(case["types"])
    pconf, econf = configs(root)
    write_split(pconf.source, case["profiles"], case["profile_split"], profile_schema)
    write_split(econf.source, case["events"], case["event_split"], event_schema)
    entries = product_entries(case)
    outcomes, _ = sweep([pconf, econf], entries, link_through_events=case["link_through_events"])
    kept_p, kept_e = expected(case)
    for conf, rows, kept, schema in ((pconf, case["profiles"], kept_p, profile_schema),
                                     (econf, case["events"], kept_e, event_schema)):
        files = sorted(conf.path.glob("*.parquet"))
        out = pa.concat_tables([pq.read_table(f) for f in files]) if files else schema.empty_table()
        assert out.schema == schema
        assert out.to_pylist() == [rows[i] for i in kept], conf.name
    again, _ = sweep([pconf, econf], entries, run_id="r2", link_through_events=case["link_through_events"])
    assert sum(o.rows_removed for o in again) == 0
    shutil.rmtree(root)
