"""The sources sub-package reads one way: readers beside each other, the orchestrator on top, no circle."""

from __future__ import annotations

import ast
from pathlib import Path

import piguard.sources

PKG = Path(piguard.sources.__file__).parent


def _imports() -> dict[str, set[str]]:
    """Module -> the piguard.sources modules it imports (at any depth of the file, lazy imports included)."""
    graph: dict[str, set[str]] = {}
    for f in sorted(PKG.glob("*.py")):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text("utf-8"))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("piguard.sources.")
            ):
                deps.add(node.module.removeprefix("piguard.sources."))
            elif isinstance(node, ast.Import):
                deps.update(
                    a.name.removeprefix("piguard.sources.")
                    for a in node.names
                    if a.name.startswith("piguard.sources.")
                )
        graph[f.stem] = deps - {f.stem}
    return graph


def test_no_reader_imports_the_orchestrator_and_there_is_no_circle() -> None:
    graph = _imports()
    assert {m for m, deps in graph.items() if "tables" in deps} == set()
    for reader in ("csvfile", "jsonfile", "parquet", "excel", "sql", "spark"):
        assert "datamap" in graph[reader], reader  # each reader describes its tables as TableScans
    seen: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(m: str, path: list[str]) -> None:
        if seen.get(m) == 1:
            raise AssertionError(f"import circle: {' -> '.join([*path, m])}")
        if seen.get(m) == 2:
            return
        seen[m] = 1
        for d in sorted(graph.get(m, ())):
            visit(d, [*path, m])
        seen[m] = 2

    for m in graph:
        visit(m, [])


def test_the_former_public_names_still_import() -> None:
    from piguard.sources.datamap import DataMap, add_table_result
    from piguard.sources.tables import DataMap as Same
    from piguard.sources.tables import is_table_target, is_tabular_file, scan_tables

    assert Same is DataMap and callable(add_table_result)
    assert callable(is_table_target) and callable(is_tabular_file) and callable(scan_tables)
