"""Imports go one way: no cycle among the gateway's, the runner's or the benches' own modules, and
none from a gateway layer into the one above it."""

from __future__ import annotations

import importlib.util

from support import ROOT

_spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts/import_cycles.py")
import_cycles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_cycles)


def test_the_project_has_no_import_cycle():
    assert import_cycles.all_cycles() == {"gateway/src": [], "runner": [], "bench": []}


def test_gateway_layers_import_only_downwards():
    src = ROOT / "gateway/src"
    assert import_cycles.upward_imports(import_cycles.typescript_graph(src), src) == []


def test_an_upward_import_and_one_between_dialects_are_found(tmp_path, monkeypatch):
    for folder in ("http", "core", "runners", "dialects/tei", "dialects/cohere", "dialects/shared"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "http" / "route.ts").write_text("import { s } from '../core/s.ts';\n")
    (tmp_path / "core" / "s.ts").write_text("import type { R } from '../http/route.ts';\nimport { c } from '../runners/c.ts';\n")
    (tmp_path / "runners" / "c.ts").write_text("export const c = 1;\n")
    (tmp_path / "dialects" / "shared" / "f.ts").write_text("export const f = 1;\n")
    (tmp_path / "dialects" / "cohere" / "r.ts").write_text("export const r = 1;\n")
    (tmp_path / "dialects" / "tei" / "t.ts").write_text(
        "import { f } from '../shared/f.ts';\nimport { r } from '../cohere/r.ts';\nimport { s } from '../../core/s.ts';\n")
    monkeypatch.setattr(import_cycles, "ROOT", tmp_path)
    found = import_cycles.upward_imports(import_cycles.typescript_graph(tmp_path), tmp_path)
    assert found == ["core/s.ts -> http/route.ts", "dialects/tei/t.ts -> dialects/cohere/r.ts"]


def test_a_cycle_is_found_in_either_language(tmp_path):
    """The check itself can fail: two files that import each other, directly or through a third."""
    (tmp_path / "a.ts").write_text("import { b } from './b.ts';\nexport const a = 1;\n")
    (tmp_path / "b.ts").write_text("import type { c } from './sub/c.ts';\nexport const b = 2;\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.ts").write_text("export { a } from '../a.ts';\nexport const c = 3;\n")
    (tmp_path / "lone.ts").write_text("import { a } from './a.ts';\n")
    ts = import_cycles.cycles(import_cycles.typescript_graph(tmp_path))
    assert [[p.name for p in group] for group in ts] == [["a.ts", "b.ts", "c.ts"]]

    pkg = tmp_path / "pkg"
    (pkg / "handlers").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "handlers" / "__init__.py").write_text("")
    (pkg / "handlers" / "base.py").write_text("def f():\n    from ..gate import g  # deferred, still a cycle\n")
    (pkg / "gate.py").write_text("from .handlers.base import f\n")
    (pkg / "free.py").write_text("import pkg.gate\n")
    py = import_cycles.cycles(import_cycles.python_graph(pkg, "pkg"))
    assert [sorted(p.name for p in group) for group in py] == [["base.py", "gate.py"]]
