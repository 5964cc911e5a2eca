"""Overlapping dataset locations are refused (issue 13 findings 1 and 6, docs/reliability.md).

A dataset whose `path` is its own `source` lost all its rows (the sweep published the folder, then
deleted the "consumed" raw files, which were the published ones); two datasets with one `path`
published a mixed folder and deleted the raw files. Any `path` or `source` that equals, contains or
lies inside another (of another dataset or of the same one) is now refused before anything runs:
exit 2, one line naming both keys, nothing changed.

How we checked that these tests fail without their protection: with `find_overlap` returning None
(as main before this change, which had no such check), every case below loads without error, and the
command sweeps the lake, exits 0 and changes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config.settings import load_settings
from pipelines.core.errors import ConfigError
from pipelines.registry.registry import Registry
from tests.helpers import EVENT_SCHEMA, PROFILE_SCHEMA, lake_config, make_event, make_profile, write
from tests.reliability.conftest import cli_env, harness_api_url, run_gdpr_sweep
from tests.reliability.test_hostile_input import state


def key(index: int, name: str, which: str) -> str:
    return f"datasets[{index}].{which} ({name})"


PROFILES_PATH, PROFILES_SOURCE = key(0, "profiles", "path"), key(0, "profiles", "source")
EVENTS_PATH, EVENTS_SOURCE = key(1, "events", "path"), key(1, "events", "source")
BLACKLISTED = "overlap.person@example.com"


def _replace(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


def _symlinked_alias(root: Path, text: str) -> str:
    (root / "clean").mkdir(exist_ok=True)
    (root / "alias").symlink_to(root / "clean")
    return _replace(text, ('path = "clean/profiles"', 'path = "alias/events"'))


# name: (edit of the two-dataset lake's TOML, the two keys the error must name)
OVERLAPS = {
    "path-is-own-source": (lambda root, t: _replace(t, ('path = "clean/events"', 'path = "raw/events"')),
                           (EVENTS_PATH, EVENTS_SOURCE)),
    "path-inside-own-source": (lambda root, t: _replace(t, ('path = "clean/events"', 'path = "raw/events/clean"')),
                               (EVENTS_PATH, EVENTS_SOURCE)),
    "source-inside-own-path": (lambda root, t: _replace(t, ('source = "raw/events"', 'source = "clean/events/in"')),
                               (EVENTS_PATH, EVENTS_SOURCE)),
    "two-datasets-one-path": (lambda root, t: _replace(t, ('path = "clean/profiles"', 'path = "clean/events"')),
                              (PROFILES_PATH, EVENTS_PATH)),
    "path-inside-other-path": (lambda root, t: _replace(t, ('path = "clean/profiles"', 'path = "clean/events/p"')),
                               (PROFILES_PATH, EVENTS_PATH)),
    "path-is-other-source": (lambda root, t: _replace(t, ('path = "clean/profiles"', 'path = "raw/events"')),
                             (PROFILES_PATH, EVENTS_SOURCE)),
    "source-contains-other-path": (lambda root, t: _replace(t, ('source = "raw/events"', 'source = "clean"')),
                                   (PROFILES_PATH, EVENTS_SOURCE)),
    "two-datasets-one-source": (lambda root, t: _replace(t, ('source = "raw/profiles"', 'source = "raw/events"')),
                                (PROFILES_SOURCE, EVENTS_SOURCE)),
    "source-in-versions-folder": (lambda root, t: _replace(t, ('source = "raw/profiles"',
                                                               'source = "clean/.events.versions"')),
                                  (PROFILES_SOURCE, EVENTS_PATH)),
    "same-folder-through-symlink": (_symlinked_alias, (PROFILES_PATH, EVENTS_PATH)),
    "s3-prefix-inside-another": (lambda root, t: _replace(t, ('source = "raw/profiles"\n', ''),
                                                          ('source = "raw/events"\n', ''),
                                                          ('path = "clean/profiles"', 'path = "s3://b/lake/"'),
                                                          ('path = "clean/events"', 'path = "s3://b/lake/events"')),
                                 (PROFILES_PATH, EVENTS_PATH)),
    "s3-source-is-own-path": (lambda root, t: _replace(t, ('source = "raw/events"', 'source = "s3://b/lake/ev"'),
                                                       ('path = "clean/events"', 'path = "s3://b/lake/ev/"')),
                              (EVENTS_PATH, EVENTS_SOURCE)),
}

APART = {
    "sibling-names-sharing-a-prefix": lambda t: _replace(t, ('path = "clean/profiles"', 'path = "clean/events2"'),
                                                         ('source = "raw/profiles"', 'source = "raw/events-old"')),
    "s3-sibling-prefixes": lambda t: _replace(t, ('source = "raw/profiles"\n', ''), ('source = "raw/events"\n', ''),
                                              ('path = "clean/profiles"', 'path = "s3://b/lake/events2"'),
                                              ('path = "clean/events"', 'path = "s3://b/lake/events"')),
    "s3-source-beside-path": lambda t: _replace(t, ('source = "raw/events"', 'source = "s3://b/raw/events"'),
                                                ('path = "clean/events"', 'path = "s3://b/clean/events"')),
}


def build_lake(root: Path, name: str) -> Path:
    """A lake with raw snapshots in both sources, one entry, and the case's configuration."""
    root.mkdir(parents=True)
    write(root / "raw/profiles/p0.parquet", [make_profile(BLACKLISTED), make_profile("kept@example.com")],
          PROFILE_SCHEMA)
    write(root / "raw/events/e0.parquet", [make_event(BLACKLISTED), make_event("kept@example.com")], EVENT_SCHEMA)
    config = root / "gdpr-sweep.toml"
    edit, _ = OVERLAPS[name]
    config.write_text(edit(root, lake_config("raw")))
    Registry(root / "blacklist.db").add(email=BLACKLISTED, source="cli")
    return config


@pytest.mark.parametrize("name", sorted(OVERLAPS))
def test_overlapping_locations_are_refused_naming_both_keys(tmp_path, name):
    root = tmp_path / "lake"
    root.mkdir()
    edit, keys = OVERLAPS[name]
    config = root / "gdpr-sweep.toml"
    config.write_text(edit(root, lake_config("raw")))
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert all(key in message for key in keys), message
    assert str(config.resolve()) in message


@pytest.mark.parametrize("name", sorted(APART))
def test_separate_locations_are_accepted(tmp_path, name):
    config = tmp_path / "gdpr-sweep.toml"
    config.write_text(APART[name](lake_config("raw")))
    assert len(load_settings(config).datasets) == 2


@pytest.mark.parametrize("name", ["path-is-own-source", "two-datasets-one-path"])
def test_command_refuses_overlap_with_exit_2_and_changes_nothing(prefect_harness, tmp_path, name):
    """Findings 1 and 6 through the real command: exit 2, one line naming both keys, no traceback,
    every file of the lake (raw snapshots included) and the registry unchanged."""
    config = build_lake(tmp_path / "lake", name)
    before = state(config.parent)
    proc = run_gdpr_sweep(config, "sweep", "--delete-raw", env=cli_env(harness_api_url()))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("gdpr-sweep: error:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert all(key in errors[0] for key in OVERLAPS[name][1]), errors[0]
    assert BLACKLISTED not in proc.stderr + proc.stdout
    assert state(config.parent) == before
