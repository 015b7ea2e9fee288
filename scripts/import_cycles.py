#!/usr/bin/env python3
"""Finds import cycles among the project's own modules: gateway/src (TypeScript), runner/ and bench/,
and imports against the gateway's layers (http -> ops -> dialects -> core -> runners, never back,
and no dialect importing another).

    .venv/bin/python scripts/import_cycles.py        # prints each cycle and upward import; exit 1 if any

Imports go one way (dialects -> core -> runners in the gateway; handlers -> backends in the
runner), and a cycle is the first sign that a rule has two owners. Only static imports between
the project's own files count: `import ... from './x.ts'` and `export ... from` in TypeScript (type-only
imports too, since they tie the files' meanings together), `import x` / `from x import y` in
Python, relative or by the folder's own names (bench/ scripts import each other by file name).
Imports inside functions count as well: deferring one hides a cycle, it does not remove it.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TS_IMPORT = re.compile(r"""^\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}/[^'"]+)['"]""", re.M)
TS_BARE = re.compile(r"""^\s*import\s+['"](\.{1,2}/[^'"]+)['"]""", re.M)


def typescript_graph(src: Path) -> dict[Path, set[Path]]:
    graph: dict[Path, set[Path]] = {}
    for file in sorted(src.rglob("*.ts")):
        if "generated" in file.relative_to(src).parts:
            continue
        text = file.read_text(encoding="utf-8")
        targets = {(file.parent / spec).resolve() for spec in TS_IMPORT.findall(text) + TS_BARE.findall(text)}
        graph[file.resolve()] = {t for t in targets if t.suffix == ".ts" and t.is_file()}
    return graph


def python_graph(folder: Path, package: str | None) -> dict[Path, set[Path]]:
    """Edges between the .py files under folder; package is its import name, or None for a folder
    of scripts that import each other by file name (bench/ puts itself on sys.path)."""
    files = {f.resolve() for f in folder.rglob("*.py") if "_proto" not in f.parts}
    graph: dict[Path, set[Path]] = {}
    for file in sorted(files):
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        targets: set[Path] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = _resolve_from(file, folder, package, node.module, node.level)
                if base is None:
                    continue
                for alias in node.names:  # `from . import x` may name a module
                    targets |= _module_files(base / alias.name, files)
                targets |= _module_files(base, files)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    base = _absolute(folder, package, alias.name)
                    if base is not None:
                        targets |= _module_files(base, files)
        graph[file] = targets - {file}
    return graph


def _absolute(folder: Path, package: str | None, name: str) -> Path | None:
    parts = name.split(".")
    if package is None:
        return folder.joinpath(*parts)
    if parts[0] != package:
        return None
    return folder.joinpath(*parts[1:])


def _resolve_from(file: Path, folder: Path, package: str | None, module: str | None, level: int) -> Path | None:
    if level == 0:
        return _absolute(folder, package, module or "")
    base = file.parent
    for _ in range(level - 1):
        base = base.parent
    return base.joinpath(*(module.split(".") if module else []))


def _module_files(base: Path, files: set[Path]) -> set[Path]:
    """The file a dotted name points at: a module, or a package's __init__.py."""
    found = {p.resolve() for p in (base.with_suffix(".py"), base / "__init__.py")}
    return found & files


def cycles(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    """Each strongly connected group of more than one file (Tarjan), as a list of files."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    groups: list[list[Path]] = []
    counter = 0

    def visit(node: Path) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


#: The gateway's layers, outermost first: a file may import its own layer or one further down.
GATEWAY_LAYERS = ("http", "ops", "dialects", "core", "runners")

#: Folders of dialects/ that every dialect may import; any other folder there is one dialect,
#: which imports no other.
SHARED_DIALECT_PARTS = ("shared",)


def upward_imports(graph: dict[Path, set[Path]], src: Path) -> list[str]:
    """Imports against the gateway's layers, as "importer -> imported": into a layer above the
    importer's, or from one dialect into another."""
    def layer(path: Path) -> int | None:
        top = path.relative_to(src).parts[0]
        return GATEWAY_LAYERS.index(top) if top in GATEWAY_LAYERS else None

    def dialect(path: Path) -> str | None:
        parts = path.relative_to(src).parts
        if parts[0] != "dialects" or len(parts) < 3 or parts[1] in SHARED_DIALECT_PARTS:
            return None
        return parts[1]

    found = []
    for file, targets in sorted(graph.items()):
        here = layer(file)
        for target in sorted(targets):
            there = layer(target)
            upward = here is not None and there is not None and there < here
            across = dialect(file) is not None and dialect(target) not in (None, dialect(file))
            if upward or across:
                found.append(f"{file.relative_to(ROOT)} -> {target.relative_to(ROOT)}")
    return found


def all_cycles() -> dict[str, list[list[str]]]:
    """Cycles per part of the project, as paths relative to the repository root."""
    parts = {
        "gateway/src": typescript_graph(ROOT / "gateway/src"),
        "runner": python_graph(ROOT / "runner", "runner"),
        "bench": python_graph(ROOT / "bench", None),
    }
    return {name: [[str(p.relative_to(ROOT)) for p in group] for group in cycles(graph)]
            for name, graph in parts.items()}


def main() -> int:
    found = all_cycles()
    for name, groups in found.items():
        print(f"{name}: {len(groups)} import cycle(s)")
        for group in groups:
            print("  " + " <-> ".join(group))
    upward = upward_imports(typescript_graph(ROOT / "gateway/src"), ROOT / "gateway/src")
    print(f"gateway/src: {len(upward)} import(s) against the layers {' -> '.join(GATEWAY_LAYERS)}, or between dialects")
    for line in upward:
        print("  " + line)
    return 1 if any(found.values()) or upward else 0


if __name__ == "__main__":
    sys.exit(main())
