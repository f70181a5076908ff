"""The passport is what it says it is: a DSSE envelope (checked with securesystemslib's DSSE code) over an
in-toto Statement v1 (checked with the in-toto attestation bindings) whose predicate follows the published
JSON Schema, which the runtime parser agrees with."""

from __future__ import annotations

import base64
import copy
import json
from importlib import resources

import jsonschema
import pytest

from piguard.passport import envelope
from piguard.passport.predicate import PREDICATE_TYPE, PredicateError, parse_predicate


def _statement(path):
    env = json.loads(path.read_text("utf-8"))
    return env, json.loads(base64.b64decode(env["payload"]))


def _schema():
    text = resources.files("piguard.schemas").joinpath("passport-predicate-v1.schema.json").read_text("utf-8")
    return json.loads(text)


def test_pae_matches_the_dsse_specification_example():
    # DSSE protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert envelope.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_envelope_verifies_with_securesystemslib(supply):
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    doc = json.loads(supply.passport.read_text("utf-8"))
    assert doc["payloadType"] == "application/vnd.in-toto+json"
    env = Envelope.from_dict(copy.deepcopy(doc))
    pub = supply.supplier.public
    key = SSlibKey(pub.key_id, "ed25519", "ed25519", {"public": pub.raw.hex()})
    verified = env.verify([key], 1)
    assert pub.key_id in verified
    # The same library refuses it under another key, and after one payload byte changes.
    other = supply.intruder.public
    with pytest.raises(VerificationError):
        env.verify([SSlibKey(pub.key_id, "ed25519", "ed25519", {"public": other.raw.hex()})], 1)
    tampered = copy.deepcopy(doc)
    payload = bytearray(base64.b64decode(tampered["payload"]))
    payload[10] ^= 1
    tampered["payload"] = base64.b64encode(bytes(payload)).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(tampered).verify([key], 1)


def test_statement_is_valid_in_toto_v1(supply):
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement, statement_pb2

    _, st = _statement(supply.passport)
    pb = json_format.Parse(json.dumps(st), statement_pb2.Statement())
    statement.Statement.copy_from_pb(pb).validate()
    assert st["predicateType"] == PREDICATE_TYPE
    assert st["subject"][0]["name"] == "loan.deid.csv"
    assert len(st["subject"][0]["digest"]["sha256"]) == 64


def test_predicate_follows_the_schema_and_the_parser_agrees(supply):
    _, st = _statement(supply.passport)
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    pred = st["predicate"]
    validator.validate(pred)
    parse_predicate(pred)
    # Mutations both must refuse.
    mutations = [
        ("an extra field", lambda p: p.update({"extra": 1})),
        ("a missing issuer", lambda p: p.pop("issuer")),
        ("a bad state", lambda p: p["declaredState"].update({"state": "scrubbed"})),
        ("a short Merkle root", lambda p: p["dataset"]["files"][0].update({"merkleRoot": "ab"})),
        ("no permitted purpose", lambda p: p["permitted"].update({"purposes": []})),
        ("a share above 1", lambda p: p["inventory"]["entries"][0].update({"share": 1.5})),
        ("an unknown algorithm", lambda p: p["dataset"]["merkle"].update({"algorithm": "sha1"})),
        ("a time without zone", lambda p: p.update({"expiresAt": "2030-01-01T00:00:00"})),
    ]
    for what, mutate in mutations:
        bad = copy.deepcopy(pred)
        mutate(bad)
        assert not validator.is_valid(bad), what
        with pytest.raises(PredicateError):
            parse_predicate(bad)


def test_passport_carries_counts_and_hashes_never_values(supply):
    """No value of the original data appears anywhere in the passport (ids, phones, names)."""
    import csv

    text = base64.b64decode(json.loads(supply.passport.read_text("utf-8"))["payload"]).decode("utf-8")
    from passport_data import APPLICANTS

    with open(APPLICANTS, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows[:500]:
        for col in ("姓名", "手机号", "身份证号"):
            assert row[col] not in text
