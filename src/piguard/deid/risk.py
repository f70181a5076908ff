"""Re-identification risk and utility of a de-identified table, from its equivalence class sizes.

Attacker models (El Emam, *Guide to the De-Identification of Personal Health Information*, 2013, ch. 16;
the same three as ARX):
- prosecutor: the attacker knows the target is in the table; a record's risk is 1 / its class size.
- journalist: the attacker matches against the population; a record's risk is 1 / its class size in the
  population, estimated as f / pi with pi = sample size / population size (uniform sampling).
- marketer: re-identify as many records as possible; the expected share re-identified is
  (1/n) sum_j f_j / F_j (a dataset-level figure, so "highest" equals "average").
Population uniqueness: Zayatz (1991) estimator of the share of sample uniques that are unique in the
population, with the stated population size (default: China's resident population).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# National Bureau of Statistics, Statistical Communiqué on the 2024 National Economic and Social
# Development (2025-02-28): population at the end of 2024, 1,408.28 million.
CHINA_POPULATION = 1_408_280_000
DEFAULT_THRESHOLD = 0.2  # a record whose risk exceeds 1/5 is "at risk" (k = 5 is the common floor)


@dataclass
class RiskOptions:
    population: int = CHINA_POPULATION
    threshold: float = DEFAULT_THRESHOLD


def _model(risk_per_record: np.ndarray, threshold: float) -> dict[str, float | int]:
    if len(risk_per_record) == 0:
        return {"highest": 0.0, "average": 0.0, "records_at_risk": 0}
    return {
        "highest": float(risk_per_record.max()),
        "average": float(risk_per_record.mean()),
        "records_at_risk": int((risk_per_record > threshold + 1e-12).sum()),
    }


def zayatz(class_sizes: np.ndarray, n: int, population: int) -> float:
    """Estimated number of sample uniques that are also population uniques (Zayatz 1991).

    P(F=1 | f=1) = p(1|1) c_1 / sum_i p(1|i) c_i, with c_i the number of sample classes of size i
    (the estimate of the population's class size distribution) and p(1|i) = i pi (1-pi)^(i-1) the
    binomial chance that a population class of size i shows up exactly once in the sample.
    """
    if n == 0:
        return 0.0
    pi = min(1.0, n / max(population, n))
    sizes, counts = np.unique(class_sizes, return_counts=True)
    u1 = int(counts[sizes == 1].sum())
    if u1 == 0:
        return 0.0
    if pi >= 1.0:
        return float(u1)
    with np.errstate(over="ignore", under="ignore"):
        log_p = np.log(sizes) + math.log(pi) + (sizes - 1) * math.log1p(-pi)
    p = np.exp(log_p)
    denom = float((p * counts).sum())
    return float(u1 * (p[sizes == 1].sum() * u1) / denom) if denom > 0 else 0.0


def risk_report(
    class_sizes: np.ndarray, class_of_row: np.ndarray, n_total: int, options: RiskOptions | None = None
) -> dict[str, object]:
    """Risk figures over the released (non-suppressed) records; ``class_of_row`` is -1 for suppressed."""
    opt = options or RiskOptions()
    kept = class_of_row >= 0
    n = int(kept.sum())
    f = class_sizes[class_of_row[kept]].astype(np.float64) if n else np.zeros(0)
    pi = min(1.0, n / max(opt.population, 1)) if n else 1.0
    big_f = np.maximum(f / pi, f)
    prosecutor = 1.0 / f if n else f
    journalist = 1.0 / big_f if n else f
    # (1/n) sum over records of 1/F_j == (1/n) sum_j f_j / F_j.
    marketer_value = float(journalist.sum() / n) if n else 0.0
    uniques = int((class_sizes == 1).sum())
    pop_uniques = zayatz(class_sizes, n, opt.population)
    return {
        "prosecutor": _model(prosecutor, opt.threshold),
        "journalist": _model(journalist, opt.threshold),
        "marketer": {
            "highest": marketer_value,
            "average": marketer_value,
            "records_at_risk": int((journalist > opt.threshold + 1e-12).sum()),
        },
        "threshold": opt.threshold,
        "sample_uniques": {"records": uniques, "share": uniques / n if n else 0.0},
        "population_uniqueness": {
            "method": "zayatz",
            "population": opt.population,
            "estimated_population_uniques": pop_uniques,
            "share_of_records": pop_uniques / n if n else 0.0,
        },
        "records_released": n,
        "records_total": n_total,
    }
