"""Record inclusion proofs: show that one record belongs to a passport's dataset without handing over the
rest of the file (RFC 9162 audit paths against the file's signed Merkle root)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from piguard._fs import atomic_write_text, read_regular_bytes
from piguard.passport import dataset, envelope, merkle, records
from piguard.passport.predicate import PREDICATE_TYPE, PredicateError, parse_predicate
from piguard.passport.verify import Verdict, VerifyOptions, open_passport, read_passport_file

PROOF_TYPE = "https://piguard.dev/attestations/record-proof/v1"


class ProofError(ValueError):
    """A proof cannot be made or read; the message names the input (never the record's content)."""


def _predicate_unverified(passport_path: str):  # type: ignore[no-untyped-def]
    """The prover's view: the passport it holds, read but not judged (verify-record judges)."""
    try:
        env = envelope.parse_envelope(read_passport_file(passport_path), f"passport {passport_path}")
        st = envelope.parse_statement(env.payload)
        if st["predicateType"] != PREDICATE_TYPE:
            raise ProofError(
                f"passport {passport_path}: predicate type {st['predicateType']!r} is not {PREDICATE_TYPE}"
            )
        return env, parse_predicate(st["predicate"])
    except (envelope.EnvelopeError, PredicateError) as exc:
        raise ProofError(str(exc)) from None


def prove_record(data_file: str, passport_path: str, row: int) -> dict[str, Any]:
    """The inclusion proof of record ``row`` (1-based, after the header) of ``data_file``."""
    env, pred = _predicate_unverified(passport_path)
    try:
        ((name, path),) = dataset.collect([data_file])
    except (dataset.DatasetError, ValueError) as exc:
        raise ProofError(f"{data_file}: {exc}") from None
    # A file issued from inside a directory is named by its path there ("2026/q3.csv"); its base name finds
    # it when no other file of the passport shares that base name.
    matches = [f for f in pred.files if f.name == name] or [
        f for f in pred.files if f.name.rsplit("/", 1)[-1] == name
    ]
    if len(matches) != 1:
        why = "is not a file of" if not matches else "names several files of"
        raise ProofError(f"{name} {why} passport {passport_path}")
    entry = matches[0]
    name = entry.name
    if not 1 <= row <= entry.records:
        raise ProofError(f"--row {row}: {name} has records 1 to {entry.records}")
    (h,) = dataset.hash_files([(name, path)], layer_max_nodes=pred.layer_max_nodes)
    if h.root.hex() != entry.merkle_root:
        raise ProofError(f"{data_file} is not the file the passport describes (its Merkle root differs)")
    record = records.record_at(path, h.hashes.format, row - 1)
    audit = merkle.inclusion_proof(h.hashes.leaves, row - 1)
    return {
        "_type": PROOF_TYPE,
        "passport": env.id,
        "file": name,
        "record": row,
        "treeSize": entry.records,
        "recordBase64": base64.b64encode(record).decode("ascii"),
        "leafHash": merkle.leaf_hash(record).hex(),
        "auditPath": [p.hex() for p in audit],
        "merkleRoot": entry.merkle_root,
    }


def write_proof(proof: dict[str, Any], out: str) -> None:
    # The record may hold personal information: the proof file is private to its owner.
    atomic_write_text(out, json.dumps(proof, ensure_ascii=False, indent=2) + "\n", mode=0o600)


def read_proof(path: str) -> dict[str, Any]:
    try:
        doc = json.loads(read_regular_bytes(path).decode("utf-8"))
    except OSError as exc:
        raise ProofError(f"proof {path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProofError(f"proof {path} is not JSON") from None
    if not isinstance(doc, dict) or doc.get("_type") != PROOF_TYPE:
        raise ProofError(f"proof {path} is not a piguard record proof ({PROOF_TYPE})")
    return doc


def verify_record(proof: dict[str, Any], passport_path: str, opts: VerifyOptions) -> Verdict:
    """Check the passport (signature, validity, revocation) and the proof against its file's root."""
    v = Verdict(passport_path)
    try:
        raw = read_passport_file(passport_path)
    except envelope.EnvelopeError as exc:
        v.fail(exc.code, str(exc))
        return v
    pred = open_passport(raw, f"passport {passport_path}", opts, v)
    if pred is None or v.unusable:
        return v
    if proof.get("passport") != v.id:
        v.fail(
            "proof",
            f"the proof was made for passport {str(proof.get('passport'))[:19]}..., "
            f"not this one ({str(v.id)[:19]}...)",
        )
        return v
    entry = next((f for f in pred.files if f.name == proof.get("file")), None)
    if entry is None:
        v.fail("proof", "the proof names a file that is not in the passport")
        return v
    try:
        record = base64.b64decode(str(proof.get("recordBase64", "")), validate=True)
        path = [bytes.fromhex(p) for p in proof.get("auditPath", [])]
        index = int(proof.get("record", 0)) - 1
        size = int(proof.get("treeSize", -1))
    except (binascii.Error, ValueError, TypeError):
        v.fail("proof", "the proof's fields are malformed (record, auditPath, treeSize)")
        return v
    if size != entry.records:
        v.fail(
            "proof",
            f"the proof's tree holds {size} records; the passport's {entry.name} holds {entry.records}",
        )
    elif not merkle.verify_inclusion(
        merkle.leaf_hash(record), index, size, path, bytes.fromhex(entry.merkle_root)
    ):
        v.fail(
            "proof",
            f"record {index + 1} of {entry.name} does not hash to the passport's Merkle root "
            "(altered, or not included)",
            file=entry.name,
            record=index + 1,
        )
    else:
        v.checks.append(
            f"record {index + 1} of {entry.name} is included in the signed Merkle root "
            f"(audit path of {len(path)} hashes)"
        )
    return v
