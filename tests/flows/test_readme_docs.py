"""What README.md tells users to type works, and what error messages cite exists (issue 17)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    return README[start:README.index("\n## ", start + 1)]


def test_query_examples_read_every_file_of_a_dataset(tmp_path, monkeypatch):
    """A version folder as the sweep and the ingest guard leave it: files at the top, one in ingest/,
    the manifest beside them. The README's DuckDB and Polars examples count every row."""
    folder = tmp_path / "data" / "clean" / "events"
    (folder / "ingest").mkdir(parents=True)
    pq.write_table(pa.table({"Scope": ["shop", "web"]}), folder / "part-0.parquet")
    pq.write_table(pa.table({"Scope": ["shop"]}), folder / "ingest" / "20261206T-abc.parquet")
    (folder / "_gdpr_sweep_manifest.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    section = _section("Query the cleaned data")
    (sql,) = re.findall(r"```sql\n-- duckdb\n(.*?)\n```", section, flags=re.S)
    with duckdb.connect() as con:
        assert dict(con.execute(sql).fetchall()) == {"shop": 2, "web": 1}
    (python,) = re.findall(r"```python\n(.*?)\n```", section, flags=re.S)
    *setup, last = python.strip().splitlines()
    scope: dict = {}
    exec("\n".join(setup), scope)
    assert eval(last, scope).item() == 3


def test_sections_cited_in_messages_and_comments_exist():
    headings = set(re.findall(r"^#{2,3} (.+)$", README, flags=re.M))
    cited = set()
    for path in [*ROOT.glob("*.toml"), *ROOT.glob("*.yaml"), *(p for d in ("pipelines", "gdpr_sweep", "flows", "scripts")
                                                               for p in (ROOT / d).rglob("*") if p.is_file())]:
        if path.suffix in (".pyc",):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        cited |= set(re.findall(r"""README(?:\.md)?,? ['"]([A-Z][^'"]{2,40})['"]""", text))
    assert cited, "no citations found: the pattern is wrong"
    assert cited - headings == set()


def test_requirements_txt_is_pyprojects_dependency_list():
    """The worker's pull step installs requirements.txt: it must be what pyproject.toml asks for."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == deps


def test_pull_section_clones_the_configured_ref_then_installs():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    clone, install = spec["pull"]
    assert clone["prefect.deployments.steps.git_clone"] == {"id": "clone", "repository": "{{ source.repository }}",
                                                            "branch": "{{ source.ref }}"}
    assert install["prefect.deployments.steps.pip_install_requirements"]["directory"] == "{{ clone.directory }}"
    assert spec["build"] == [{"flows.deploy_steps.source_defaults": {"id": "source"}}]
    for deployment in spec["deployments"]:
        assert deployment["work_pool"]["name"] == "gdpr-sweep"
        assert deployment["parameters"]["config"] == "{{ source.config }}"
        assert f"`{deployment['name']}`" in README or deployment["name"] in README


def test_source_defaults_come_from_the_environment_else_the_checkout(tmp_path, monkeypatch):
    import subprocess

    import pytest

    from flows.deploy_steps import source_defaults
    from pipelines.core.errors import ConfigError

    for var in ("GDPR_SWEEP_REPO", "GDPR_SWEEP_REF", "GDPR_SWEEP_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "release", str(tmp_path)], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    monkeypatch.chdir(tmp_path)
    assert source_defaults() == {"repository": str(tmp_path), "ref": "release",
                                 "config": str(tmp_path / "gdpr-sweep.toml")}
    subprocess.run(["git", "remote", "add", "origin", "https://git.example.com/lake/gdpr-sweep.git"], check=True)
    assert source_defaults()["repository"] == "https://git.example.com/lake/gdpr-sweep.git"
    monkeypatch.setenv("GDPR_SWEEP_REPO", "git@example.com:x/y.git")
    monkeypatch.setenv("GDPR_SWEEP_CONFIG", "/srv/lake/gdpr-sweep.toml")
    assert source_defaults() == {"repository": "git@example.com:x/y.git", "ref": "release",
                                 "config": "/srv/lake/gdpr-sweep.toml"}
    subprocess.run(["git", "checkout", "-q", "--detach"], check=True)
    with pytest.raises(ConfigError, match="GDPR_SWEEP_REF"):
        source_defaults()
    monkeypatch.setenv("GDPR_SWEEP_REF", "v1.0")
    assert source_defaults()["ref"] == "v1.0"


def test_docker_settings_need_all_three_variables_and_the_config_inside_the_lake(monkeypatch):
    import pytest

    from flows.deploy_steps import docker_settings
    from pipelines.core.errors import ConfigError

    for var in ("GDPR_SWEEP_IMAGE", "GDPR_SWEEP_LAKE", "GDPR_SWEEP_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GDPR_SWEEP_IMAGE", "registry.example.com/gdpr-sweep:1.0")
    with pytest.raises(ConfigError, match="set GDPR_SWEEP_LAKE, GDPR_SWEEP_CONFIG before deploying"):
        docker_settings()
    monkeypatch.setenv("GDPR_SWEEP_LAKE", "/srv/lake")
    monkeypatch.setenv("GDPR_SWEEP_CONFIG", "/etc/gdpr-sweep.toml")
    with pytest.raises(ConfigError, match="a file inside it"):
        docker_settings()
    monkeypatch.setenv("GDPR_SWEEP_CONFIG", "/srv/lake/gdpr-sweep.toml")
    assert docker_settings() == {"image": "registry.example.com/gdpr-sweep:1.0", "lake": "/srv/lake",
                                 "config": "/srv/lake/gdpr-sweep.toml"}


def test_docker_variant_has_the_same_deployments_as_prefect_yaml():
    process = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    docker = yaml.safe_load((ROOT / "docker" / "prefect.yaml").read_text())

    def shape(spec):
        return [(d["name"], d["entrypoint"], sorted(d["parameters"]), d.get("schedules")) for d in spec["deployments"]]

    assert shape(docker) == shape(process)
    assert {d["work_pool"]["name"] for d in docker["deployments"]} == {"gdpr-sweep-docker"}
    assert docker["build"] == [{"flows.deploy_steps.docker_settings": {"id": "docker"}}]


def test_readme_names_every_deployment_with_every_parameter():
    """README "Run and schedule" has one table row per prefect.yaml deployment, as `flow/deployment`,
    naming each of the flow's parameters and saying which are required."""
    import importlib.util
    import inspect

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([\w-]+/[\w-]+)` \|(.*)\|$", _section("Run and schedule"),
                                                      flags=re.M)}
    for deployment in spec["deployments"]:
        file, name = deployment["entrypoint"].split(":")
        module_spec = importlib.util.spec_from_file_location(f"entry_{name}", ROOT / file)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        flow = getattr(module, name)
        row = rows[f"{flow.name}/{deployment['name']}"]
        for parameter in inspect.signature(flow.fn).parameters.values():
            assert f"`{parameter.name}`" in row, (flow.name, parameter.name)
        if any(p.default is inspect.Parameter.empty for p in inspect.signature(flow.fn).parameters.values()):
            assert "required" in row, flow.name


def test_prefect_setup_says_when_no_api_answers(tmp_path):
    """scripts/prefect-setup's pool step gives up with one line (exit 2) when nothing listens."""
    import subprocess
    import sys

    from tests.support.prefect_env import child_env
    from tests.support.procs import free_port

    port = free_port()  # closed again: nothing listens there
    env = child_env(f"http://127.0.0.1:{port}/api", drop=("PREFECT_",), PREFECT_HOME=str(tmp_path / "home"),
                    GDPR_SWEEP_API_WAIT_SECONDS="1")
    done = subprocess.run([sys.executable, "-m", "flows.deploy_steps"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (f"gdpr-sweep: error: no Prefect API answers at "
                                                    f"http://127.0.0.1:{port}/api/ (is the server started?)")
