"""Per-partition sweeps: the per-file steps a task runner maps equal one global sweep, and the flow
gives identical outputs on the local runner and on a 2-worker Dask local cluster."""

from __future__ import annotations

import json
import shutil

from gdpr_sweep.demo import prepare_demo
from pipelines.config.settings import load_settings
from pipelines.core.match import connect, entries_table, find_matches
from pipelines.datasets import scaleout
from tests.helpers import (
    EVENT_SCHEMA,
    PROFILE_SCHEMA,
    entry,
    events_config,
    make_event,
    make_profile,
    profiles_config,
    write,
)
from tests.support.lake import lake_toml, two_datasets


def _lake(root):
    profiles, events = profiles_config(root), events_config(root)
    write(profiles.source / "a.parquet", [make_profile("p@example.com", device_ids=["d1", "d2"]),
                                          make_profile("k@example.com", device_ids=["d3"])], PROFILE_SCHEMA)
    write(profiles.source / "b.parquet", [make_profile(None, user_id="u5", device_ids=["d4"], scope="shop")],
          PROFILE_SCHEMA)
    # Devices linked in one file (and one dataset) remove events in another: rule 3 across partitions.
    write(events.source / "1.parquet", [make_event(email="x@example.com", device_id="d9"),
                                        make_event(device_id="d1"), make_event(device_id="d3")], EVENT_SCHEMA)
    write(events.source / "2.parquet", [make_event(device_id="d9", scope="other"), make_event(device_id="d4", scope="shop"),
                                        make_event(device_id="d4", scope="web"), make_event(user_id="u5")], EVENT_SCHEMA)
    write(events.source / "3.parquet", [make_event(device_id="d2", scope="SHOP ")], EVENT_SCHEMA)
    return [profiles, events]


def test_per_file_matching_equals_one_global_match(tmp_path):
    configs = _lake(tmp_path)
    settings = load_settings(_config_file(tmp_path))
    entries = entries_table([entry(email="p@example.com"), entry(email="x@example.com"),
                             entry(user_id="u5", scope="shop")])
    plans = [scaleout.plan(settings, c) for c in configs]
    with connect() as con:
        whole = find_matches(con, entries, [p.as_input() for p in plans])
    parts = scaleout.partitions(plans, per_dataset=3)  # one file per partition
    assert len(parts) == 5
    by_name = {p.config.name: p for p in plans}
    links = [scaleout.link_partition(settings, entries, by_name[x.dataset], x.relpaths) for x in parts]
    linked = scaleout.union_linked(x.linked for x in links)
    reused = [scaleout.match_partition(settings, entries, by_name[x.dataset], x.relpaths, linked, own=own)
              for x, own in zip(parts, links, strict=True)]
    rescanned = [scaleout.match_partition(settings, entries, by_name[x.dataset], x.relpaths, linked) for x in parts]
    assert whole.datasets["events"].rows_removed == 5  # x@ itself; d9 via that event, d1/d2 via a profile, d4 in shop only
    for per_file in (reused, rescanned):  # pass 2 with pass 1's identity hits, or scanning them again
        merged = scaleout.merge_matches(plans, parts, per_file, linked)
        assert merged.linked_devices.equals(whole.linked_devices)
        for name, m in whole.datasets.items():
            got = merged.datasets[name]
            assert {k: v.tolist() for k, v in got.drops.items()} == {k: v.tolist() for k, v in m.drops.items()}
            assert got.by_reason == m.by_reason and got.by_entry == m.by_entry


def _config_file(root):
    path = root / "gdpr-sweep.toml"
    path.write_text(CONFIG)
    return path


CONFIG = lake_toml(*two_datasets())


def _outputs(settings):
    """Every cleaned file's bytes digest and the report's counts: what must not depend on the runner."""
    import hashlib

    files = {}
    for ds in settings.datasets:
        for path in sorted(ds.path.glob("**/*.parquet")):
            files[f"{ds.name}/{path.relative_to(ds.path)}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _task_names(state):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
            any_=[state.state_details.flow_run_id])))
    return {r.name.rsplit("-", 1)[0] for r in runs if r.state and r.state.is_completed()}


def test_flow_on_two_dask_workers_equals_local_run(prefect_harness, tmp_path):
    """One Dask test (a local cluster costs ~20 s to start): same lake, same blacklist, two runners."""
    from flows.sweep import configured_sweep

    local_root, dask_root = tmp_path / "local", tmp_path / "dask"
    local_root.mkdir()
    demo_config = lake_toml(*two_datasets("data/sample"))
    (local_root / "gdpr-sweep.toml").write_text(demo_config)
    settings = load_settings(local_root / "gdpr-sweep.toml")
    prepare_demo(settings, events=6000, profiles=300)
    shutil.copytree(local_root, dask_root)
    (dask_root / "gdpr-sweep.toml").write_text(lake_toml(*two_datasets("data/sample"),
                                                         sweep={"task_runner": "dask", "dask_workers": 2}))
    dask_settings = load_settings(dask_root / "gdpr-sweep.toml")
    assert dask_settings.task_runner == "dask" and dask_settings.dask_workers == 2

    reports, states = {}, {}
    for name, s in (("local", settings), ("dask", dask_settings)):
        flow = configured_sweep(s)  # what `gdpr-sweep sweep` and prefect.yaml's `nightly_sweep` run
        assert type(flow.task_runner).__name__ == ("ReportingDaskTaskRunner" if name == "dask"
                                                   else "ThreadPoolTaskRunner")
        states[name] = flow(config=str(s.config_path), return_state=True)
        reports[name] = json.loads(open(states[name].result()).read())
    # The workers reported their task runs to the flow's API (no temporary API of their own).
    per_partition = {"link_partition", "match_partition", "purge_partition", "verify_partition"}
    assert _task_names(states["dask"]) >= per_partition and "match" not in _task_names(states["dask"])
    # On the thread pool each stage is one task (decision 0321): the per-partition steps run inside it.
    assert {"match", "purge", "verify"} <= _task_names(states["local"]) and not _task_names(states["local"]) & per_partition

    local, dask = reports["local"], reports["dask"]
    assert local["totals"]["rows_removed"] > 0 and local["verification"]["ok"] and dask["verification"]["ok"]
    assert dask["totals"] == local["totals"]
    strip = lambda d: {k: v for k, v in d.items() if k not in ("files",)}  # noqa: E731
    assert [strip(d) for d in dask["datasets"]] == [strip(d) for d in local["datasets"]]
    assert [[(f["path"], f["rows_out"], f["sha256_out"]) for f in d["files"]] for d in dask["datasets"]] == \
        [[(f["path"], f["rows_out"], f["sha256_out"]) for f in d["files"]] for d in local["datasets"]]
    assert _outputs(dask_settings) == _outputs(settings) and _outputs(settings)
