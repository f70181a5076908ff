"""Identifier normalisation: one person's identifier written differently by two parties gives one key."""

from __future__ import annotations

import pytest

from piguard.joint import InputError, normalise


def test_resident_id_generations_and_case_match() -> None:
    # A 15-digit (pre-1999) ID and its 18-digit successor; lower-case x; full-width digits; separators.
    n = normalise(
        [
            "110101900307123",
            "110101199003071233",
            "11010519491231002x",
            "１１０１０５１９４９１２３１００２Ｘ",
        ]
    )
    assert n.keys.to_list() == [
        "CN_RESIDENT_ID:110101199003071233",
        "CN_RESIDENT_ID:110101199003071233",
        "CN_RESIDENT_ID:11010519491231002X",
        "CN_RESIDENT_ID:11010519491231002X",
    ]
    assert n.invalid == 0


def test_phone_forms_become_one_e164() -> None:
    forms = [
        "138 1234 5678",
        "+86 138-1234-5678",
        "8613812345678",
        "0086 13812345678",
        "１３８１２３４５６７８",
    ]
    n = normalise(forms, "phone")
    assert set(n.keys.to_list()) == {"PHONE_NUMBER:+8613812345678"}
    # A foreign number keeps its own country code; a landline gets +86 and loses its trunk 0.
    assert normalise(["+1 650 253 0000", "010-62345678"]).keys.to_list() == [
        "PHONE_NUMBER:+16502530000",
        "PHONE_NUMBER:+861062345678",
    ]


def test_invalid_values_are_counted_and_left_out() -> None:
    n = normalise(["110101199003071234", "4111 1111 1111 1112", "not an id", "", None, "4111111111111111"])
    assert n.keys.to_list()[-1] == "BANK_CARD:4111111111111111"
    assert n.keys.null_count() == 5
    assert n.summary() == {
        "rows": 6,
        "valid": 1,
        "invalid_dropped": 3,
        "empty_dropped": 2,
        "by_type": {"BANK_CARD": 1},
    }


def test_types_never_collide_and_explicit_type_filters() -> None:
    n = normalise(["Foo.Bar@Example.COM", "13812345678"])
    assert n.keys.to_list() == ["EMAIL_ADDRESS:foo.bar@example.com", "PHONE_NUMBER:+8613812345678"]
    only_email = normalise(["Foo.Bar@Example.COM", "13812345678"], "email")
    assert only_email.keys.to_list() == ["EMAIL_ADDRESS:foo.bar@example.com", None]
    assert only_email.invalid == 1


def test_unknown_type_is_a_named_error() -> None:
    with pytest.raises(InputError, match="unknown identifier type 'passport'"):
        normalise(["x"], "passport")
