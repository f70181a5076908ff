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
  average_risk: 0.05               # prosecutor risk as a target (ARX's AverageReidentificationRisk)
  highest_risk: 0.2                # no record above 1/5 (with records_at_risk: that share may be)
  k_map: {k: 10, population: 1408280000}   # estimated; without population: against population_table
  d_presence: {delta_min: 0.0, delta_max: 0.5}
  suppression: 0.01
population_table: people.csv       # for k-map against a table and d-presence
metric: loss                       # loss | entropy | entropy-monotonic | entropy-nonmonotonic | aecs
                                   # | discernability-monotonic | discernability-nonmonotonic
mode: optimal                      # optimal | top-down | bottom-up | genetic | mondrian
time_limit: 60                     # seconds; the best transformation so far is used (not proven optimal)
max_steps: 10000                   # node checks, likewise
columns:                           # operators for the other columns
  name: {op: mask, keep_surname: true}
  phone: {op: pseudonym, key_file: keys/phone.key, create_key: true}
keep: [comment]                    # released unchanged on purpose (listed in the report)
risk: {population: 1408280000, threshold: 0.2}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from piguard.deid.errors import DeidError
from piguard.deid.lattice import METRICS, Models
from piguard.deid.models import DPresence, KMap, LDiversity, TCloseness
from piguard.deid.risk import RiskOptions

MODES = ("optimal", "top-down", "bottom-up", "genetic", "mondrian")
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
    # The population the released table is drawn from, for k-map and d-presence against a table.
    population_table: str | None = None
    # Search limits: the best transformation found so far is returned, flagged as not proven optimal.
    time_limit: float | None = None
    max_steps: int | None = None
    gs_factor: float = 0.5  # ARX's generalization/suppression weighting for Loss
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
        "keep",
        "population_table",
        "time_limit",
        "max_steps",
        "gs_factor",
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
            m.get("suppression", 0.0), "suppression", f"{where}: models", low=0.0, high=1.0
        ),
    )
    risk_where = f"{where}: models"
    for key in ("average_risk", "highest_risk"):
        if m.get(key) is not None:
            setattr(models, key, real_number(m[key], key, risk_where, low=0.0, high=1.0, low_open=True))
    if m.get("records_at_risk") is not None:
        models.records_at_risk = real_number(
            m["records_at_risk"], "records_at_risk", risk_where, low=0.0, high=1.0
        )
    if m.get("k_map") is not None:
        models.k_map = parse_k_map(m["k_map"], risk_where)
    if m.get("d_presence") is not None:
        models.d_presence = parse_d_presence(m["d_presence"], risk_where)
    unknown_models = set(m) - {
        "k",
        "l_diversity",
        "t_closeness",
        "suppression",
        "average_risk",
        "highest_risk",
        "records_at_risk",
        "k_map",
        "d_presence",
    }
    if unknown_models:
        raise DeidError(f"{where}: unknown model(s) {sorted(unknown_models)}")
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
        keep=[str(c) for c in (data.get("keep") or [])],
        population_table=str(data["population_table"]) if data.get("population_table") else None,
    )
    if data.get("time_limit") is not None:
        cfg.time_limit = real_number(
            data["time_limit"], "time_limit", where, low=0.0, high=1e9, low_open=True
        )
    if data.get("max_steps") is not None:
        cfg.max_steps = whole_number(data["max_steps"], "max_steps", where)
    if data.get("gs_factor") is not None:
        cfg.gs_factor = real_number(data["gs_factor"], "gs_factor", where, low=0.0, high=1.0)
    if cfg.metric not in METRICS:
        raise DeidError(f"{where}: metric must be one of {', '.join(METRICS)}")
    if cfg.mode not in MODES:
        raise DeidError(f"{where}: mode must be one of {', '.join(MODES)}")
    return cfg


def parse_k_map(spec: object, where: str) -> KMap:
    """``{k: 10}`` (against the population table), or ``{k: 10, population: N[, estimator, significance]}``
    (estimated from the population's size); the CLI's ``--k-map 10`` is the same as ``{k: 10}``."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = {"k": spec}
    if not isinstance(spec, dict) or "k" not in spec:
        raise DeidError(f"{where}: k_map needs 'k' (and 'population' to estimate from a population size)")
    unknown = set(spec) - {"k", "population", "estimator", "significance"}
    if unknown:
        raise DeidError(f"{where}: k_map: unknown key(s) {sorted(unknown)}")
    pop = spec.get("population")
    km = KMap(
        k=whole_number(spec["k"], "k_map.k", where),
        population=None if pop is None else whole_number(pop, "k_map.population", where),
        estimator=str(spec.get("estimator", "zero-truncated-poisson")),
        significance=real_number(
            spec.get("significance", 0.01), "k_map.significance", where, low=0.0, high=1.0
        ),
    )
    km.validate()
    return km


def parse_d_presence(spec: object, where: str) -> DPresence:
    """``{delta_min: 0, delta_max: 0.5}`` or the CLI's ``MIN:MAX``."""
    if isinstance(spec, str):
        bits = spec.split(":")
        if len(bits) != 2:
            raise DeidError(f"{where}: d-presence '{spec}': expected MIN:MAX (shares in [0, 1])")
        try:
            spec = {"delta_min": float(bits[0]), "delta_max": float(bits[1])}
        except ValueError:
            raise DeidError(f"{where}: d-presence '{spec}': expected MIN:MAX (shares in [0, 1])") from None
    if not isinstance(spec, dict) or "delta_max" not in spec:
        raise DeidError(f"{where}: d_presence needs 'delta_max' (and optionally 'delta_min')")
    dp = DPresence(
        real_number(spec.get("delta_min", 0.0), "delta_min", where, low=0.0, high=1.0),
        real_number(spec["delta_max"], "delta_max", where, low=0.0, high=1.0),
    )
    dp.validate()
    return dp


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
    except DeidError:
        raise  # already named (a DeidError is a ValueError: the clause below must not rename it)
    except OSError as exc:
        raise DeidError(f"{p}: cannot read config: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DeidError(f"{p}: config is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise DeidError(f"{p}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except (RecursionError, ValueError, OverflowError) as exc:
        # Nested too deeply, or a scalar that cannot become a value (a 5,000-digit integer): named, never raw.
        raise DeidError(f"{p}: not valid YAML: a value cannot be read ({type(exc).__name__})") from None
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
    for key in ("average_risk", "highest_risk", "records_at_risk"):
        if getattr(m, key) is not None:
            data["models"][key] = getattr(m, key)
    if m.k_map is not None:
        km = {k: v for k, v in m.k_map.describe().items() if v is not None}
        if m.k_map.population is None:
            km.pop("estimator", None)  # "population-table" is implied by the missing population
        data["models"]["k_map"] = km
    if m.d_presence is not None:
        data["models"]["d_presence"] = m.d_presence.describe()
    if cfg.hierarchy_dir:
        data["hierarchy_dir"] = cfg.hierarchy_dir
    if cfg.population_table:
        data["population_table"] = cfg.population_table
    for key in ("time_limit", "max_steps"):
        if getattr(cfg, key) is not None:
            data[key] = getattr(cfg, key)
    return header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
