"""The other verbs that print JSON: `piguard entities --json`, `piguard ledger status`, `piguard ledger audit`
(JSON Lines), `piguard consent record` and `piguard consent show`, run on a temporary SQLite ledger and
checked against their schemas, and the scores `piguard model evaluate --json` prints; broken copies checked
to fail."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from piguard.cli import app
from schema_check import assert_valid, schema_errors, strict_json

RAW = ("110101199003074578", "110101199003079999")  # resident ID numbers: never in any output
runner = CliRunner()


def _run(*args: str, stdin: str | None = None) -> str:
    res = runner.invoke(app, list(args), input=stdin, env={"PIGUARD_LEDGER_KEY": "", "PIGUARD_ACTOR": ""})
    assert res.exit_code == 0, (args, res.stderr, res.exception)
    assert not any(raw in res.stdout for raw in RAW)
    return res.stdout


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = str(tmp_path_factory.mktemp("ledger") / "ledger.db")
    _run("ledger", "init", "--ledger", db)
    out: dict[str, Any] = {"empty_status": strict_json(_run("ledger", "status", "--ledger", db))}
    _run("ledger", "purpose", "risk", "--zh", "风控", "--en", "risk", "--data", "PERSON", "--ledger", db)
    _run(
        "ledger", "provenance", "ds-1", "--dataset", "credit.parquet", "--method", "collected_from_subject",
        "--legal-basis", "consent", "--source", "app", "--data", "PERSON", "--ledger", db,
    )  # fmt: skip
    _run(
        "ledger", "activity", "act-1", "--name", "scoring", "--activity", "use", "--purpose", "risk",
        "--data", "PERSON", "--legal-basis", "consent", "--ledger", db,
    )  # fmt: skip
    records = []
    for i, raw in enumerate(RAW):
        records.append(
            strict_json(
                _run(
                    "consent", "record", "--subject-id", "-", "--kind", "separate", "--id", f"c-{i}",
                    "--purpose", "risk", "--data", "PERSON", "--recipient", "某银行", "--ledger", db,
                    stdin=raw + "\n",
                )
            )
        )  # fmt: skip
    _run("consent", "withdraw", "c-1", "--ledger", db)
    out["records"] = records
    out["show"] = strict_json(_run("consent", "show", "c-1", "--history", "--ledger", db))
    subject = records[0]["subject"]
    out["show_subject"] = strict_json(_run("consent", "show", "--subject", subject, "--ledger", db))
    out["audit"] = [strict_json(x) for x in _run("ledger", "audit", "--ledger", db).splitlines()]
    out["status"] = strict_json(_run("ledger", "status", "--ledger", db))
    out["db"] = db
    return out


def test_ledger_outputs_match_their_schemas(ledger: dict[str, Any]) -> None:
    for name in ("empty_status", "status"):
        assert_valid("ledger-status", ledger[name], f"ledger status ({name})")
    assert ledger["status"]["audit"] == len(ledger["audit"]) == 6
    for entry in ledger["audit"]:
        assert_valid("ledger-audit-entry", entry, f"ledger audit, entry {entry.get('seq')}")
    assert [e["seq"] for e in ledger["audit"]] == list(range(1, 7))
    for record in ledger["records"]:
        assert_valid("consent-record", record, "consent record")
    assert_valid("consent", ledger["show"], "consent show ID --history")
    assert ledger["show"]["withdrawn_at"] and [h["action"] for h in ledger["show"]["history"]] == [
        "consent.record",
        "consent.withdraw",
    ]
    assert_valid("consent", ledger["show_subject"], "consent show --subject")
    assert [c["id"] for c in ledger["show_subject"]] == ["c-0"]


def test_entities_json_matches_schema() -> None:
    every = strict_json(_run("entities", "--json"))
    assert_valid("entities", every, "entities --json")
    detectable = strict_json(_run("entities", "--json", "--detectable"))
    assert_valid("entities", detectable, "entities --json --detectable")
    assert {"CN_RESIDENT_ID", "PHONE_NUMBER", "PERSON"} <= {e["id"] for e in detectable}
    assert len(detectable) < len(every) and all(e["detectable"] for e in detectable)


def test_history_holds_only_the_consents_own_entries(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    _run("ledger", "init", "--ledger", db)
    _run("ledger", "purpose", "same-id", "--zh", "目的", "--en", "p", "--data", "PERSON", "--ledger", db)
    _run(
        "consent", "record", "--subject-id", "-", "--kind", "separate", "--id", "same-id",
        "--purpose", "same-id", "--data", "PERSON", "--ledger", db, stdin=RAW[0] + "\n",
    )  # fmt: skip
    assert_valid("consent", strict_json(_run("consent", "show", "same-id", "--history", "--ledger", db)))


MUTATIONS = {
    "ledger-status": [
        lambda d: d.pop("audit"),
        lambda d: d.update(consents=-1),
        lambda d: d.update(schema=1),
    ],
    "ledger-audit-entry": [
        lambda d: d.update(hash="0" * 63),
        lambda d: d.update(seq=0),
        lambda d: d.update(at="yesterday"),
        lambda d: d.update(action="CONSENT RECORD"),
        lambda d: d.pop("payload"),
    ],
    "consent-record": [
        lambda d: d.update(subject="s_" + RAW[0]),  # a raw ID number behind the prefix (issue 30, section 1)
        lambda d: d.pop("consent"),
    ],
    "consent": [
        lambda d: d.update(kind="implied"),
        lambda d: d.update(subject=RAW[0]),
        lambda d: d.update(given_at="07/12/2026"),
        lambda d: d.pop("withdrawn_at"),
        lambda d: d["history"][0].update(object_type="purpose"),
    ],
}
SOURCES = {
    "ledger-status": "status",
    "ledger-audit-entry": "audit",
    "consent-record": "records",
    "consent": "show",
}


@pytest.mark.parametrize(
    ("name", "i"), [(name, i) for name, muts in MUTATIONS.items() for i in range(len(muts))]
)
def test_schemas_reject_broken_outputs(ledger: dict[str, Any], name: str, i: int) -> None:
    doc = ledger[SOURCES[name]]
    broken = copy.deepcopy(doc[-1] if isinstance(doc, list) else doc)
    MUTATIONS[name][i](broken)
    assert schema_errors(name, broken), f"{name}.schema.json accepts mutation {i}"


def test_entities_schema_rejects_broken_taxonomy() -> None:
    every = strict_json(_run("entities", "--json"))
    for spoil in (
        lambda e: e.update(id="phone number"),
        lambda e: e.update(identifier="partly"),
        lambda e: e.update(sensitive="yes"),
        lambda e: e.pop("basis"),
    ):
        broken = copy.deepcopy(every)
        spoil(broken[0])
        assert schema_errors("entities", broken)


def test_model_scores_schema_on_real_scores_and_broken_ones() -> None:
    """The scores `piguard model evaluate --json` prints come from strict_scores; the full CLI run (with a
    trained model) is validated in tests/adapt."""
    from piguard.adapt.train import strict_scores  # plain Python: no torch needed

    gold = [{(0, 3, "PERSON"), (5, 9, "ADDRESS")}, {(2, 4, "PERSON")}]
    predicted = [{(0, 3, "PERSON"), (5, 8, "ADDRESS")}, {(2, 4, "PERSON"), (6, 7, "PERSON")}]
    scores = strict_scores(predicted, gold)
    assert_valid("model-scores", scores, "strict_scores(...)")
    for spoil in (
        lambda s: s["PERSON"].update(precision=1.5),
        lambda s: s["PERSON"].pop("tp"),
        lambda s: s["ADDRESS"].update(gold=-1),
        lambda s: s.update(PERSON=0.9),
    ):
        broken = copy.deepcopy(scores)
        spoil(broken)
        assert schema_errors("model-scores", broken)
