"""Re-identification risk and utility of a de-identified table, from its equivalence class sizes.

Attacker models (El Emam, *Guide to the De-Identification of Personal Health Information*, 2013, ch. 16;
the same three as ARX):
- prosecutor: the attacker knows the target is in the table; a record's risk is 1 / its class size.
- journalist: the attacker matches against the population; a record's risk is 1 / its class size in the
  population, estimated as f / pi with pi = sample size / population size (uniform sampling).
- marketer: re-identify as many records as possible; the expected share re-identified is
  (1/n) sum_j f_j / F_j (a dataset-level figure, so "highest" equals "average").
Population uniqueness, with the stated population size (default: China's resident population):
- Zayatz (1991): how many of the sample uniques are also unique in the population;
- Pitman (Hoshino 2001): the number of unique records in the whole population, from the two-parameter
  Poisson-Dirichlet model fitted to the class sizes by maximum likelihood (Newton-Raphson on the score
  equations, as ARX's ModelPitman does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from piguard.deid.errors import DeidError

# National Bureau of Statistics, Statistical Communiqué on the 2024 National Economic and Social
# Development (2025-02-28): population at the end of 2024, 1,408.28 million.
CHINA_POPULATION = 1_408_280_000
DEFAULT_THRESHOLD = 0.2  # a record whose risk exceeds 1/5 is "at risk" (k = 5 is the common floor)


@dataclass
class RiskOptions:
    population: int = CHINA_POPULATION
    threshold: float = DEFAULT_THRESHOLD

    def validate(self) -> None:
        p, t = self.population, self.threshold
        if isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 1:
            raise DeidError(f"population must be a whole number of at least 1, got {p!r}")
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= 1:
            raise DeidError(f"risk threshold must be a number in (0, 1], got {t!r}")


def _model(risk: np.ndarray, threshold: float, weight: np.ndarray | None = None) -> dict[str, float | int]:
    if len(risk) == 0:
        return {"highest": 0.0, "average": 0.0, "records_at_risk": 0}
    w = np.ones(len(risk)) if weight is None else weight
    return {
        "highest": float(risk.max()),
        "average": float((risk * w).sum() / w.sum()),
        "records_at_risk": round(float(w[risk > threshold + 1e-12].sum())),
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


def pitman(class_sizes: np.ndarray, n: int, population: int, max_iter: int = 200) -> float | None:
    """Estimated number of population uniques under Pitman's model, or None when the fit fails (e.g. no
    sample uniques, or no two classes)."""
    sizes, counts = np.unique(np.asarray(class_sizes, dtype=np.int64), return_counts=True)
    u = float(counts.sum())
    c1 = float(counts[sizes == 1].sum())
    c2 = float(counts[sizes == 2].sum()) or 1.0
    if n < 2 or u < 2 or c1 == 0:
        return None
    # ARX's initial guess (moment-style) for theta and alpha.
    c = c1 * (c1 - 1) / c2
    denom = 2 * c1 * u + c1 * c - n * c
    t = (n * u * c - c1 * (n - 1) * (2 * u + c)) / denom if denom else 1.0
    a = (t * (c1 - n) + (n - 1) * c1) / (n * u)
    i_u = np.arange(1, int(u), dtype=np.float64)
    i_n = np.arange(1, n, dtype=np.float64)
    big = sizes[sizes > 1]
    big_c = counts[sizes > 1].astype(np.float64)
    j = np.arange(1, int(sizes.max()), dtype=np.float64)
    for _ in range(max_iter):
        if not (0 < a < 1) or t <= -a:
            a, t = min(max(a, 1e-6), 1 - 1e-6), max(t, -a + 1e-6)
        v = t + i_u * a
        o1, o3 = (1 / v).sum(), (i_u / v).sum()
        o2 = (1 / (t + i_n)).sum()
        inv_j, inv_j2 = np.cumsum(1 / (j - a)), np.cumsum(1 / (j - a) ** 2)
        o4 = float((big_c * inv_j[big - 2]).sum()) if len(big) else 0.0
        d4 = float((big_c * inv_j2[big - 2]).sum()) if len(big) else 0.0
        f = np.array([o1 - o2, o3 - o4])
        jac = np.array(
            [
                [(1 / (t + i_n) ** 2).sum() - (1 / v**2).sum(), -(i_u / v**2).sum()],
                [-(i_u / v**2).sum(), -(i_u**2 / v**2).sum() - d4],
            ]
        )
        try:
            step = np.linalg.solve(jac, f)
        except np.linalg.LinAlgError:
            return None
        t, a = t - step[0], a - step[1]
        if np.abs(step).max() < 1e-9:
            break
    else:
        return None
    if not (0 < a < 1) or not np.isfinite(t) or t <= -a:
        return None
    est = math.exp(math.lgamma(t + 1) - math.lgamma(t + a) + a * math.log(population))
    return est if 0 <= est <= population else None


def risk_report(
    class_sizes: np.ndarray,
    class_of_row: np.ndarray,
    n_total: int,
    options: RiskOptions | None = None,
    row_weights: np.ndarray | None = None,
) -> dict[str, object]:
    """Risk figures over the released (non-suppressed) records; ``class_of_row`` is -1 for suppressed.
    ``row_weights`` gives records per row for pre-aggregated input (one row per group)."""
    opt = options or RiskOptions()
    kept = class_of_row >= 0
    w = None if row_weights is None else np.asarray(row_weights, dtype=np.float64)[kept]
    n = int(kept.sum()) if w is None else round(float(w.sum()))
    f = class_sizes[class_of_row[kept]].astype(np.float64) if n else np.zeros(0)
    pi = min(1.0, n / max(opt.population, 1)) if n else 1.0
    big_f = np.maximum(f / pi, f)
    prosecutor = 1.0 / f if n else f
    journalist = 1.0 / big_f if n else f
    # (1/n) sum over records of 1/F_j == (1/n) sum_j f_j / F_j.
    marketer_value = float((journalist * (1.0 if w is None else w)).sum() / n) if n else 0.0
    at_risk_w = np.ones(len(journalist)) if w is None else w
    uniques = int((class_sizes == 1).sum())
    pop_uniques = zayatz(class_sizes, n, opt.population)
    pit = pitman(class_sizes, n, opt.population) if uniques else 0.0
    return {
        "prosecutor": _model(prosecutor, opt.threshold, w),
        "journalist": _model(journalist, opt.threshold, w),
        "marketer": {
            "highest": marketer_value,
            "average": marketer_value,
            "records_at_risk": round(float(at_risk_w[journalist > opt.threshold + 1e-12].sum())),
        },
        "threshold": opt.threshold,
        "sample_uniques": {"records": uniques, "share": uniques / n if n else 0.0},
        "population_uniqueness": {
            "population": opt.population,
            "zayatz": {
                "sample_uniques_unique_in_population": pop_uniques,
                "share_of_records": pop_uniques / n if n else 0.0,
            },
            "pitman": {
                "population_uniques": pit,
                "share_of_population": pit / opt.population if pit else 0.0,
            },
        },
        "records_released": n,
        "records_total": n_total,
    }
