"""Renderers for scan results: summary table, JSON, JSONL, SARIF 2.1.0 and HTML.

Findings arrive as a stream of column batches (``detect.batch.FindingBatch``); ``ScanSummary`` keeps only
aggregates and a few masked examples so a scan of a huge log stays in bounded memory. JSONL, JSON and SARIF
are written as the stream goes, in UTF-8, by the compiled renderer (``FindingBatch.render``);
``finding_line`` and ``sarif_result`` are the readable definitions of what it writes.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import IO, TYPE_CHECKING, Any

from piguard import __version__, taxonomy
from piguard.sources.files import Skip

if TYPE_CHECKING:
    from piguard.detect.batch import FindingBatch

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

    def add_batch(self, path: str, batch: FindingBatch) -> None:
        """Count a batch's findings and keep a few masked examples (no object per finding)."""
        if not batch.count:
            return
        counts = batch.entity_counts()
        self.findings += batch.count
        self.by_file[path] += batch.count
        examples = batch.examples(MAX_EXAMPLES)
        for ent, n in counts.items():
            self.by_entity[ent] += n
            self.files_by_entity[ent].add(path)
            ex = self.examples[ent]
            for m in examples.get(ent, ()):
                if len(ex) < MAX_EXAMPLES and m not in ex:
                    ex.append(m)

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


def sarif_result(row: FindingRow) -> dict[str, Any]:
    """One finding as a SARIF 2.1.0 result: the rule is the entity, the region its line and offsets."""
    ent = str(row["entity"])
    return {
        "ruleId": ent,
        "level": "error" if row["sensitive"] else "warning",
        "message": {"text": f"{ent} found: {row['masked']}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": str(row["path"])},
                    "region": {
                        "startLine": row["line"],
                        "charOffset": row["start"],
                        "charLength": row["end"] - row["start"],
                    },
                }
            }
        ],
        "properties": {"confidence": row["confidence"], "detector": row["detector"]},
    }


def _dumps(value: object, indent: int | None = None) -> str:
    """JSON that encodes to valid UTF-8: non-ASCII kept as written, unless a name holds bytes that are not
    UTF-8 (decoded with surrogate escapes); then everything non-ASCII is \\u-escaped."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, indent=indent)
    return text


class _BatchWriter:
    """Writes batches to a binary stream, the path encoded once per file."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self._path = ""
        self._path_json = b'""'

    def path_json(self, path: str) -> bytes:
        if path != self._path:
            from piguard.detect.batch import json_path

            self._path, self._path_json = path, json_path(path)
        return self._path_json


class JsonlWriter(_BatchWriter):
    def write(self, path: str, batch: FindingBatch) -> None:
        from piguard.detect.batch import FORMAT_JSONL

        self.out.write(batch.render(FORMAT_JSONL, self.path_json(path)))

    def close(self, summary: ScanSummary, extra: dict[str, object] | None = None) -> None:
        self.out.flush()


class JsonWriter(_BatchWriter):
    """``{"summary": {...}, "findings": [...], "sources": [...]}``; findings are streamed."""

    def __init__(self, out: IO[bytes]) -> None:
        super().__init__(out)
        self.first = True
        self.out.write(f'{{"tool": "piguard", "version": {json.dumps(__version__)}, "findings": ['.encode())

    def write(self, path: str, batch: FindingBatch) -> None:
        from piguard.detect.batch import FORMAT_JSON_ITEMS

        data = batch.render(FORMAT_JSON_ITEMS, self.path_json(path))
        if data and self.first:
            data = data[1:]  # the array's first item follows no comma
            self.first = False
        self.out.write(data)

    def close(self, summary: ScanSummary, extra: dict[str, object] | None = None) -> None:
        parts = ["\n]"]
        for key, value in (extra or {}).items():
            parts.append(f", {json.dumps(key)}: " + _dumps(value, indent=1))
        parts.append(', "summary": ' + _dumps(summary.as_dict(), indent=1) + "}\n")
        self.out.write("".join(parts).encode("utf-8"))
        self.out.flush()


class SarifWriter(_BatchWriter):
    """SARIF 2.1.0, one rule per entity; results point at line and character offsets."""

    def __init__(self, out: IO[bytes]) -> None:
        super().__init__(out)
        self.first = True
        self.rules_seen: set[str] = set()
        self.out.write(
            b'{"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [{'
            b'"results": ['
        )

    def write(self, path: str, batch: FindingBatch) -> None:
        from piguard.detect.batch import FORMAT_SARIF

        self.rules_seen.update(batch.entity_counts())
        data = batch.render(FORMAT_SARIF, self.path_json(path))
        if data and self.first:
            data = data[1:]
            self.first = False
        self.out.write(data)

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
            (
                "\n], " + '"tool": ' + _dumps(tool) + ', "invocations": [' + _dumps(invocation) + "]}]}\n"
            ).encode("utf-8")
        )
        self.out.flush()
