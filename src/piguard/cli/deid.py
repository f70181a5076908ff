"""``piguard deid``: de-identify a table (operators, optimal k-anonymity / l-diversity / t-closeness,
Mondrian) and report the remaining re-identification risk."""

from __future__ import annotations

import json
from pathlib import Path

import typer

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def deid(
    input: str = typer.Argument(
        ...,
        help="Input table: CSV/TSV (delimiter sniffed), Parquet, xlsx, JSONL; a URL with --engine spark.",
    ),
    out: str | None = typer.Option(None, "--out", "-o", help="Output table (same format by extension)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="deid.yaml configuration."),
    report: Path | None = typer.Option(None, "--report", help="Write the JSON report here."),
    html: Path | None = typer.Option(None, "--html", help="Write an HTML report here."),
    quasi: str | None = typer.Option(None, "--quasi", help="Quasi-identifiers, comma separated."),
    hierarchies: Path | None = typer.Option(
        None, "--hierarchies", help="Directory of ARX hierarchies (*_hierarchy_<col>.csv or <col>.csv)."
    ),
    k: int | None = typer.Option(None, "--k", help="k-anonymity."),
    l_diversity: list[str] = typer.Option(
        [], "--l-diversity", help="COL:L[:distinct|entropy|recursive[:C]] (repeatable)."
    ),
    t_closeness: list[str] = typer.Option(
        [], "--t-closeness", help="COL:T[:equal|hierarchical] (repeatable)."
    ),
    suppression: float | None = typer.Option(
        None, "--suppression", help="Share of records that may be suppressed."
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="loss (default) | entropy | entropy-monotonic | entropy-nonmonotonic (ARX's two non-uniform "
        "entropy variants) | discernability-monotonic | discernability-nonmonotonic | aecs.",
    ),
    mode: str | None = typer.Option(
        None,
        "--mode",
        help="optimal (default, proven optimum) | top-down | bottom-up | genetic (heuristics for wide "
        "tables) | mondrian.",
    ),
    time_limit: float | None = typer.Option(
        None, "--time-limit", help="Stop the search after this many seconds; the best found so far is used."
    ),
    max_steps: int | None = typer.Option(
        None,
        "--max-steps",
        help="Stop the search after this many node checks; the best found so far is used.",
    ),
    average_risk: float | None = typer.Option(
        None, "--average-risk", help="Highest allowed average re-identification risk (prosecutor), e.g. 0.05."
    ),
    highest_risk: float | None = typer.Option(
        None,
        "--highest-risk",
        help="Highest allowed risk of any record (prosecutor: 1 / class size), e.g. 0.2.",
    ),
    records_at_risk: float | None = typer.Option(
        None,
        "--records-at-risk",
        help="Share of records that may exceed --highest-risk (ARX's third parameter).",
    ),
    k_map: int | None = typer.Option(
        None,
        "--k-map",
        help="k-map: every record matches at least K people of the population (--population-table, or "
        "estimated from --population).",
    ),
    d_presence: str | None = typer.Option(
        None, "--d-presence", help="MIN:MAX delta-presence against --population-table."
    ),
    population_table: Path | None = typer.Option(
        None, "--population-table", help="The population the input is drawn from (k-map, d-presence)."
    ),
    population: int | None = typer.Option(
        None, "--population", help="Population size for journalist risk and estimated k-map."
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="local | spark (group counts and the rewrite run in Spark; output is a directory).",
    ),
    init_config: Path | None = typer.Option(
        None, "--init-config", help="Write a draft config for INPUT (from detected columns) and stop."
    ),
    keep: list[str] = typer.Option(
        [],
        "--keep",
        help="Release these columns unchanged on purpose (comma separated, repeatable); the report lists "
        "them and the declared state accounts for them.",
    ),
) -> None:
    """De-identify INPUT into --out; print a summary, write --report (JSON) and --html."""
    from piguard.deid import DeidConfig, DeidError, deidentify, load_config, read_table, write_table_atomic
    from piguard.deid.config import parse_l, parse_t
    from piguard.deid.safety import DeidRefused
    from piguard.deid.tableio import write_text_atomic

    def fail(msg: str, code: int = EXIT_ERROR) -> typer.Exit:
        if "://" in msg:  # a Spark input or output URL may carry a password
            from piguard.sources.redact import redact_urls

            msg = redact_urls(msg)
        typer.echo(f"piguard deid: {msg}", err=True)
        return typer.Exit(code)

    try:
        if engine not in ("local", "spark"):
            raise fail("--engine must be local or spark")
        from piguard.deid.config import MODES, parse_d_presence, parse_k_map
        from piguard.deid.lattice import METRICS

        if metric and metric not in METRICS:
            raise fail(f"--metric must be one of {', '.join(METRICS)}")
        if mode and mode not in MODES:
            raise fail(f"--mode must be one of {', '.join(MODES)}")
        if init_config is not None:
            from piguard.deid.autoconfig import draft_yaml

            df, _ = read_table(input)
            write_text_atomic(draft_yaml(df, str(input), k=k or 5), init_config)
            typer.echo(f"draft configuration written to {init_config}")
            return
        if out is None:
            raise fail("--out is required")
        if "://" not in input:
            # Writing over the input would replace the only copy of the raw data with its de-identified form.
            for opt, target in (("--out", out), ("--report", report), ("--html", html)):
                if target is not None and Path(target).resolve() == Path(input).resolve():
                    raise fail(f"{opt} {target} is the input table; choose another path")
        cfg = load_config(config) if config else DeidConfig()
        if quasi is not None:
            cfg.quasi = [q.strip() for q in quasi.split(",") if q.strip()]
            if not cfg.quasi:
                raise fail("--quasi names no column (give the quasi-identifiers, comma separated)")
        if hierarchies:
            cfg.hierarchy_dir = str(hierarchies.resolve())
        if k is not None:
            cfg.models.k = k
        if l_diversity:
            cfg.models.l_diversity = [parse_l(s) for s in l_diversity]
        if t_closeness:
            cfg.models.t_closeness = [parse_t(s) for s in t_closeness]
        if suppression is not None:
            cfg.models.suppression = suppression
        if metric:
            cfg.metric = metric
        if mode:
            cfg.mode = mode
        if population is not None:
            cfg.risk.population = population
        for spec in keep:
            cfg.keep += [c.strip() for c in spec.split(",") if c.strip()]
        if time_limit is not None:
            cfg.time_limit = time_limit
        if max_steps is not None:
            cfg.max_steps = max_steps
        if average_risk is not None:
            cfg.models.average_risk = average_risk
        if highest_risk is not None:
            cfg.models.highest_risk = highest_risk
        if records_at_risk is not None:
            cfg.models.records_at_risk = records_at_risk
        if population_table is not None:
            cfg.population_table = str(population_table.resolve())
        if k_map is not None:
            km: dict[str, object] = {"k": k_map}
            if population is not None and population_table is None:
                km["population"] = population
            cfg.models.k_map = parse_k_map(km, "--k-map")
        if d_presence is not None:
            cfg.models.d_presence = parse_d_presence(d_presence, "--d-presence")
        if engine == "spark":
            from piguard.deid.spark import run_spark_files

            rep = run_spark_files(input, out, cfg)
            n_rows = rep["risk"]["records_total"]
        else:
            df, fmt = read_table(input)
            outcome = deidentify(df, cfg)
            write_table_atomic(outcome.table, out, fmt)
            rep, n_rows = outcome.report, df.height
        if report:
            write_text_atomic(json.dumps(rep, ensure_ascii=False, indent=2), report)
        if html:
            from piguard.deid.report_html import render_html

            write_text_atomic(render_html(rep), html)
    except DeidRefused as exc:
        raise fail(f"{input}: refused: {exc}", EXIT_REFUSED) from None
    except DeidError as exc:
        msg = str(exc)
        raise fail(msg if msg.startswith(str(input)) else f"{input}: {msg}") from None
    except OSError as exc:
        raise fail(f"{exc.filename or input}: {exc.strerror or exc}") from None
    levels = ", ".join(f"{c}={v}" for c, v in rep["levels"].items())
    typer.echo(
        f"{out}: {n_rows} rows, {rep['suppressed_rows']} suppressed, {rep['equivalence_classes']} classes "
        f"(smallest {rep['min_class_size']}); levels {levels or '-'}; prosecutor risk highest "
        f"{rep['risk']['prosecutor']['highest']:.4f}; "
        f"search {rep['utility']['search'].get('search_ms', 0)} ms"
    )
    srch = rep["utility"]["search"]
    if srch.get("proven_optimal") is False:
        why = {"time_limit": "the time limit", "step_limit": "the step limit"}.get(
            srch.get("stopped_by") or ""
        )
        typer.echo(
            f"  search: best transformation found by {srch.get('strategy')}"
            + (f" within {why}" if why else "")
            + ": not proven optimal; every privacy model holds"
        )
    for col, plan in rep.get("columns", {}).items():
        if plan["origin"] == "default" and plan["treatment"] != "keep":
            typer.echo(
                f"  {col}: {plan['treatment']} ({', '.join(plan['detected'])}): {plan.get('note', '')}"
            )
    for col, info in rep["utility"]["columns"].items():
        if "key_created" in info:
            typer.echo(
                f"  {col}: created key file {info['key_created']} (mode 0600): keep it private and reuse it"
            )
        for w in info.get("warnings", []):
            typer.echo(f"piguard deid: warning: {col}: {w}", err=True)
    passed = [p["column"] for p in rep.get("passed_through", [])]
    if passed:
        typer.echo(f"  passed through unchanged: {', '.join(passed)}")
    state = rep.get("declared_state")
    if state:
        typer.echo(
            f"declared state: {state}" + ("" if state == "anonymized" else f" ({rep['state_reasons'][0]})")
        )


def register(app: typer.Typer) -> None:
    app.command("deid")(deid)
