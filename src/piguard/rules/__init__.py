"""Decide: rule packs (data files with citations) and the engine that turns declared flows into decisions."""

from __future__ import annotations

from piguard.rules.engine import ConsentSource, ConsentView, Decision, Engine, Reason, check, summary
from piguard.rules.flows import Flow, FlowsDoc, FlowsError, load_flows, parse_flows
from piguard.rules.packs import PackError, Purpose, app_types, purposes, rules

__all__ = [
    "ConsentSource", "ConsentView", "Decision", "Engine", "Flow", "FlowsDoc", "FlowsError", "PackError",
    "Purpose", "Reason", "app_types", "check", "load_flows", "parse_flows", "purposes", "rules", "summary",
]  # fmt: skip
