"""The direction of imports (README, Architecture): portal → operations → provisioning → zones,
certificates, notifications; every app → outbox, which imports none of them; no cycle
between modules, not even inside an app (an import inside a function counts). Tests and
benchmarks share harness/, and neither imports the other nor is imported by an app."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "portal",
    "operations",
    "provisioning",
    "zones",
    "certificates",
    "notifications",
    "webhooks",
    "outbox",
)
# Which apps each app may import (itself aside).
MAY_IMPORT = {
    "portal": {
        "operations",
        "provisioning",
        "zones",
        "certificates",
        "notifications",
        "webhooks",
        "outbox",
    },
    "operations": {"provisioning", "zones", "certificates", "notifications", "webhooks", "outbox"},
    "provisioning": {"zones", "certificates", "notifications", "webhooks", "outbox"},
    "zones": {"outbox"},
    "certificates": {"outbox"},
    "notifications": {"outbox"},
    "webhooks": {"outbox"},
    "outbox": set(),
    "tests": {*APPS, "harness"},
    "benchmarks": {*APPS, "harness"},
    "harness": set(),
}


def project_modules(root: Path) -> dict[str, Path]:
    modules = {}
    for package in MAY_IMPORT:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each project module and the project modules it imports, wherever the statement is."""
    modules = project_modules(root)

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    found.add(submodule if submodule in modules else base)
        graph[name] = {known(module) for module in found} - {None, name}
    return graph


def wrong_directions(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for name, imported in graph.items():
        top = name.split(".")[0]
        for target in imported:
            other = target.split(".")[0]
            if other != top and other not in MAY_IMPORT[top]:
                wrong.append(f"{name} imports {target}")
    return sorted(wrong)


def cycles(graph: dict[str, set[str]]) -> list[str]:
    found = []
    state: dict[str, str] = {}  # "open" while on the current path, then "done"

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                found.append(" → ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_imports_run_one_way():
    assert wrong_directions(import_graph(ROOT)) == []


def test_no_import_cycle():
    assert cycles(import_graph(ROOT)) == []


def test_the_checks_see_a_cycle_and_an_import_upwards(tmp_path):
    """What the two tests above forbid, they find: an import back (even inside a
    function), a leaf app importing provisioning, benchmarks importing tests."""
    files = {
        "zones/__init__.py": "",
        "zones/a.py": "from zones import b\n",
        "zones/b.py": "def f():\n    from .a import x\n",
        "zones/c.py": "import provisioning.models\n",
        "provisioning/__init__.py": "",
        "provisioning/models.py": "",
        "benchmarks/common.py": "from tests.processes import free_port\n",
        "tests/processes.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert cycles(graph) == ["zones.a → zones.b → zones.a"]
    assert wrong_directions(graph) == [
        "benchmarks.common imports tests.processes",
        "zones.c imports provisioning.models",
    ]
