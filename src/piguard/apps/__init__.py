"""App audit: an APK and its privacy policy checked against the 2019 method's items and the 2021 necessary
scope. ``audit(apk, policy=..., app_type=...)`` returns an ``AuditResult`` (``as_dict()`` is the JSON
contract, ``flows_yaml()`` the flows file for ``piguard check``). Needs the ``[apps]`` extra (androguard)."""

from __future__ import annotations

from piguard.apps.apk import ApkFacts, AppInputError, read_apk
from piguard.apps.audit import AuditResult, audit
from piguard.apps.policy import PolicyError, PolicyFacts, analyse, read_policy

__all__ = [
    "ApkFacts", "AppInputError", "AuditResult", "PolicyError", "PolicyFacts", "analyse", "audit", "read_apk",
    "read_policy",
]  # fmt: skip
