"""Validating real outputs against the published JSON Schemas (``src/piguard/schemas/``).

The schemas are read from the installed package, as a user's validator would find them, and checked with
the ``jsonschema`` package (draft 2020-12). Used by tests/schemas and by the crawl tests, whose crawls
already produce summaries and provenance records.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("piguard.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name))


def schema_errors(name: str, doc: Any) -> list[str]:
    """Every way ``doc`` breaks the schema ``name`` (``"scan-report"`` for scan-report.schema.json)."""
    return [f"{e.json_path}: {e.message[:300]}" for e in _validator(name).iter_errors(doc)]


def assert_valid(name: str, doc: Any, what: str = "") -> None:
    errs = schema_errors(name, doc)
    assert not errs, f"{what or 'output'} does not match {name}.schema.json:\n" + "\n".join(errs[:20])


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not JSON (RFC 8259 has no NaN or Infinity)")


def strict_json(text: str) -> Any:
    """Parse as JSON parsers outside Python do: Python's json module reads (and writes) NaN and Infinity,
    which jq, JavaScript and most other readers refuse."""
    return json.loads(text, parse_constant=_not_json)


def assert_crawl_outputs_valid(out: Path, printed: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """A crawl's outputs: the summary the verb printed (without ``robots``), every ``summary*.json`` and
    ``provenance*.jsonl`` in ``out`` (read strictly), and the records the caller parsed."""
    if printed:
        assert_valid("crawl-summary", printed, "the summary piguard crawl printed")
        assert "robots" not in printed
    for path in sorted(out.glob("summary*.json")):
        assert_valid("crawl-summary", strict_json(path.read_text("utf-8")), path.name)
    for path in sorted(out.glob("provenance*.jsonl")):
        for i, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            record = strict_json(line)
            assert_valid("crawl-provenance", record, f"{path.name} line {i} ({record.get('outcome')})")
    for i, record in enumerate(records, 1):
        assert_valid("crawl-provenance", record, f"provenance record {i} ({record.get('outcome')})")
