"""Compute together without sharing raw data: private set intersection, consortium counts and vertical
federated logistic regression between authenticated members, each run checked for lawfulness and logged
with sizes only.

Public API::

    from piguard.joint import normalise, PsiServer, JointServer, psi_query
"""

from __future__ import annotations

from piguard.joint.count import AggregatorServer, CountResult, MemberServer
from piguard.joint.count import query as count_query
from piguard.joint.errors import (
    AuthenticationError,
    InputError,
    JointError,
    LimitExceededError,
    MalformedMessageError,
    NotLawfulError,
    PeerError,
    ProtocolVersionError,
    ReplayError,
    SessionError,
)
from piguard.joint.identifiers import Normalised, normalise
from piguard.joint.limits import Limit, Limits
from piguard.joint.psi import PsiResult, PsiServer, RunRecord
from piguard.joint.psi import query as psi_query
from piguard.joint.transport import Client, JointServer

__all__ = [
    "AggregatorServer",
    "AuthenticationError",
    "Client",
    "CountResult",
    "InputError",
    "JointError",
    "JointServer",
    "Limit",
    "LimitExceededError",
    "Limits",
    "MalformedMessageError",
    "MemberServer",
    "Normalised",
    "NotLawfulError",
    "PeerError",
    "ProtocolVersionError",
    "PsiResult",
    "PsiServer",
    "ReplayError",
    "RunRecord",
    "SessionError",
    "count_query",
    "normalise",
    "psi_query",
]
