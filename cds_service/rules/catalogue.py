"""Every rule the service can fire, gathered from the rule modules that define them.

A rule is defined where it fires (`withholding.WITHHOLD_SEVERE`, ...) with its stable id, its
source (the Kynamro PI section and the project policy of docs/clinical-policy.md) and the reason
it gives; the reason's decision kind, priority and card wording are one entry of
`reasons.toml`. Adding a rule touches its rule module and that entry, nothing else.
"""

from __future__ import annotations

from cds_service.rules import (
    closer_monitoring,
    contraindication,
    data_quality,
    discontinuation,
    monitoring,
    withholding,
)
from cds_service.rules.decision import Rule

# Every rule module, in the order the engine asks them (the findings are sorted afterwards).
RULE_MODULES = (
    contraindication,
    discontinuation,
    withholding,
    data_quality,
    monitoring,
    closer_monitoring,
)
ALL_RULES: tuple[Rule, ...] = tuple(rule for module in RULE_MODULES for rule in module.RULES)
