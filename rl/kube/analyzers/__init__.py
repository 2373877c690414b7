"""The analyzers, one module per resource kind, and the registry that runs them (k8sgpt's layout).

Each module declares `KIND`, `NEEDS` (the lists it reads), `REASONS` (every reason it can emit) and
`analyze(inventory) -> list[Finding]`; modules with `AFTER_OTHERS` also get the findings so far. An
analyzer whose lists could not be read is skipped and named in the result, never run on half data.
"""

from dataclasses import dataclass, field

from rl.findings import SEVERITIES, Finding
from rl.kube.analyzers import (
    cronjob,
    daemonset,
    deployment,
    dns,
    events,
    hpa,
    ingress,
    job,
    networkpolicy,
    node,
    pdb,
    pod,
    pvc,
    replicaset,
    resourcequota,
    service,
    statefulset,
)
from rl.kube.inventory import Inventory

ANALYZERS = (
    node,
    pod,
    dns,
    deployment,
    replicaset,
    statefulset,
    daemonset,
    job,
    cronjob,
    service,
    ingress,
    pvc,
    hpa,
    pdb,
    networkpolicy,
    resourcequota,
    events,
)
REASONS: dict[str, tuple[str, ...]] = {}
for _module in ANALYZERS:
    REASONS.setdefault(_module.KIND, ())
    REASONS[_module.KIND] += tuple(r for r in _module.REASONS if r not in REASONS[_module.KIND])
# Warning events are reported on whatever kind they are about.
EVENT_REASONS = events.REASONS


@dataclass
class Analysis:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # analyzers not run, and why


def analyze(inventory: Inventory) -> Analysis:
    result = Analysis()
    for module in ANALYZERS:
        missing = [r for r in module.NEEDS if r not in inventory.lists]
        if missing:
            why = "; ".join(inventory.unreadable.get(r, "not read") for r in missing)
            result.skipped.append(f"{module.KIND} analyzer skipped: {', '.join(missing)} unreadable ({why})")
            continue
        found = (
            module.analyze(inventory, list(result.findings))
            if getattr(module, "AFTER_OTHERS", False)
            else module.analyze(inventory)
        )
        result.findings.extend(found)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    result.findings = list({f.key: f for f in result.findings}.values())
    result.findings.sort(key=lambda f: (order.get(f.severity, 9), f.kind, f.namespace, f.name, f.reason))
    return result
