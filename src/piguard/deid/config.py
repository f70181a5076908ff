"""The de-identification configuration (YAML) and its validation.

```yaml
quasi: [sex, age, race]            # quasi-identifiers, generalized by the search
hierarchies:                       # per column: ARX CSV file, or an automatic builder
  age: {auto: intervals, widths: [5, 10, 20]}
  race: hierarchies/race.csv
hierarchy_dir: hierarchies/        # *_hierarchy_<column>.csv or <column>.csv
models:
  k: 5
  l_diversity: [{column: diagnosis, l: 2, variant: distinct}]
  t_closeness: [{column: salary, t: 0.2, distance: equal}]
  suppression: 0.01
metric: loss                       # loss | entropy
mode: optimal                      # optimal | mondrian
columns:                           # operators for the other columns
  name: {op: mask, keep_surname: true}
  phone: {op: pseudonym, key_file: keys/phone.key}
risk: {population: 1408280000, threshold: 0.2}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from piguard.deid.errors import DeidError
from piguard.deid.lattice import Models
from piguard.deid.models import LDiversity, TCloseness
from piguard.deid.risk import RiskOptions

OPERATORS = {"keep", "drop", "mask", "pseudonym", "ff1", "date_shift", "generalize", "top_bottom"}
L_VARIANTS = {"distinct", "entropy", "recursive"}
T_DISTANCES = {"equal", "hierarchical"}


@dataclass
class DeidConfig:
    quasi: list[str] = field(default_factory=list)
    hierarchies: dict[str, Any] = field(default_factory=dict)
    hierarchy_dir: str | None = None
    models: Models = field(default_factory=Models)
    metric: str = "loss"
    mode: str = "optimal"
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    risk: RiskOptions = field(default_factory=RiskOptions)
    base_dir: Path = field(default_factory=Path.cwd)

    def resolve(self, p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else self.base_dir / path


def _split_spec(spec: str, flag: str, usage: str) -> tuple[str, list[str]]:
    """``COLUMN:a:b`` -> (COLUMN, [a, b]); a spec without a colon is a usage error naming the flag."""
    if ":" not in spec:
        raise DeidError(f"{flag} '{spec}': expected {usage}")
    col, rest = spec.split(":", 1)
    return col, rest.split(":")


def parse_l(spec: str) -> LDiversity:
    """``COL:L`` or ``COL:L:entropy`` or ``COL:L:recursive:C``."""
    usage = "COLUMN:L[:distinct|entropy|recursive[:C]]"
    col, bits = _split_spec(spec, "--l-diversity", usage)
    try:
        l_val = int(bits[0])
        variant = bits[1] if len(bits) > 1 else "distinct"
        c = float(bits[2]) if len(bits) > 2 else 1.0
    except (ValueError, IndexError):
        raise DeidError(f"--l-diversity '{spec}': expected {usage}") from None
    return _ldiv({"column": col, "l": l_val, "variant": variant, "c": c}, "--l-diversity")


def parse_t(spec: str) -> TCloseness:
    """``COL:T`` or ``COL:T:hierarchical``."""
    col, bits = _split_spec(spec, "--t-closeness", "COLUMN:T[:equal|hierarchical]")
    try:
        t = float(bits[0])
    except ValueError:
        raise DeidError(f"--t-closeness '{spec}': T must be a number") from None
    return _tclose(
        {"column": col, "t": t, "distance": bits[1] if len(bits) > 1 else "equal"}, "--t-closeness"
    )


def _ldiv(d: dict[str, Any], where: str) -> LDiversity:
    if not isinstance(d, dict) or "column" not in d or "l" not in d:
        raise DeidError(f"{where}: each l-diversity entry needs 'column' and 'l'")
    variant = str(d.get("variant", "distinct"))
    if variant not in L_VARIANTS:
        raise DeidError(f"{where}: l-diversity variant '{variant}' is not one of {sorted(L_VARIANTS)}")
    l_val = int(d["l"])
    if l_val < 1:
        raise DeidError(f"{where}: l must be at least 1")
    return LDiversity(str(d["column"]), l_val, variant, float(d.get("c", 1.0)))


def _tclose(d: dict[str, Any], where: str) -> TCloseness:
    if not isinstance(d, dict) or "column" not in d or "t" not in d:
        raise DeidError(f"{where}: each t-closeness entry needs 'column' and 't'")
    dist = str(d.get("distance", "equal"))
    if dist not in T_DISTANCES:
        raise DeidError(f"{where}: t-closeness distance '{dist}' is not one of {sorted(T_DISTANCES)}")
    t = float(d["t"])
    if not 0 <= t <= 1:
        raise DeidError(f"{where}: t must be in [0, 1]")
    return TCloseness(str(d["column"]), t, dist)


def config_from_dict(data: dict[str, Any], base_dir: Path, where: str = "config") -> DeidConfig:
    if not isinstance(data, dict):
        raise DeidError(f"{where}: expected a mapping at the top level")
    unknown = set(data) - {
        "quasi",
        "hierarchies",
        "hierarchy_dir",
        "models",
        "metric",
        "mode",
        "columns",
        "risk",
    }
    if unknown:
        raise DeidError(f"{where}: unknown key(s) {sorted(unknown)}")
    m = data.get("models") or {}
    try:
        models = Models(
            k=int(m.get("k", 1)),
            l_diversity=[_ldiv(x, where) for x in m.get("l_diversity") or []],
            t_closeness=[_tclose(x, where) for x in m.get("t_closeness") or []],
            suppression=float(m.get("suppression", 0.0)),
        )
    except (TypeError, ValueError) as exc:
        raise DeidError(f"{where}: bad models section: {exc}") from None
    cols = data.get("columns") or {}
    for col, spec in cols.items():
        if not isinstance(spec, dict) or spec.get("op") not in OPERATORS:
            raise DeidError(f"{where}: column '{col}': 'op' must be one of {sorted(OPERATORS)}")
    r = data.get("risk") or {}
    cfg = DeidConfig(
        quasi=[str(q) for q in data.get("quasi") or []],
        hierarchies=dict(data.get("hierarchies") or {}),
        hierarchy_dir=data.get("hierarchy_dir"),
        models=models,
        metric=str(data.get("metric", "loss")),
        mode=str(data.get("mode", "optimal")),
        columns={str(k): dict(v) for k, v in cols.items()},
        risk=RiskOptions(
            population=int(r.get("population", RiskOptions.population)),
            threshold=float(r.get("threshold", RiskOptions.threshold)),
        ),
        base_dir=base_dir,
    )
    if cfg.metric not in ("loss", "entropy"):
        raise DeidError(f"{where}: metric must be loss or entropy")
    if cfg.mode not in ("optimal", "mondrian"):
        raise DeidError(f"{where}: mode must be optimal or mondrian")
    return cfg


def load_config(path: str | Path) -> DeidConfig:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise DeidError(f"{p}: cannot read config: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise DeidError(f"{p}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return config_from_dict(data, p.parent.resolve(), str(p))


def config_to_yaml(cfg: DeidConfig, header: str = "") -> str:
    m = cfg.models
    data: dict[str, Any] = {
        "quasi": cfg.quasi,
        "hierarchies": cfg.hierarchies,
        "models": {
            "k": m.k,
            "l_diversity": [x.describe() for x in m.l_diversity],
            "t_closeness": [x.describe() for x in m.t_closeness],
            "suppression": m.suppression,
        },
        "metric": cfg.metric,
        "mode": cfg.mode,
        "columns": cfg.columns,
        "risk": {"population": cfg.risk.population, "threshold": cfg.risk.threshold},
    }
    if cfg.hierarchy_dir:
        data["hierarchy_dir"] = cfg.hierarchy_dir
    return header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
