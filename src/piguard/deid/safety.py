"""Safe by default: what every column of the input holds, what deid does with it, what the output still
holds, and the state the release may claim.

Before the run, piguard's column classifier (``piguard.detect.columns``) reads every column. A column it
flags is treated unless the configuration says otherwise:

- a direct identifier held as whole values (姓名, 身份证号, 手机号, ...) is dropped (configure ``pseudonym``
  or ``ff1`` with a key to keep it joinable);
- free text that holds personal information (备注 with phone numbers and names) is masked through the
  detectors (``piguard.scan_text``): every finding becomes ``[ENTITY]``;
- a quasi-identifier that is neither in ``quasi`` nor configured makes the run refuse, naming the columns
  (add it to ``quasi``, configure an operator, or release it deliberately with ``--keep``);
- other personal information (sensitive attributes such as a diagnosis or income) is released as it is and
  listed in the report.

After the run the output table is classified again. A direct identifier found in a column that was not
deliberately kept stops the delivery. The declared state follows PIPL Art. 73: ``anonymized`` only when no
direct identifier, pseudonym or unmodelled quasi-identifier remains and the privacy models hold;
``pseudonymized`` when direct identifiers were replaced by keyed or masked values, or quasi-identifiers are
released without a model; ``raw`` when a direct identifier is released in clear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from piguard import taxonomy
from piguard.deid.errors import DeidError

RESCAN_BATCH = 100_000
# Operators whose output can be traced back to the person by whoever holds the key or the rest of the value.
LINKABLE_OPS = frozenset({"pseudonym", "ff1", "mask", "date_shift"})


class DeidRefused(DeidError):
    """The run would release personal data it was not told to release; nothing is written."""


@dataclass
class ColumnFinding:
    entity: str
    identifier: str  # direct | quasi | none (the taxonomy's role)
    share: float
    confidence: float
    evidence: str
    examples_masked: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "identifier": self.identifier,
            "share": self.share,
            "confidence": self.confidence,
            "evidence": self.evidence,
        }


@dataclass
class ColumnAudit:
    column: str
    findings: list[ColumnFinding] = field(default_factory=list)
    free_text: bool = False

    @property
    def direct(self) -> list[str]:
        return [f.entity for f in self.findings if f.identifier == "direct"]

    @property
    def quasi(self) -> list[str]:
        return [f.entity for f in self.findings if f.identifier == "quasi"]

    @property
    def entities(self) -> list[str]:
        return [f.entity for f in self.findings]


def _role(entity: str) -> str:
    try:
        return str(taxonomy.get(entity).identifier)
    except taxonomy.UnknownEntity:
        return "none"


def classify_table(df: pl.DataFrame) -> dict[str, ColumnAudit]:
    """What the column classifier finds in every column (all rows, in batches)."""
    from piguard.detect.columns import TableClassifier

    clf = TableClassifier(text_detectors=True)
    for start in range(0, max(df.height, 1), RESCAN_BATCH):
        clf.add(df.slice(start, RESCAN_BATCH))
    out = {c: ColumnAudit(c) for c in df.columns}
    for v in clf.verdicts():
        out[v.column].findings.append(
            ColumnFinding(v.entity, _role(v.entity), v.share, v.confidence, v.evidence, v.examples_masked)
        )
    for name, st in clf.columns.items():
        if name in out:
            in_text = any(
                "in text" in f.evidence or "text detectors" in f.evidence for f in out[name].findings
            )
            out[name].free_text = st.free_text_rows >= max(st.non_null, 1) / 2 or in_text
    for name, a in out.items():
        if not a.findings and not a.free_text:
            share = _place_share(df[name])
            if share >= PLACE_SHARE:
                a.findings.append(
                    ColumnFinding(
                        "COARSE_LOCATION",
                        _role("COARSE_LOCATION"),
                        round(share, 4),
                        0.7,
                        f"{share:.0%} of distinct values name GB/T 2260 divisions (city, district, province)",
                    )
                )
    return out


PLACE_SHARE = 0.8
PLACE_SAMPLE = 2000


def _place_share(s: pl.Series) -> float:
    """Share of a column's distinct short values that name a Chinese division (杭州市, 西湖区, 浙江): the
    column classifier has no validator for them, and a city column is a quasi-identifier."""
    from piguard.deid.gazetteer import gazetteer

    if s.dtype != pl.String:
        return 0.0
    uniq = s.drop_nulls().str.strip_chars().unique().head(PLACE_SAMPLE)
    uniq = uniq.filter((uniq.str.len_chars() >= 2) & (uniq.str.len_chars() <= 12))
    if len(uniq) == 0:
        return 0.0
    g = gazetteer()
    return sum(bool(g.resolve(v)) for v in uniq.to_list()) / len(uniq)


@dataclass
class ColumnPlan:
    column: str
    treatment: str  # generalize | drop | pseudonym | ff1 | mask | mask_text | ... | keep
    origin: str  # quasi | config | default | sensitive | keep | none
    entities: list[str]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"treatment": self.treatment, "origin": self.origin, "detected": self.entities}
        if self.note:
            d["note"] = self.note
        return d


def plan_columns(
    df: pl.DataFrame,
    audit: dict[str, ColumnAudit],
    quasi: list[str],
    configured: dict[str, dict[str, Any]],
    sensitive: list[str],
    keep: set[str],
) -> dict[str, ColumnPlan]:
    """The treatment of every column; raises DeidRefused naming flagged quasi-identifiers left untreated."""
    plans: dict[str, ColumnPlan] = {}
    untreated: list[str] = []
    for col in df.columns:
        a = audit.get(col, ColumnAudit(col))
        ents = a.entities
        if col in quasi:
            plans[col] = ColumnPlan(col, "generalize", "quasi", ents)
        elif col in configured:
            op = str(configured[col]["op"])
            plans[col] = ColumnPlan(col, op, "keep" if op == "keep" else "config", ents)
        elif col in keep:
            plans[col] = ColumnPlan(col, "keep", "keep", ents, "released unchanged on request (--keep)")
        elif col in sensitive:
            plans[col] = ColumnPlan(
                col, "keep", "sensitive", ents, "sensitive attribute of the privacy models"
            )
        elif not a.findings:
            plans[col] = ColumnPlan(col, "keep", "none", ents)
        elif a.free_text:
            plans[col] = ColumnPlan(
                col, "mask_text", "default", ents, "free text: findings masked as [ENTITY]"
            )
        elif a.direct:
            plans[col] = ColumnPlan(
                col,
                "drop",
                "default",
                ents,
                "direct identifier dropped (configure pseudonym or ff1 with a key to keep it joinable)",
            )
        elif a.quasi:
            untreated.append(f"{col} ({', '.join(a.quasi)})")
        else:
            plans[col] = ColumnPlan(
                col,
                "keep",
                "default",
                ents,
                "personal information that identifies no one by itself, released",
            )
    if untreated:
        raise DeidRefused(
            f"column(s) {'; '.join(untreated)} hold quasi-identifiers that are neither in --quasi nor "
            f"configured: add them to --quasi, give them an operator in the config, or release them "
            f"deliberately with --keep COLUMN"
        )
    return plans


MASK_BATCH_VALUES = 64
MASK_BATCH_CHARS = 8192


def mask_text(s: pl.Series) -> tuple[pl.Series, dict[str, int]]:
    """Replace every finding of the detectors in each value by ``[ENTITY]``; counts per entity.

    Distinct values are scanned in blocks of up to 64 values (8 KB) joined by newlines and the findings
    are mapped back by offset: the detectors' per-call cost dominates short notes, and blocks this small
    stay far from any whole-file limit (on generated notes a block finds every finding the values alone
    do, and a few names more from the context of neighbouring lines)."""
    import bisect

    from piguard import scan_text

    counts: dict[str, int] = {}
    txt = s.cast(pl.String)
    freq = dict(txt.drop_nulls().value_counts().iter_rows())
    uniq = txt.drop_nulls().unique().to_list()
    if not uniq:
        return txt, counts
    spans: dict[str, list[tuple[int, int, str]]] = {v: [] for v in uniq}
    block: list[str] = []
    size = 0

    def flush() -> None:
        if not block:
            return
        starts, pos = [], 0
        for v in block:
            starts.append(pos)
            pos += len(v) + 1
        for f in scan_text("\n".join(block)):
            j = bisect.bisect_right(starts, f.start) - 1
            v, s0 = block[j], starts[j]
            end = min(f.end - s0, len(v))  # a finding never reaches past its own value
            if end > f.start - s0:
                spans[v].append((f.start - s0, end, f.entity))
        block.clear()

    for v in uniq:
        if len(block) >= MASK_BATCH_VALUES or size + len(v) > MASK_BATCH_CHARS:
            flush()
            size = 0
        block.append(v)
        size += len(v) + 1
    flush()

    def masked(v: str) -> str:
        parts, pos = [], 0
        for start, end, entity in sorted(spans[v]):
            if start < pos:
                continue  # overlapping finding: the first one already covers it
            parts.append(v[pos:start])
            parts.append(f"[{entity}]")
            pos = end
            counts[entity] = counts.get(entity, 0) + int(freq.get(v, 1))
        parts.append(v[pos:])
        return "".join(parts)

    new = pl.Series([masked(v) for v in uniq], dtype=pl.String)
    return txt.replace_strict(
        pl.Series(uniq, dtype=pl.String), new, default=None, return_dtype=pl.String
    ), counts


CONFIRM_SAMPLE = 2000


def confirmed_direct(s: pl.Series, entities: list[str]) -> list[str]:
    """The direct-identifier ``entities`` the detectors find in the column's distinct values (up to
    CONFIRM_SAMPLE of them), not counting a surname standing alone: a masked name (欧阳**, 张*) keeps its
    surname, which the name model may label PERSON but which identifies no one."""
    from piguard import scan_text
    from piguard.deid.operators import COMPOUND_SURNAMES

    uniq = s.cast(pl.String).drop_nulls().unique().head(CONFIRM_SAMPLE).to_list()
    hit: set[str] = set()
    for v in uniq:
        for f in scan_text(v, entities=entities):
            text = v[f.start : f.end]
            if f.entity == "PERSON" and (len(text) == 1 or text in COMPOUND_SURNAMES):
                continue
            hit.add(f.entity)
    return [e for e in entities if e in hit]


@dataclass
class StateVerdict:
    state: str  # raw | pseudonymized | anonymized
    reasons: list[str]


def declared_state(
    plans: dict[str, ColumnPlan],
    rescan: dict[str, ColumnAudit],
    output_columns: list[str],
    models_hold: bool,
    has_model: bool,
) -> StateVerdict:
    """What the release may claim (PIPL Art. 73: anonymized data cannot identify a person and cannot be
    restored; pseudonymized data cannot without additional information)."""
    raw: list[str] = []
    pseudo: list[str] = []
    for col in output_columns:
        plan = plans.get(col)
        found = rescan.get(col, ColumnAudit(col))
        if plan is not None and plan.treatment == "generalize":
            continue
        if found.direct:
            raw.append(f"column '{col}' holds {', '.join(found.direct)} in clear")
        elif found.quasi:
            pseudo.append(f"column '{col}' holds quasi-identifier {', '.join(found.quasi)} outside the model")
        if plan is not None and plan.treatment in LINKABLE_OPS:
            before = plan.entities or ["values"]
            pseudo.append(f"column '{col}' holds {plan.treatment} of {', '.join(before)} (linkable)")
    if raw:
        return StateVerdict("raw", raw)
    if not has_model:
        pseudo.append("no privacy model over quasi-identifiers (k-anonymity with k >= 2 or another model)")
    elif not models_hold:
        pseudo.append("the privacy models are not proven to hold")
    if pseudo:
        return StateVerdict("pseudonymized", pseudo)
    return StateVerdict(
        "anonymized", ["no direct identifier or linkable value remains; the privacy models hold"]
    )


__all__ = [
    "ColumnAudit",
    "ColumnPlan",
    "DeidRefused",
    "StateVerdict",
    "classify_table",
    "declared_state",
    "mask_text",
    "plan_columns",
]
