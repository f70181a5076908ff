"""The schema files themselves: valid draft 2020-12, named by their $id, every field described, shipped in the
package, linked from the docs, and the copies one schema keeps of another's definitions identical."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from schema_check import load_schema

REPO = Path(__file__).resolve().parents[2]
# The outputs of scan, the data map, check, crawl, entities, ledger and consent, and the doc linking each
# (passport and deid schemas are tested with their verbs).
OUTPUTS = {
    "scan-report": "docs/detect.md",
    "scan-finding": "docs/detect.md",
    "datamap": "docs/datamap.md",
    "check-report": "docs/rules.md",
    "crawl-summary": "docs/crawl.md",
    "crawl-provenance": "docs/crawl.md",
    "entities": "docs/detect.md",
    "ledger-status": "docs/ledger.md",
    "ledger-audit-entry": "docs/ledger.md",
    "consent-record": "docs/ledger.md",
    "consent": "docs/ledger.md",
    "model-info": "docs/detect-names-addresses.md",
    "model-scores": "docs/detect-names-addresses.md",
}
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _shipped() -> list[str]:
    return sorted(
        p.name.removesuffix(".schema.json")
        for p in resources.files("piguard.schemas").iterdir()
        if p.name.endswith(".schema.json")
    )


@pytest.mark.parametrize("name", _shipped())
def test_every_shipped_schema_is_valid_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == DRAFT
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema.get("$id") and schema.get("title")


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_output_schemas_are_named_by_their_id(name: str) -> None:
    assert load_schema(name)["$id"] == f"https://piguard.dev/schemas/{name}.schema.json"


def test_the_outputs_schemas_are_shipped() -> None:
    assert set(OUTPUTS) <= set(_shipped())


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    assert ref.startswith("#/$defs/"), ref  # self-contained: no schema needs another file to resolve
    return schema["$defs"][ref.removeprefix("#/$defs/")]


# Keywords that restrict properties declared elsewhere (if/then: "a stored page has a path") rather than
# declare them.
_CONSTRAINTS = frozenset({"if", "then", "else", "allOf", "anyOf", "not", "contains"})


def _undescribed(schema: dict[str, Any], node: Any, path: str) -> list[str]:
    """Properties (at any depth) that say nothing about what they mean, on themselves or on their $ref."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, sub in (node.get("properties") or {}).items():
            if not isinstance(sub, dict):
                continue
            said = sub.get("description") or _resolve(schema, sub).get("description")
            said = said or ("items" in sub and _resolve(schema, sub["items"]).get("description"))
            if not said:
                out.append(f"{path}/properties/{key}")
        for key, sub in node.items():
            if key not in _CONSTRAINTS:
                out += _undescribed(schema, sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            out += _undescribed(schema, sub, f"{path}/{i}")
    return out


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_every_field_is_described(name: str) -> None:
    schema = load_schema(name)
    assert schema.get("description")
    assert _undescribed(schema, schema, "#") == []


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_refs_stay_inside_the_file(name: str) -> None:
    """A user validates with one file (check-jsonschema, ajv): no $ref may point at another schema."""
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for sub in node.values():
                collect(sub)
        elif isinstance(node, list):
            for sub in node:
                collect(sub)

    schema = load_schema(name)
    collect(schema)
    assert all(r.startswith("#/$defs/") and r.removeprefix("#/$defs/") in schema["$defs"] for r in refs)


def test_scan_report_definitions_are_the_finding_and_data_map_schemas() -> None:
    """scan-report keeps copies (so it stands alone); they must not drift from the files they copy."""
    report = load_schema("scan-report")["$defs"]
    finding = {k: v for k, v in load_schema("scan-finding").items() if k not in ("$schema", "$id")}
    assert report["finding"] == finding
    datamap = load_schema("datamap")["$defs"]
    shared = set(report) & set(datamap)
    assert {"sourceRow", "combination", "evidence", "source", "maskedExamples"} <= shared
    for key in shared:
        assert report[key] == datamap[key], key


def test_model_info_scores_are_the_model_scores_schema() -> None:
    scores = {k: v for k, v in load_schema("model-scores").items() if k not in ("$schema", "$id")}
    assert load_schema("model-info")["$defs"]["scores"] == scores


@pytest.mark.parametrize(("name", "doc"), sorted(OUTPUTS.items()))
def test_docs_link_the_schema(name: str, doc: str) -> None:
    assert f"src/piguard/schemas/{name}.schema.json" in (REPO / doc).read_text("utf-8")
