"""Names in files scanned whole: logs, JSON lines, CSV, TSV and chat transcripts of a few thousand lines.

A name found in a line on its own must be found when that line shares a file with thousands of others (a
share-of-the-text budget for the model once found 12 of 300 names in a log that held them all).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from piguard.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from scan_corpora import KINDS, SUFFIX, build

from shared_data import needs_shared, shared_path

runner = CliRunner()


def person_spans(path: Path) -> set[tuple[int, int]]:
    res = runner.invoke(app, ["scan", str(path), "--format", "jsonl", "--entities", "PERSON"])
    assert res.exit_code == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    return {(r["start"], r["end"]) for r in rows}


@pytest.mark.parametrize("kind", list(KINDS))
def test_names_are_found_in_a_whole_file(tmp_path: Path, kind: str) -> None:
    text, names = build(kind, lines=2000)
    path = tmp_path / f"export{SUFFIX[kind]}"
    path.write_text(text, encoding="utf-8")
    found = person_spans(path)
    gold = set(names)
    recall = len(found & gold) / len(gold)
    precision = len(found & gold) / len(found)
    assert recall >= 0.95, f"{kind}: recall {recall:.3f}"
    assert precision >= 0.97, f"{kind}: precision {precision:.3f}"
    assert all(text[s:e] == text[s:e].strip() for s, e in found), "a span took in whitespace"


@pytest.mark.parametrize("kind", ["log", "tsv", "chat"])
def test_a_line_reads_the_same_alone_and_among_thousands(tmp_path: Path, kind: str) -> None:
    text, _ = build(kind, lines=2000)
    head = "".join(text.splitlines(keepends=True)[:40])
    small, big = tmp_path / f"head{SUFFIX[kind]}", tmp_path / f"all{SUFFIX[kind]}"
    small.write_text(head, encoding="utf-8")
    big.write_text(text, encoding="utf-8")
    alone = person_spans(small)
    among = {(s, e) for s, e in person_spans(big) if e <= len(head)}
    assert alone and alone == among


CCF = shared_path("data", "pii-eval", "ccf2020-privacy", "ccf2020_privacy_train.jsonl")


@needs_shared(CCF)
def test_real_text_scanned_as_one_file_keeps_its_names() -> None:
    """CCF 2020's documents (news, forums, novels), one a line in one file: the names found are about
    those found document by document (the share-of-the-text budget found 0.10 of them as one file)."""
    from piguard import scan_text

    docs = [json.loads(x) for x in CCF.read_text("utf-8").splitlines()[:200]]
    gold_doc, gold_file, parts, off = set(), set(), [], 0
    for i, d in enumerate(docs):
        text = d["text"].replace("\n", " ")
        for e in d["entities"]:
            if e["label"] == "name":
                gold_doc.add((i, e["start"], e["end"]))
                gold_file.add((off + e["start"], off + e["end"]))
        parts.append(text + "\n")
        off += len(text) + 1
    alone = {
        (i, f.start, f.end)
        for i, d in enumerate(docs)
        for f in scan_text(d["text"].replace("\n", " "), entities=["PERSON"])
    }
    together = {(f.start, f.end) for f in scan_text("".join(parts), entities=["PERSON"])}
    recall_alone = len(alone & gold_doc) / len(gold_doc)
    recall_together = len(together & gold_file) / len(gold_file)
    assert recall_together >= 0.6 and recall_together >= recall_alone - 0.06, (recall_alone, recall_together)
