"""The rooms of ARCHITECTURE.md, checked on the source: which top-level folder may import which
(the simulator in ``sim/`` is for the demo, tests and benchmarks: nothing of the domain imports
it), and no import circle among the console's modules (imports inside functions count)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {
    "events",
    "ingest",
    "sim",
    "detectors",
    "rules",
    "evidence",
    "sinks",
    "console",
    "offsite",
}
# ARCHITECTURE.md, "Rooms": what each room of the domain may import besides itself
ALLOWED = {
    "events": set(),
    "ingest": {"events"},
    "detectors": {"events"},
    "rules": {"events"},
    "evidence": {"events", "rules"},
    "sinks": {"events"},
    "console": {"events", "sinks"},
}


def imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, module, level) of every import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level and not node.module:  # from . import x, y
                found += [(node.lineno, a.name, node.level) for a in node.names]
            else:
                found.append((node.lineno, node.module or "", node.level))
    return found


def test_each_room_imports_only_what_architecture_allows() -> None:
    wrong = []
    for room, allowed in ALLOWED.items():
        for path in sorted((ROOT / room).rglob("*.py")):
            for line, module, level in imports(path):
                top = module.split(".")[0]
                if level == 0 and top in FIRST_PARTY and top != room and top not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert wrong == []


def test_console_modules_import_no_circle() -> None:
    folder = ROOT / "console"
    names = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    edges: dict[str, set[str]] = {n: set() for n in names}
    for name in names:
        for _, module, level in imports(folder / f"{name}.py"):
            target = module.split(".")[0] if level == 1 else module.removeprefix("console.")
            if (level == 1 or module.startswith("console.")) and target in names:
                edges[name].add(target)

    def circle(node: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(edges[node]):
            if nxt in path:
                return [*path[path.index(nxt) :], nxt]
            if found := circle(nxt, [*path, nxt]):
                return found
        return None

    circles = [c for n in sorted(names) if (c := circle(n, [n]))]
    assert circles == []


def test_every_package_folder_is_declared_for_the_install() -> None:
    """A sub-folder missing from pyproject's ``packages`` is left out of the wheel, and setuptools
    warns during ``pip install`` (the quiet install of issue 31)."""
    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    folders = {
        ".".join(d.relative_to(ROOT).parts)
        for top in FIRST_PARTY
        for d in [ROOT / top, *(ROOT / top).rglob("*")]
        if d.is_dir() and d.name != "__pycache__" and any(f.is_file() for f in d.iterdir())
    }
    assert folders - declared == set()
