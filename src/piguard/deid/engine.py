"""End to end: operators on the other columns, generalization of the quasi-identifiers (optimal lattice
search or Mondrian), suppression, and the risk/utility report."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from piguard import _fs
from piguard.deid import hierarchy as hmod
from piguard.deid import operators as ops
from piguard.deid import safety
from piguard.deid.config import DeidConfig
from piguard.deid.errors import DeidError
from piguard.deid.hierarchy import Hierarchy, load_hierarchy_dir, read_arx_csv
from piguard.deid.infer import infer_spec
from piguard.deid.lattice import Lattice, _dense_codes
from piguard.deid.mondrian import Mondrian
from piguard.deid.risk import risk_report
from piguard.deid.tableio import read_table

SUPPRESSED = "*"


@dataclass
class Outcome:
    table: pl.DataFrame
    report: dict[str, Any]
    suppressed: np.ndarray  # bool per row


def build_hierarchies(df: pl.DataFrame, cfg: DeidConfig) -> dict[str, Hierarchy]:
    """Hierarchies for the quasi-identifiers and sensitive attributes, from the directory, explicit files
    and automatic builders (explicit entries win over the directory). A quasi-identifier with none of
    these gets one inferred from its header and values (``piguard.deid.infer``)."""
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
    specs = dict(cfg.hierarchies)
    for col in cfg.quasi:
        if col not in out and col not in specs and col in df.columns:
            specs[col] = infer_spec(col, df[col])
    for col, spec in specs.items():
        if col not in df.columns:
            raise DeidError(f"hierarchy given for '{col}', which is not a column of the table")
        if isinstance(spec, str):
            out[col] = read_arx_csv(cfg.resolve(spec), col)
        elif isinstance(spec, dict) and spec.get("auto") in hmod.AUTO_BUILDERS:
            kind = spec["auto"]
            values = df[col].cast(pl.String).fill_null("").unique().to_list()
            if kind in ("intervals", "age"):
                widths = spec.get("widths", [5, 10, 20])
                if not isinstance(widths, list):
                    raise DeidError(f"hierarchy for '{col}': widths must be a list of numbers")
                out[col] = hmod.numeric_intervals(col, values, widths=widths)
            else:
                out[col] = hmod.AUTO_BUILDERS[kind](col, values)
            out[col].reason = str(spec.get("reason", "configured"))
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
    elif op == "mask_text":
        new, counts = safety.mask_text(s)
        info["findings_masked"] = counts
    elif op == "pseudonym":
        key = ops.read_key(_key_file(spec, col, cfg, info), col)
        new = ops.pseudonym(s, key, length=int(spec.get("length", 16)), prefix=str(spec.get("prefix", "")))
    elif op == "ff1":
        key = ops.read_key(_key_file(spec, col, cfg, info), col, sizes=(16, 24, 32))
        new = ops.ff1_encrypt(
            s,
            key,
            alphabet=str(spec.get("alphabet", "digits")),
            tweak=str(spec.get("tweak", col)),
            column=col,
        )
    elif op == "date_shift":
        key = ops.read_key(_key_file(spec, col, cfg, info), col)
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


def _key_file(spec: dict[str, Any], col: str, cfg: DeidConfig, info: dict[str, Any]) -> Path:
    """The operator's key file. A missing one is created (32 random bytes as hex, mode 0600, through
    ``piguard._fs.create_secret_file``) when the config marks it ``create_key: true``, as drafted configs do;
    otherwise the error says how to make one."""
    path = cfg.resolve(_need(spec, "key_file", col))
    if path.exists():
        if not _fs.is_private(path):
            info.setdefault("warnings", []).append(
                f"key file {path} can be read by other users: chmod 600 it"
            )
        return path
    if spec.get("create_key") is True:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if _fs.create_secret_file(path, secrets.token_hex(32).encode("ascii") + b"\n"):
            info["key_created"] = str(path)
        return path
    raise DeidError(
        f"column '{col}': key file {path} does not exist: create it with "
        f"`umask 077; openssl rand -hex 32 > '{path}'`, or add 'create_key: true' to the column's entry"
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{e} {n}" for e, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


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
    for c in [*cfg.quasi, *cfg.models.sensitive_columns, *cfg.columns, *cfg.keep]:
        if c not in df.columns:
            raise DeidError(f"column '{c}' (named in the configuration) is not in the table")
    for c in cfg.quasi:
        if c in cfg.columns and cfg.columns[c].get("op") not in ("keep", None):
            raise DeidError(
                f"column '{c}' is a quasi-identifier and also has operator {cfg.columns[c]['op']}"
            )
    plans: dict[str, safety.ColumnPlan] = {}
    if cfg.audit:
        # Before anything is computed: what each column holds, and what happens to it.
        t_audit = time.perf_counter()
        audit_in = safety.classify_table(df)
        plans = safety.plan_columns(
            df, audit_in, cfg.quasi, cfg.columns, cfg.models.sensitive_columns, set(cfg.keep)
        )
        audit_ms = (time.perf_counter() - t_audit) * 1000
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
    for col, plan in plans.items():
        if plan.origin != "default" or plan.treatment == "keep":
            continue
        if plan.treatment == "drop":
            out = out.drop(col)
            columns_info[col] = {"operator": "drop", "loss": 1.0}
        elif plan.treatment == "mask_text":
            masked, counts = safety.mask_text(out[col])
            changed = (masked.fill_null("\x00") != out[col].cast(pl.String).fill_null("\x00")).mean()
            out = out.with_columns(masked.alias(col))
            columns_info[col] = {"operator": "mask_text", "changed_share": float(changed or 0.0)}
            plan.note += f"; {sum(counts.values())} findings masked ({_counts(counts)})"

    n = df.height
    report_levels: dict[str, int | None] = {}
    if not cfg.quasi:
        suppressed = np.zeros(n, dtype=bool)
        class_of_row = np.zeros(n, dtype=np.int64)
        class_sizes = np.array([n]) if n else np.zeros(0, dtype=np.int64)
        search: dict[str, Any] = {"mode": "none"}
    elif cfg.mode != "mondrian":
        population = None
        if cfg.models.needs_population:
            if not cfg.population_table:
                raise DeidError(
                    "d-presence and k-map without a population size need the population table "
                    "(--population-table FILE or 'population_table:' in the config)"
                )
            pop_df, _ = read_table(cfg.resolve(cfg.population_table))
            missing = [q for q in cfg.quasi if q not in pop_df.columns]
            if missing:
                raise DeidError(f"the population table has no column(s) {', '.join(missing)}")
            population = {q: pop_df[q] for q in cfg.quasi}
        lat = Lattice(
            {c: df[c] for c in df.columns},
            hierarchies,
            cfg.quasi,
            cfg.models,
            cfg.metric,
            population=population,
            gs_factor=cfg.gs_factor,
        )
        ts = time.perf_counter()
        res = lat.search(cfg.mode, time_limit=cfg.time_limit, max_steps=cfg.max_steps)
        search = {
            "mode": "optimal" if cfg.mode == "optimal" else "heuristic",
            "strategy": cfg.mode,
            "proven_optimal": res.proven_optimal,
            "stopped_by": res.stopped_by,
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
        m = cfg.models
        if m.average_risk is not None or m.highest_risk is not None or m.k_map or m.d_presence:
            raise DeidError(
                "mondrian mode checks k, l-diversity and t-closeness only: use the optimal search (or a "
                "heuristic) for risk thresholds, k-map and d-presence"
            )
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
    report["quasi_identifiers"] = [
        {"column": q, "level": report_levels.get(q), "hierarchy": hierarchies[q].describe()}
        for q in cfg.quasi
    ]
    report["input"] = {"rows": n, "columns": list(df.columns)}
    report["output"] = {
        "rows": out.height,
        "records_released": int(n - suppressed.sum()),
        "columns": list(out.columns),
    }
    if cfg.audit:
        t_rescan = time.perf_counter()
        rescan = safety.classify_table(out)
        leaks = []
        for c, a in rescan.items():
            plan = plans.get(c)
            if not a.direct or plan is None or plan.origin == "keep" or plan.treatment == "generalize":
                continue
            confirmed = safety.confirmed_direct(out[c], a.direct)
            if confirmed:
                leaks.append(f"{c} ({', '.join(confirmed)})")
            else:  # the column verdict does not hold up value by value (a surname left by masking)
                for f in a.findings:
                    if f.identifier == "direct":
                        f.identifier = "none"
                        f.evidence += "; not confirmed value by value (surname only), not an identifier"
        if leaks:
            raise safety.DeidRefused(
                f"the re-scan of the output still finds direct identifiers in column(s) {'; '.join(leaks)}: "
                f"not delivered (configure an operator for them, or release them deliberately with --keep)"
            )
        has_model = bool(cfg.quasi) and cfg.models.protects
        verdict = safety.declared_state(
            plans, rescan, list(out.columns), models_hold=True, has_model=has_model
        )
        report["declared_state"] = verdict.state
        report["state_reasons"] = verdict.reasons
        report["columns"] = {c: p.to_dict() for c, p in plans.items()}
        report["passed_through"] = _passed_through(plans, report_levels, out.columns)
        report["rescan"] = {
            "rows": out.height,
            "columns": {c: [f.to_dict() for f in a.findings] for c, a in rescan.items() if a.findings},
            "direct_identifiers": sorted(c for c, a in rescan.items() if a.direct),
            "ms": round((time.perf_counter() - t_rescan) * 1000, 2),
        }
        report["utility"]["search"]["audit_ms"] = round(audit_ms, 2)
    else:
        report["declared_state"] = "unassessed"
        report["state_reasons"] = ["the columns were not audited (library call with audit=False)"]
    return Outcome(out, report, suppressed)


def _passed_through(
    plans: dict[str, safety.ColumnPlan], levels: dict[str, int | None], out_columns: list[str]
) -> list[dict[str, Any]]:
    """Columns the output holds unchanged: kept columns, and quasi-identifiers left at level 0."""
    rows: list[dict[str, Any]] = []
    for col in out_columns:
        plan = plans.get(col)
        if plan is None:
            continue
        if plan.treatment == "keep":
            rows.append({"column": col, "origin": plan.origin, "detected": plan.entities})
        elif plan.treatment == "generalize" and levels.get(col) == 0:
            rows.append(
                {
                    "column": col,
                    "origin": "quasi",
                    "detected": plan.entities,
                    "note": "quasi-identifier at level 0: unchanged except in suppressed records",
                }
            )
    return rows
