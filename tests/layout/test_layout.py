"""The shape of the code (CONTRIBUTING.md "Where things go"): no import cycle between the modules of the
three packages, edge -> flows -> pipelines and never back, and modules and functions small enough to read.

The import graph is read from the source with `ast` (every `import` and `from ... import`, at module
level or inside a function), so a lazy import inside a function counts as an arrow too; imports under
`if TYPE_CHECKING:` do not, since they never run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipelines", "flows", "gdpr_sweep")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module of ours that `name` (a module or a module.attribute) refers to, if any."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def type_checking_blocks(tree: ast.AST) -> set[int]:
    """Ids of the import nodes under `if TYPE_CHECKING:`: read by type checkers only, never run."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids.update(id(inner) for inner in ast.walk(node))
    return ids


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = type_checking_blocks(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            target = resolve(name, known)
            if target and target != module:
                targets.add(target)
    return targets


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {module: imports_of(module, path, known) for module, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def against_layering(graph: dict[str, set[str]]) -> list[str]:
    """The arrows that point the wrong way between the three packages: edge (`gdpr_sweep`: CLI, HTTP
    API) -> `flows` -> `pipelines`. A flows module imports nothing of the edge; a pipelines module
    imports neither flows nor the edge."""
    wrong = []
    for module, targets in graph.items():
        here = module.split(".")[0]
        for target in targets:
            there = target.split(".")[0]
            if (here, there) in (("pipelines", "flows"), ("pipelines", "gdpr_sweep"), ("flows", "gdpr_sweep")):
                wrong.append(f"{module} -> {target}")
    return sorted(wrong)


def test_the_layering_check_finds_a_wrong_arrow() -> None:
    graph = {"flows.sweep": {"gdpr_sweep.cli_common", "pipelines.core.model"},
             "pipelines.core.match": {"flows.retry"}, "pipelines.reporting.audit": {"gdpr_sweep.demo"},
             "gdpr_sweep.cli": {"flows.sweep", "pipelines.core.errors"}}
    assert against_layering(graph) == ["flows.sweep -> gdpr_sweep.cli_common", "pipelines.core.match -> flows.retry",
                                       "pipelines.reporting.audit -> gdpr_sweep.demo"]


def test_arrows_point_one_way() -> None:
    wrong = against_layering(import_graph())
    assert not wrong, "imports against the layering (edge -> flows -> pipelines): " + ", ".join(wrong)


# Inside pipelines/: which subpackage may import which (docs/ARCHITECTURE.md, "Layers inside pipelines/").
# `core.errors` is the bottom of everything; `config` sits on it alone; the rest of `core` sits on `config`
# (the shared types carry a DatasetConfig). Every subpackage may import itself and `core.errors`.
PIPELINES_ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "core": {"config"},
    "sample": {"core", "config"},
    "datasets": {"core", "config"},
    "reporting": {"datasets", "core", "config"},
    "registry": {"reporting", "core", "config"},
    "assurance": {"reporting", "datasets", "core", "config"},
    "operations": {"assurance", "registry", "reporting", "datasets", "core", "config"},
}
# Arrows against that order that are known and not yet removed, each with its reason. The test fails
# when one of them is gone, so the list stays exact.
PIPELINES_EXCEPTIONS: dict[tuple[str, str], str] = {}


def subpackage(module: str) -> str:
    """`pipelines.core.match` -> `core`; `pipelines.core.errors` -> `core.errors`; `pipelines` -> ``."""
    parts = module.split(".")
    if module == "pipelines.core.errors":
        return "core.errors"
    return parts[1] if len(parts) > 1 else ""


def against_pipelines_order(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    wrong = []
    for module, targets in graph.items():
        if not module.startswith("pipelines."):
            continue
        here = subpackage(module)
        for target in targets:
            there = subpackage(target) if target.startswith("pipelines.") else None
            if there is None or there in ("", "core.errors") or there == here or there.split(".")[0] == here:
                continue
            if there not in PIPELINES_ALLOWED.get(here.split(".")[0], set()):
                wrong.append((module, target))
    return sorted(wrong)


def test_the_pipelines_order_is_a_hierarchy_and_its_check_finds_a_wrong_arrow() -> None:
    assert find_cycle({k: set(v) for k, v in PIPELINES_ALLOWED.items()}) is None
    assert set(PIPELINES_ALLOWED) == {m.split(".")[1] for m in modules() if m.count(".") == 2 and
                                      m.startswith("pipelines.")}, "a pipelines subpackage without its place"
    graph = {"pipelines.config.settings": {"pipelines.core.errors", "pipelines.core.identity"},
             "pipelines.reporting.chain": {"pipelines.datasets.storage", "pipelines.registry.registry"},
             "pipelines.operations.clear": {"pipelines.assurance.residual"}}
    assert against_pipelines_order(graph) == [("pipelines.config.settings", "pipelines.core.identity"),
                                              ("pipelines.reporting.chain", "pipelines.registry.registry")]


def test_pipelines_subpackages_import_only_downwards() -> None:
    found = against_pipelines_order(import_graph())
    wrong = [f"{a} -> {b}" for a, b in found if (a, b) not in PIPELINES_EXCEPTIONS]
    gone = [f"{a} -> {b}" for a, b in PIPELINES_EXCEPTIONS if (a, b) not in found]
    assert not wrong, "imports against the order inside pipelines/ (docs/ARCHITECTURE.md): " + ", ".join(wrong)
    assert not gone, "no longer needed, remove from PIPELINES_EXCEPTIONS: " + ", ".join(gone)


@pytest.mark.parametrize("module", sorted(modules()))
def test_module_and_function_sizes(module: str) -> None:
    path = modules()[module]
    source = path.read_text(encoding="utf-8")
    lines = source.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: {lines} lines (at most {MAX_MODULE_LINES})"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines: " + ", ".join(long)


DOC_REFERENCE = re.compile(r"docs/[\w./-]+\.(?:md|json|png|html)")
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".toml", ".txt"}


def project_texts() -> list[Path]:
    found = []
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if path.suffix in TEXT_SUFFIXES and path.is_file() and not any(
                p.startswith(".") or p in ("data", "node_modules", "__pycache__") for p in parts):
            found.append(path)
    return found


def test_every_reference_resolves_inside_the_repository() -> None:
    """Code and docs cite `docs/...` files and the rules as §N (docs/spec.md), never files that live
    outside the repository."""
    broken, outside = [], []
    for path in project_texts():
        if path == Path(__file__).resolve():
            continue  # the words it looks for
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(ROOT)
        broken += [f"{rel}: {ref}" for ref in DOC_REFERENCE.findall(text)
                   if not (ROOT / ref.rstrip(".")).exists() and "NNNN" not in ref]
        outside += [f"{rel}: {word}" for word in ("SPEC §", "NOTES.md", "/work/shared") if word in text]
    assert not broken, "references to missing files: " + "; ".join(broken)
    assert not outside, "references to files outside the repository: " + "; ".join(outside)


ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def unnamed_modules(text: str, paths: list[Path]) -> list[str]:
    """The modules `text` does not name: a module by its path (`pipelines/core/match.py`), a package's
    `__init__.py` by its folder (`pipelines/core/`) or its own path."""
    missing = []
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        folder = path.parent.relative_to(ROOT).as_posix() + "/"
        if f"`{rel}`" not in text and not (path.name == "__init__.py" and f"`{folder}`" in text):
            missing.append(rel)
    return missing


def test_the_module_check_finds_an_unnamed_module() -> None:
    paths = [ROOT / "pipelines/core/match.py", ROOT / "pipelines/core/__init__.py", ROOT / "flows/sweep.py"]
    assert unnamed_modules("`pipelines/core/` holds `pipelines/core/match.py`", paths) == ["flows/sweep.py"]


def test_architecture_names_every_module() -> None:
    missing = unnamed_modules(ARCHITECTURE.read_text(encoding="utf-8"), sorted(modules().values()))
    assert not missing, ("docs/ARCHITECTURE.md (\"Modules\") does not name: " + ", ".join(missing)
                         + "; add a row with the module's path and what it holds")


def test_architecture_states_the_pipelines_order_the_test_checks() -> None:
    """The table of docs/ARCHITECTURE.md "Layers inside pipelines/" is PIPELINES_ALLOWED."""
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", ARCHITECTURE.read_text(encoding="utf-8"), re.MULTILINE)
    stated = {name: set(re.findall(r"`(\w+)`", allowed)) for name, allowed in rows if name in PIPELINES_ALLOWED}
    assert stated == PIPELINES_ALLOWED
