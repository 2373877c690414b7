"""`Finding`: one problem an analyzer found on one object, as structured data.

Analyzers (`rl.kube.analyzers`) return findings; the observation's counts and flags, the env's
terminal condition, the root-cause grouping and every report are built from them. Nothing
downstream parses a finding's text: `kind` and `reason` are the keys (next steps are looked up by
them, see `entrypoint.recommendations`).
"""

from dataclasses import asdict, dataclass

CRITICAL = "critical"  # the workload or node is down or cannot start
WARNING = "warning"  # degraded, or will fail under a likely event (a drain, a restart)
INFO = "info"  # a configuration k8sgpt also reports, with no outage now
SEVERITIES = (CRITICAL, WARNING, INFO)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # the Kubernetes kind of the object ("Pod", "Service"), or "ClusterDNS"
    namespace: str  # "" for cluster-scoped objects
    name: str
    reason: str  # a short CamelCase key, one of the analyzer's REASONS
    message: str  # one line a human reads
    evidence: tuple[str, ...] = ()  # the status fields or events the finding rests on
    severity: str = WARNING
    parent: str = ""  # the top controller, "Deployment/cart" (k8sgpt's parentObject); "" if none
    since: str | None = None  # ISO time the problem started, when the API says so

    @property
    def ref(self) -> str:
        """`Kind/namespace/name` (or `Kind/name` when cluster-scoped): the object's identity."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    @property
    def object_name(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.namespace, self.name, self.reason)

    def __str__(self) -> str:
        return f"{self.kind} {self.object_name} {self.reason}: {self.message}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["evidence"] = list(self.evidence)
        return data
