"""The taxonomy is the public contract for entity ids."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from piguard import taxonomy
from piguard.cli import app

CONTRACT_IDS = [
    "CN_RESIDENT_ID", "CN_PASSPORT", "CN_HK_MACAO_PERMIT", "PHONE_NUMBER", "EMAIL_ADDRESS", "BANK_CARD",
    "IP_ADDRESS", "MAC_ADDRESS", "IMEI", "CN_LICENCE_PLATE", "GPS_COORDINATE", "DATE_OF_BIRTH", "PERSON",
    "ADDRESS",
]  # fmt: skip
DECLARED_ONLY = [
    "CONTACT_LIST", "CALL_LOG", "SMS", "PRECISE_LOCATION", "INSTALLED_APPS", "DEVICE_ID", "FACE_IMAGE",
    "HEALTH_RECORD", "CREDIT_RECORD",
]  # fmt: skip


@pytest.mark.parametrize("entity_id", CONTRACT_IDS + DECLARED_ONLY)
def test_contract_ids_exist_with_full_metadata(entity_id: str) -> None:
    e = taxonomy.get(entity_id)
    assert e.zh and e.en and e.basis
    assert e.identifier in {"direct", "quasi", "none"}
    assert e.fideslang.startswith(("user.", "system."))


def test_sensitivity_follows_pipl_art_28() -> None:
    sensitive_ids = (
        "CN_RESIDENT_ID",
        "BANK_CARD",
        "GPS_COORDINATE",
        "FACE_IMAGE",
        "HEALTH_RECORD",
        "CONTACT_LIST",
    )
    for sensitive in sensitive_ids:
        assert taxonomy.is_sensitive(sensitive), sensitive
    for plain in ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"):
        assert not taxonomy.is_sensitive(plain), plain


def test_uscc_identifies_an_organisation_not_a_person() -> None:
    uscc = taxonomy.get("CN_USCC")
    assert uscc.personal is False and uscc.sensitive is False and uscc.identifier == "none"


def test_unknown_entity_lists_valid_ids() -> None:
    with pytest.raises(taxonomy.UnknownEntity) as err:
        taxonomy.get("NOPE")
    assert "CN_RESIDENT_ID" in str(err.value)


def test_classes_group_every_entity() -> None:
    grouped = taxonomy.classes()
    assert sum(len(v) for v in grouped.values()) == len(taxonomy.entities())
    assert "CN_RESIDENT_ID" in grouped["identity"]


def test_entities_command_prints_the_taxonomy() -> None:
    res = CliRunner().invoke(app, ["entities", "--json", "--detectable"])
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    ids = {r["id"] for r in rows}
    assert set(CONTRACT_IDS) <= ids and "CONTACT_LIST" not in ids
