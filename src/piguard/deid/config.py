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

OPERATORS = {
    "keep",
    "drop",
    "mask",
    "mask_text",
    "pseudonym",
    "ff1",
    "date_shift",
    "generalize",
    "top_bottom",
}
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
    # Columns released unchanged on purpose (the CLI's --keep); listed in the report as passed through.
    keep: list[str] = field(default_factory=list)
    # Classify the columns before and after (safe by default); library callers that have done their own
    # column review may switch it off, and the report then declares the state "unassessed".
    audit: bool = True

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


def whole_number(value: object, name: str, where: str, *, minimum: int = 1) -> int:
    """An integer parameter as written by the user: booleans, fractions and text are refused (YAML reads
    ``k: true`` as a boolean and ``k: 2.5`` as a float; neither is a class size)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value, ok = int(value), True
    if not ok:
        raise DeidError(f"{where}: {name} must be a whole number, got {_shown(value)}")
    if value < minimum:  # type: ignore[operator]
        raise DeidError(f"{where}: {name} must be at least {minimum}, got {value}")
    return int(value)  # type: ignore[arg-type]


def real_number(
    value: object,
    name: str,
    where: str,
    *,
    low: float,
    high: float,
    high_open: bool = False,
    low_open: bool = False,
) -> float:
    """A number in [low, high] (either end open on request); booleans and text are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise DeidError(f"{where}: {name} must be a number, got {_shown(value)}")
    x = float(value)
    if x < low or x > high or (high_open and x >= high) or (low_open and x <= low):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise DeidError(f"{where}: {name} must be in {lo}{low:g}, {high:g}{hi}, got {x:g}")
    return x


def _shown(value: object) -> str:
    """How a bad parameter is named in an error: its type for text (which could be anything), the value
    for numbers and booleans."""
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    return f"a {type(value).__name__}"


def _ldiv(d: dict[str, Any], where: str) -> LDiversity:
    if not isinstance(d, dict) or "column" not in d or "l" not in d:
        raise DeidError(f"{where}: each l-diversity entry needs 'column' and 'l'")
    variant = str(d.get("variant", "distinct"))
    if variant not in L_VARIANTS:
        raise DeidError(f"{where}: l-diversity variant '{variant}' is not one of {sorted(L_VARIANTS)}")
    l_val = whole_number(d["l"], "l", where)
    c = real_number(d.get("c", 1.0), "c", where, low=0.0, high=float("inf"))
    if variant == "recursive" and c <= 0:
        raise DeidError(f"{where}: recursive (c,l)-diversity needs c > 0")
    return LDiversity(str(d["column"]), l_val, variant, c)


def _tclose(d: dict[str, Any], where: str) -> TCloseness:
    if not isinstance(d, dict) or "column" not in d or "t" not in d:
        raise DeidError(f"{where}: each t-closeness entry needs 'column' and 't'")
    dist = str(d.get("distance", "equal"))
    if dist not in T_DISTANCES:
        raise DeidError(f"{where}: t-closeness distance '{dist}' is not one of {sorted(T_DISTANCES)}")
    t = real_number(d["t"], "t", where, low=0.0, high=1.0)
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
    if not isinstance(m, dict):
        raise DeidError(f"{where}: 'models' must be a mapping")
    for key in ("l_diversity", "t_closeness"):
        if m.get(key) is not None and not isinstance(m[key], list):
            raise DeidError(f"{where}: models.{key} must be a list")
    models = Models(
        k=whole_number(m.get("k", 1), "k", f"{where}: models"),
        l_diversity=[_ldiv(x, where) for x in m.get("l_diversity") or []],
        t_closeness=[_tclose(x, where) for x in m.get("t_closeness") or []],
        suppression=real_number(
            m.get("suppression", 0.0), "suppression", f"{where}: models", low=0.0, high=1.0, high_open=True
        ),
    )
    cols = data.get("columns") or {}
    if not isinstance(cols, dict):
        raise DeidError(f"{where}: 'columns' must be a mapping of column name to operator")
    for col, spec in cols.items():
        if not isinstance(spec, dict) or spec.get("op") not in OPERATORS:
            raise DeidError(f"{where}: column '{col}': 'op' must be one of {sorted(OPERATORS)}")
    r = data.get("risk") or {}
    if not isinstance(r, dict):
        raise DeidError(f"{where}: 'risk' must be a mapping")
    quasi = data.get("quasi") or []
    if not isinstance(quasi, list):
        raise DeidError(f"{where}: 'quasi' must be a list of column names")
    cfg = DeidConfig(
        quasi=[str(q) for q in quasi],
        hierarchies=dict(data.get("hierarchies") or {}),
        hierarchy_dir=data.get("hierarchy_dir"),
        models=models,
        metric=str(data.get("metric", "loss")),
        mode=str(data.get("mode", "optimal")),
        columns={str(k): dict(v) for k, v in cols.items()},
        risk=RiskOptions(
            population=whole_number(
                r.get("population", RiskOptions.population), "population", f"{where}: risk"
            ),
            threshold=real_number(
                r.get("threshold", RiskOptions.threshold),
                "threshold",
                f"{where}: risk",
                low=0.0,
                high=1.0,
                low_open=True,
            ),
        ),
        base_dir=base_dir,
    )
    if cfg.metric not in ("loss", "entropy"):
        raise DeidError(f"{where}: metric must be loss or entropy")
    if cfg.mode not in ("optimal", "mondrian"):
        raise DeidError(f"{where}: mode must be optimal or mondrian")
    return cfg


MAX_CONFIG_BYTES = 1 << 20


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases: a config has no use for them, and nested aliases (a "billion laughs" file of
    a few hundred bytes) expand to gigabytes."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in a deid config")
        return super().compose_node(parent, index)


def load_config(path: str | Path) -> DeidConfig:
    p = Path(path)
    try:
        if not p.is_file():
            raise DeidError(f"{p}: config file not found (or not a regular file)")
        with p.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise DeidError(f"{p}: config larger than {MAX_CONFIG_BYTES // 1024} KiB")
        data = yaml.load(raw.decode("utf-8"), Loader=_NoAliasLoader) or {}
    except OSError as exc:
        raise DeidError(f"{p}: cannot read config: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DeidError(f"{p}: config is not UTF-8 text") from None
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
