"""The API keeps answering, on the same store, while the real sweep flow runs (one Prefect harness)."""

from __future__ import annotations

import threading

from pipelines.config.settings import load_settings
from tests.helpers import EVENT_SCHEMA, PROFILE_SCHEMA, make_event, make_profile, read_dataset, write


def test_api_answers_and_stores_while_the_sweep_flow_runs(server, prefect_harness):
    from flows.sweep import gdpr_sweep

    root = server.root
    write(root / "clean/profiles/p1.parquet", [make_profile("gone@example.com", profile_id="g"),
                                               make_profile("kept@example.com", profile_id="k")], PROFILE_SCHEMA)
    write(root / "clean/events/e1.parquet", [make_event("gone@example.com"), make_event("kept@example.com")],
          EVENT_SCHEMA)
    with server.client() as c:
        assert c.post("/api/v1.0/blacklists", json={"Email": "gone@example.com"}).status_code == 201

    stop = threading.Event()
    answers: list[tuple[str, int]] = []
    added: list[str] = []

    def hammer() -> None:
        with server.client() as c:
            i = 0
            while not stop.is_set() or i < 5:
                email = f"during{i}@example.com"
                resp = c.post("/api/v1.0/blacklists", json={"Email": email})
                answers.append(("post", resp.status_code))
                if resp.status_code == 201:
                    added.append(email)
                answers.append(("put", c.put(f"/users/during-u{i}/blacklist-status",
                                             json={"blacklisted": True}).status_code))
                answers.append(("list", c.get("/api/v1.0/blacklists", params={"$top": "5"}).status_code))
                i += 1

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        report = gdpr_sweep(config=str(server.config))
    finally:
        stop.set()
        worker.join(timeout=120)

    assert report
    assert answers and {code for _, code in answers} <= {200, 201}
    assert [code for op, code in answers if op == "post"] == [201] * len(added)
    page = server.registry.list(top=9_999)
    assert {r.email for r in page.items} >= {"gone@example.com", *added}
    settings = load_settings(server.config)
    profiles = read_dataset(settings.dataset("profiles")).to_pylist()
    assert [(p["Info"] or {}).get("Email") for p in profiles] == ["kept@example.com"]
