"""What a passport takes from the ledger: the dataset's provenance record (with the audit entry that
recorded it) and consent coverage. Counts and hashes only: subjects travel as keyed pseudonyms inside
this module and leave it as a count and one SHA-256 over the sorted set."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from piguard.ledger import Ledger, LedgerError, pseudonym
from piguard.passport.predicate import format_time
from piguard.passport.records import file_sha256

VALID_KINDS = frozenset(("explicit", "separate", "guardian"))


def provenance(ledger: Ledger, dataset_id: str, crawl_dir: str | None = None) -> dict[str, Any]:
    """The provenance record ``dataset_id`` as the ledger's audit log recorded it."""
    entries = [
        e for e in ledger.audit_entries(object_id=dataset_id)
        if e["action"] == "provenance.record" and e["object_type"] == "dataset"
    ]  # fmt: skip
    if not entries:
        raise LedgerError(f"provenance record {dataset_id!r} is not in the ledger {ledger.url}")
    e = entries[-1]
    p = e["payload"]
    crawl = crawl_summary(crawl_dir) if crawl_dir else None
    return {
        "datasetId": dataset_id,
        "dataset": str(p.get("dataset", "")),
        "method": p["method"],
        "legalBasis": p["legal_basis"],
        "source": str(p.get("source_identity", "")),
        "upstream": list(dict.fromkeys(p.get("upstream") or [])),
        "categories": list(dict.fromkeys(p.get("categories") or [])),
        "recordedAt": _rfc3339(str(p.get("recorded_at", e["at"]))),
        "auditEntry": {"seq": int(e["seq"]), "hash": str(e["hash"])},
        "crawl": crawl,
    }


def _rfc3339(text: str) -> str:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return text
    return format_time(t if t.tzinfo else t.replace(tzinfo=UTC))


# The crawl summary's counts (crawl/store.py) and the predicate's names for them.
_CRAWL_COUNTS = {
    "pages_stored": "pagesStored",
    "refused_robots": "refusedByRobots",
    "protected": "protectedSkipped",
    "reserved": "optOutsHonoured",
    "records": "decisions",
}
_CRAWL_TALLIES = {"protected_by_kind": "protectedByKind", "pi_removed_by_entity": "piRemovedByEntity"}


def crawl_summary(out_dir: str) -> dict[str, Any]:
    """The crawl's own summary (``summary*.json``, one per worker, summed) and the SHA-256 of each
    provenance file, so a buyer holding the crawl output can match it."""
    d = Path(out_dir)
    summaries = sorted(d.glob("summary*.json"))
    if not summaries:
        raise LedgerError(f"crawl output {d} holds no summary.json (run 'piguard crawl --out {d}' first)")
    total: dict[str, Any] = {dst: 0 for dst in _CRAWL_COUNTS.values()}
    total |= {dst: {} for dst in _CRAWL_TALLIES.values()}
    for s in summaries:
        try:
            doc = json.loads(s.read_text("utf-8"))
        except (OSError, ValueError):
            raise LedgerError(f"crawl summary {s} is not readable JSON") from None
        for src, dst in _CRAWL_COUNTS.items():
            total[dst] += int(doc.get(src, 0))
        for src, dst in _CRAWL_TALLIES.items():
            for k, v in (doc.get(src) or {}).items():
                total[dst][k] = total[dst].get(k, 0) + int(v)
    files = [{"name": f.name, "sha256": file_sha256(f)} for f in sorted(d.glob("provenance*.jsonl"))]
    total["provenanceFiles"] = files
    return total


def _covers(cv: Any, purposes: Sequence[str], recipients: Sequence[str], entities: Iterable[str]) -> bool:
    if not set(purposes) <= cv.purposes:
        return False
    if "*" not in cv.recipients and not set(recipients) <= cv.recipients:
        return False
    return set(entities) <= cv.categories


def consent_coverage(
    ledger: Ledger,
    key: bytes,
    subject_values: Iterable[str],
    *,
    purposes: Sequence[str],
    recipients: Sequence[str],
    entities: Iterable[str],
) -> dict[str, Any]:
    """How many of the dataset's subjects hold a valid consent (explicit, separate or guardian; not
    withdrawn) covering every permitted purpose and recipient and every entity delivered."""
    subjects: set[str] = set()
    for raw in subject_values:
        v = (raw or "").strip()
        if v:
            subjects.add(v if v.startswith("s_") else pseudonym(v, key))
    ordered = sorted(subjects)
    ents = sorted(set(entities))
    by_subject = ledger.consents_by_subject(ordered)
    covered = withdrawn = missing = 0
    for s in ordered:
        cands = by_subject.get(s)
        if cands is None:
            missing += 1
            continue
        if any(
            cv.kind in VALID_KINDS and not cv.withdrawn and _covers(cv, purposes, recipients, ents)
            for cv in cands
        ):
            covered += 1
        elif any(cv.withdrawn for cv in cands):
            withdrawn += 1
    n = len(ordered)
    return {
        "subjects": n,
        "covered": covered,
        "coveredShare": round(covered / n, 6) if n else 0.0,
        "withdrawn": withdrawn,
        "notInLedger": missing,
        "purposes": list(dict.fromkeys(purposes)),
        "recipients": list(dict.fromkeys(recipients)),
        "subjectSetSha256": hashlib.sha256("\n".join(ordered).encode("utf-8")).hexdigest(),
    }
