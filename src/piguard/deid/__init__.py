"""De-identification: operators, hierarchies, privacy models, optimal lattice search, risk and utility.

Library use::

    from piguard.deid import DeidConfig, Models, deidentify, read_table
    df, fmt = read_table("adult.csv")
    cfg = DeidConfig(quasi=["sex", "age"], hierarchy_dir="hierarchies/", models=Models(k=5))
    outcome = deidentify(df, cfg)  # outcome.table, outcome.report
"""

from piguard.deid.config import DeidConfig, load_config
from piguard.deid.engine import Outcome, deidentify
from piguard.deid.errors import DeidError
from piguard.deid.hierarchy import Hierarchy, load_hierarchy_dir, read_arx_csv
from piguard.deid.lattice import Lattice, Models, Result
from piguard.deid.models import KAnonymity, LDiversity, TCloseness
from piguard.deid.tableio import read_table, write_table_atomic

__all__ = [
    "DeidConfig",
    "DeidError",
    "Hierarchy",
    "KAnonymity",
    "LDiversity",
    "Lattice",
    "Models",
    "Outcome",
    "Result",
    "TCloseness",
    "deidentify",
    "load_config",
    "load_hierarchy_dir",
    "read_arx_csv",
    "read_table",
    "write_table_atomic",
]
