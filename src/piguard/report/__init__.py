"""Renderers for scan results: summary table, JSON, JSONL, SARIF 2.1.0 and HTML.

Findings arrive as a stream; ``ScanSummary`` keeps only aggregates and a few masked examples so a scan of a
huge log stays in bounded memory. JSONL, JSON and SARIF are written as the stream goes.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import IO, Any

from piguard import __version__, taxonomy
from piguard.sources.files import Skip

# A finding as reports see it: the JSONL contract keys (plus "value" only with --unmasked).
FindingRow = dict[str, Any]
JSONL_KEYS = ("path", "line", "start", "end", "entity", "confidence", "sensitive", "masked", "detector")
MAX_EXAMPLES = 3


@dataclass
class ScanSummary:
    files_scanned: int = 0
    bytes_scanned: int = 0
    findings: int = 0
    by_entity: Counter[str] = field(default_factory=Counter)
    files_by_entity: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_file: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    skipped: list[Skip] = field(default_factory=list)
    notes: list[Skip] = field(default_factory=list)
    encodings: Counter[str] = field(default_factory=Counter)

    def add_findings(self, rows: list[FindingRow]) -> None:
        for r in rows:
            ent = str(r["entity"])
            self.findings += 1
            self.by_entity[ent] += 1
            self.files_by_entity[ent].add(str(r["path"]))
            self.by_file[str(r["path"])] += 1
            ex = self.examples[ent]
            if len(ex) < MAX_EXAMPLES and r["masked"] not in ex:
                ex.append(str(r["masked"]))

    @property
    def sensitive_findings(self) -> int:
        return sum(n for e, n in self.by_entity.items() if taxonomy.is_sensitive(e))

    def entity_rows(self) -> list[dict[str, Any]]:
        tax = taxonomy.entities()
        rows = []
        for ent, n in self.by_entity.most_common():
            et = tax.get(ent)
            rows.append(
                {
                    "entity": ent,
                    "name_en": et.en if et else ent,
                    "name_zh": et.zh if et else ent,
                    "class": et.pi_class if et else "custom",
                    "sensitive": bool(et and et.sensitive),
                    "count": n,
                    "files": len(self.files_by_entity[ent]),
                    "examples_masked": self.examples[ent],
                }
            )
        return rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_scanned": self.files_scanned,
            "bytes_scanned": self.bytes_scanned,
            "findings": self.findings,
            "sensitive_findings": self.sensitive_findings,
            "entities": self.entity_rows(),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "notes": [{"path": s.path, "note": s.reason} for s in self.notes],
        }


def finding_line(row: FindingRow) -> str:
    """One finding as a JSON object (the JSONL contract's keys, in order). Written out by hand with the json
    module's C string encoder: a dict through ``json.dumps`` cost ~6 us a finding, most of a dense scan."""
    if "value" in row:
        return json.dumps({k: row[k] for k in (*JSONL_KEYS, "value")}, ensure_ascii=False)
    conf = row["confidence"]
    return (
        f'{{"path": {_json_str(row["path"])}, "line": {int(row["line"])}, "start": {int(row["start"])}, '
        f'"end": {int(row["end"])}, "entity": {_json_str(row["entity"])}, '
        f'"confidence": {repr(conf) if type(conf) is float and conf - conf == 0 else json.dumps(conf)}, '
        f'"sensitive": {"true" if row["sensitive"] else "false"}, "masked": {_json_str(row["masked"])}, '
        f'"detector": {_json_str(row["detector"])}}}'
    )


_json_str = encode_basestring  # C-accelerated; what json.dumps uses with ensure_ascii=False


class JsonlWriter:
    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, rows: list[FindingRow]) -> None:
        for r in rows:
            self.out.write(finding_line(r) + "\n")

    def close(self, summary: ScanSummary, extra: dict[str, object] | None = None) -> None:
        self.out.flush()


class JsonWriter:
    """``{"summary": {...}, "findings": [...], "sources": [...]}``; findings are streamed."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.first = True
        self.out.write(f'{{"tool": "piguard", "version": {json.dumps(__version__)}, "findings": [')

    def write(self, rows: list[FindingRow]) -> None:
        for r in rows:
            self.out.write(("\n  " if self.first else ",\n  ") + finding_line(r))
            self.first = False

    def close(self, summary: ScanSummary, extra: dict[str, object] | None = None) -> None:
        self.out.write("\n]")
        for key, value in (extra or {}).items():
            self.out.write(f", {json.dumps(key)}: " + json.dumps(value, ensure_ascii=False, indent=1))
        self.out.write(', "summary": ' + json.dumps(summary.as_dict(), ensure_ascii=False, indent=1) + "}\n")
        self.out.flush()


class SarifWriter:
    """SARIF 2.1.0, one rule per entity; results point at line and character offsets."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.first = True
        self.rules_seen: set[str] = set()
        self.out.write(
            '{"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [{'
            '"results": ['
        )

    def write(self, rows: list[FindingRow]) -> None:
        for r in rows:
            ent = str(r["entity"])
            self.rules_seen.add(ent)
            result = {
                "ruleId": ent,
                "level": "error" if r["sensitive"] else "warning",
                "message": {"text": f"{ent} found: {r['masked']}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": str(r["path"])},
                            "region": {
                                "startLine": r["line"],
                                "charOffset": r["start"],
                                "charLength": r["end"] - r["start"],
                            },
                        }
                    }
                ],
                "properties": {"confidence": r["confidence"], "detector": r["detector"]},
            }
            self.out.write(("" if self.first else ",") + "\n" + json.dumps(result, ensure_ascii=False))
            self.first = False

    def close(self, summary: ScanSummary, extra: dict[str, object] | None = None) -> None:
        tax = taxonomy.entities()
        rules = []
        for ent in sorted(self.rules_seen):
            et = tax.get(ent)
            rules.append(
                {
                    "id": ent,
                    "name": ent.title().replace("_", ""),
                    "shortDescription": {"text": f"{et.en} ({et.zh})" if et else ent},
                    "properties": {"sensitive": bool(et and et.sensitive), "basis": et.basis if et else ""},
                }
            )
        tool = {"driver": {"name": "piguard", "version": __version__, "rules": rules}}
        notifications = [
            {"level": "warning", "message": {"text": f"skipped {s.path}: {s.reason}"}}
            for s in summary.skipped
        ]
        invocation = {"executionSuccessful": True, "toolExecutionNotifications": notifications}
        self.out.write(
            "\n], "
            + '"tool": '
            + json.dumps(tool, ensure_ascii=False)
            + ', "invocations": ['
            + json.dumps(invocation, ensure_ascii=False)
            + "]}]}\n"
        )
        self.out.flush()
