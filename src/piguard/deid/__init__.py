"""De-identification: operators, hierarchies, privacy models, optimal lattice search, risk and utility."""
