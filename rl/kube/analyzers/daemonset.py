"""DaemonSet analyzer: pods not ready or not scheduled on the nodes that should run them."""

from rl.findings import REASONS as VOCABULARY
from rl.findings import WARNING, Finding
from rl.kube.inventory import Inventory, name_of, namespace_of

KIND = "DaemonSet"
NEEDS = ("daemonsets",)
REASONS = VOCABULARY[KIND]


def image_pull_secrets(ds: dict) -> list[str]:
    spec = (((ds.get("spec") or {}).get("template") or {}).get("spec")) or {}
    return [s["name"] for s in spec.get("imagePullSecrets") or () if s.get("name")]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for ds in inv.items("daemonsets"):
        namespace, name, status = namespace_of(ds), name_of(ds), ds.get("status") or {}
        desired = int(status.get("desiredNumberScheduled") or 0)
        ready = int(status.get("numberReady") or 0)
        parent = inv.parent(ds)
        if ready < desired:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "PodsNotReady",
                    f"{ready} of {desired} scheduled pods ready",
                    (f"status.desiredNumberScheduled {desired}", f"status.numberReady {ready}"),
                    WARNING,
                    parent,
                )
            )
        for secret in image_pull_secrets(ds):
            if inv.secrets.get((namespace, secret)) is False:
                findings.append(
                    Finding(
                        KIND,
                        namespace,
                        name,
                        "ImagePullSecretNotFound",
                        f"imagePullSecret {namespace}/{secret} does not exist: new pods cannot pull private images",
                        (f"imagePullSecrets {secret}",),
                        WARNING,
                        parent,
                    )
                )
        misscheduled = int(status.get("numberMisscheduled") or 0)
        if misscheduled:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "Misscheduled",
                    f"{misscheduled} pod(s) run on nodes they should not",
                    (f"status.numberMisscheduled {misscheduled}",),
                    WARNING,
                    parent,
                )
            )
    return findings
