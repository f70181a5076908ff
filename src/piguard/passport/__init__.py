"""Dataset passports: a signed statement of what a delivery is, where it came from and what it may be used
for, that a buyer verifies offline against the delivered bytes.

The format follows the supply-chain convention: an in-toto Statement v1 (one subject per delivered file,
with its SHA-256) whose predicate is the passport, in a DSSE envelope signed with Ed25519. Library use::

    from piguard.keys import load_signing_key, load_trust
    from piguard.passport import IssueRequest, VerifyOptions, issue, verify

    issued = issue(IssueRequest(data=["delivery/"], key=load_signing_key("keys/supplier.key"),
                                out="passport.json", purposes=["credit_risk"], recipients=["某银行"],
                                state="anonymized", deid_report="report.json"))
    opts = VerifyOptions(trust=load_trust("keys/trusted/"), purposes=["credit_risk"], recipient="某银行")
    verdict = verify("passport.json", ["delivery/"], opts)
    verdict.accepted, [r.message for r in verdict.reasons]
"""

from piguard.passport.issue import Issued, IssueError, IssueRequest, issue
from piguard.passport.predicate import PREDICATE_TYPE, Predicate, PredicateError, parse_predicate
from piguard.passport.proof import ProofError, prove_record, read_proof, verify_record, write_proof
from piguard.passport.revocation import RevocationError, Revocations, revoke
from piguard.passport.revocation import load as load_revocations
from piguard.passport.verify import Reason, Verdict, VerifyOptions, verify, verify_envelope

__all__ = [
    "PREDICATE_TYPE",
    "IssueError",
    "IssueRequest",
    "Issued",
    "Predicate",
    "PredicateError",
    "ProofError",
    "Reason",
    "RevocationError",
    "Revocations",
    "Verdict",
    "VerifyOptions",
    "issue",
    "load_revocations",
    "parse_predicate",
    "prove_record",
    "read_proof",
    "revoke",
    "verify",
    "verify_envelope",
    "verify_record",
    "write_proof",
]
