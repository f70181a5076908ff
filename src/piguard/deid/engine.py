"""End to end: operators on the other columns, generalization of the quasi-identifiers (optimal lattice
search or Mondrian), suppression, and the risk/utility report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from piguard.deid import hierarchy as hmod
from piguard.deid import operators as ops
from piguard.deid.config import DeidConfig
from piguard.deid.errors import DeidError
from piguard.deid.hierarchy import Hierarchy, load_hierarchy_dir, read_arx_csv
from piguard.deid.lattice import Lattice, _dense_codes
from piguard.deid.mondrian import Mondrian
from piguard.deid.risk import risk_report

SUPPRESSED = "*"


@dataclass
class Outcome:
    table: pl.DataFrame
    report: dict[str, Any]
    suppressed: np.ndarray  # bool per row


def build_hierarchies(df: pl.DataFrame, cfg: DeidConfig) -> dict[str, Hierarchy]:
    """Hierarchies for the quasi-identifiers and sensitive attributes, from the directory, explicit files
    and automatic builders (explicit entries win over the directory)."""
    wanted = list(
        dict.fromkeys(
            [
                *cfg.quasi,
                *cfg.models.sensitive_columns,
                *[c for c, s in cfg.columns.items() if s.get("op") == "generalize"],
            ]
        )
    )
    out: dict[str, Hierarchy] = {}
    if cfg.hierarchy_dir:
        out.update(load_hierarchy_dir(cfg.resolve(cfg.hierarchy_dir), wanted))
    for col, spec in cfg.hierarchies.items():
        if col not in df.columns:
            raise DeidError(f"hierarchy given for '{col}', which is not a column of the table")
        if isinstance(spec, str):
            out[col] = read_arx_csv(cfg.resolve(spec), col)
        elif isinstance(spec, dict) and spec.get("auto") in hmod.AUTO_BUILDERS:
            kind = spec["auto"]
            values = df[col].cast(pl.String).fill_null("").unique().to_list()
            if kind in ("intervals", "age"):
                widths = spec.get("widths", [5, 10, 20])
                out[col] = hmod.numeric_intervals(col, values, widths=widths)
            else:
                out[col] = hmod.AUTO_BUILDERS[kind](col, values)
        else:
            raise DeidError(
                f"hierarchy for '{col}': give a CSV path or {{auto: one of {sorted(hmod.AUTO_BUILDERS)}}}"
            )
    return out


def _apply_operator(
    df: pl.DataFrame, col: str, spec: dict[str, Any], cfg: DeidConfig, hierarchies: dict[str, Hierarchy]
) -> tuple[pl.DataFrame, dict[str, Any]]:
    op = spec["op"]
    s = df[col]
    info: dict[str, Any] = {"operator": op}
    if op == "keep":
        return df, info
    if op == "drop":
        return df.drop(col), {"operator": "drop", "loss": 1.0}
    if op == "mask":
        new = ops.mask(
            s,
            keep_first=int(spec.get("keep_first", 0)),
            keep_last=int(spec.get("keep_last", 0)),
            char=str(spec.get("char", "*")),
            keep_surname=bool(spec.get("keep_surname", False)),
        )
    elif op == "pseudonym":
        key = ops.read_key(cfg.resolve(_need(spec, "key_file", col)), col)
        new = ops.pseudonym(s, key, length=int(spec.get("length", 16)), prefix=str(spec.get("prefix", "")))
    elif op == "ff1":
        key = ops.read_key(cfg.resolve(_need(spec, "key_file", col)), col, sizes=(16, 24, 32))
        new = ops.ff1_encrypt(
            s,
            key,
            alphabet=str(spec.get("alphabet", "digits")),
            tweak=str(spec.get("tweak", col)),
            column=col,
        )
    elif op == "date_shift":
        key = ops.read_key(cfg.resolve(_need(spec, "key_file", col)), col)
        subject = _need(spec, "subject", col)
        if subject not in df.columns:
            raise DeidError(f"column '{col}': subject column '{subject}' not in the table")
        new = ops.date_shift(s, df[subject], key, max_days=int(spec.get("max_days", 30)), column=col)
    elif op == "generalize":
        if col not in hierarchies:
            raise DeidError(f"column '{col}': generalize needs a hierarchy")
        new = ops.generalize(s, hierarchies[col], int(spec.get("level", 1)))
        info["level"] = int(spec.get("level", 1))
    elif op == "top_bottom":
        new = ops.top_bottom(s, top=spec.get("top"), bottom=spec.get("bottom"), column=col)
    else:  # pragma: no cover - validated in config
        raise DeidError(f"column '{col}': unknown operator {op}")
    changed = (new.fill_null("\x00") != s.cast(pl.String).fill_null("\x00")).mean() if len(s) else 0.0
    info["changed_share"] = float(changed or 0.0)
    return df.with_columns(new.alias(col)), info


def _need(spec: dict[str, Any], key: str, col: str) -> str:
    if key not in spec:
        raise DeidError(f"column '{col}': operator {spec['op']} needs '{key}'")
    return str(spec[key])


def deidentify(df: pl.DataFrame, cfg: DeidConfig) -> Outcome:
    t0 = time.perf_counter()
    cfg.models.validate()
    cfg.risk.validate()
    if not cfg.quasi and (cfg.models.k > 1 or cfg.models.sensitive_columns):
        raise DeidError(
            "privacy models need quasi-identifiers: name the columns an attacker could know "
            "(--quasi a,b,c or 'quasi:' in the config)"
        )
    if len(set(cfg.quasi)) != len(cfg.quasi):
        raise DeidError("a quasi-identifier is named twice")
    for c in [*cfg.quasi, *cfg.models.sensitive_columns, *cfg.columns]:
        if c not in df.columns:
            raise DeidError(f"column '{c}' (named in the configuration) is not in the table")
    for c in cfg.quasi:
        if c in cfg.columns and cfg.columns[c].get("op") not in ("keep", None):
            raise DeidError(
                f"column '{c}' is a quasi-identifier and also has operator {cfg.columns[c]['op']}"
            )
    hierarchies = build_hierarchies(df, cfg)
    for q in cfg.quasi:
        if q not in hierarchies:
            raise DeidError(
                f"quasi-identifier '{q}' has no hierarchy (give --hierarchies DIR or an auto "
                f"hierarchy in the config)"
            )
    columns_info: dict[str, Any] = {}
    out = df
    for col, spec in cfg.columns.items():
        if col in cfg.quasi:
            continue
        out, columns_info[col] = _apply_operator(out, col, spec, cfg, hierarchies)

    n = df.height
    report_levels: dict[str, int | None] = {}
    if not cfg.quasi:
        suppressed = np.zeros(n, dtype=bool)
        class_of_row = np.zeros(n, dtype=np.int64)
        class_sizes = np.array([n]) if n else np.zeros(0, dtype=np.int64)
        search: dict[str, Any] = {"mode": "none"}
    elif cfg.mode == "optimal":
        lat = Lattice({c: df[c] for c in df.columns}, hierarchies, cfg.quasi, cfg.models, cfg.metric)
        ts = time.perf_counter()
        res = lat.search()
        search = {
            "mode": "optimal",
            "nodes_checked": res.checked,
            "lattice_size": res.lattice_size,
            "search_ms": round((time.perf_counter() - ts) * 1000, 2),
            "score": res.score,
        }
        suppressed, class_of_row, class_sizes = res.outlier_rows, res.class_of_row, res.class_sizes
        new_cols = []
        for d, q in enumerate(cfg.quasi):
            vals = lat.labels(d, res.levels)
            vals[suppressed] = SUPPRESSED
            new_cols.append(pl.Series(q, vals.tolist(), dtype=pl.String))
            report_levels[q] = res.levels[d]
            columns_info[q] = {"operator": "generalize", "level": res.levels[d], "loss": res.column_loss[q]}
        out = out.with_columns(new_cols)
    else:
        if cfg.models.suppression:
            raise DeidError("mondrian mode does not suppress records: set suppression to 0")
        hs = [hierarchies[q] for q in cfg.quasi]
        leaf = np.stack([h.encode_column(df[q]) for q, h in zip(cfg.quasi, hs, strict=True)], axis=1)
        sens, gp = {}, {}
        for col in cfg.models.sensitive_columns:
            needs_h = any(t.column == col and t.distance == "hierarchical" for t in cfg.models.t_closeness)
            if needs_h and col not in hierarchies:
                raise DeidError(f"hierarchical t-closeness on '{col}' needs a hierarchy for it")
            codes = hierarchies[col].encode_column(df[col]) if needs_h else _dense_codes(df[col])
            n_s = hierarchies[col].domain_size if needs_h else int(codes.max()) + 1
            sens[col] = (codes, n_s)
            gp[col] = np.bincount(codes, minlength=n_s) / n
        sens_h = {c: hierarchies[c] for c in cfg.models.sensitive_columns if c in hierarchies}
        mon = Mondrian(leaf, hs, cfg.models, sens, gp, sens_h)
        ts = time.perf_counter()
        parts = mon.partition()
        labels, _, col_loss = mon.labels(parts)
        # Partitions that publish the same generalized tuple form one class in the output.
        keys = pl.DataFrame({q: labels[d] for d, q in enumerate(cfg.quasi)}).hash_rows().to_numpy()
        _, class_of_row = np.unique(keys, return_inverse=True)
        class_of_row = class_of_row.reshape(-1)
        class_sizes = np.bincount(class_of_row)
        suppressed = np.zeros(n, dtype=bool)
        search = {
            "mode": "mondrian",
            "partitions": len(parts),
            "search_ms": round((time.perf_counter() - ts) * 1000, 2),
        }
        out = out.with_columns(
            [pl.Series(q, labels[d].tolist(), dtype=pl.String) for d, q in enumerate(cfg.quasi)]
        )
        for d, q in enumerate(cfg.quasi):
            report_levels[q] = None
            columns_info[q] = {"operator": "mondrian", "loss": col_loss[d]}

    risk = risk_report(class_sizes, np.where(suppressed, -1, class_of_row), n, cfg.risk)
    report = {
        "models": cfg.models.describe(),
        "levels": report_levels,
        "suppressed_rows": int(suppressed.sum()),
        "equivalence_classes": len(class_sizes),
        "min_class_size": int(class_sizes.min()) if len(class_sizes) else 0,
        "risk": risk,
        "utility": {
            "metric": cfg.metric,
            "columns": columns_info,
            "suppressed_share": float(suppressed.mean()) if n else 0.0,
            "average_class_size": float(class_sizes.mean()) if len(class_sizes) else 0.0,
            "search": {**search, "total_ms": round((time.perf_counter() - t0) * 1000, 2)},
        },
    }
    return Outcome(out, report, suppressed)
