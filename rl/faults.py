"""The catalogue of faults: one row per fault type, declared once.

Each row says who can fix the fault (remedies that fix it; none: a human must act), which remedies
make it worse, which diagnostic reads identify it (tell it apart from its look-alikes), the findings
it produces in the analyzers' vocabulary (`rl.findings`), a one-line description, the evidence text
a report shows, and the kubectl commands a human runs next. The simulator's masks (`rl.sim.core`),
the finding-to-fault map (`rl.diagnosis.FINDING_FAULTS`), the reports, the recommendations and the
docs/simulator.md's fault table are derived from it; `tests/test_faults.py` fails when a row is incomplete.

The simulator implements each row (`rl.sim.core`: what a fault does to the counts, and the findings
it emits); `tests/test_faults.py` also checks that a simulated cluster with one fault emits exactly
the findings its row declares.

Findings a row declares with `signature=True` point at that fault on their own: a plain lookup of
findings (`rl.diagnosis.finding_fault`) names the fault for them. The others are symptoms many
faults share (a Deployment with replicas unavailable), which only the combination tells apart.
"""

from dataclasses import dataclass
from enum import IntEnum

from rl.actions import ClusterAction
from rl.findings import INFO, INTENT_KEYS, KEY_INDEX, Finding, vector_key

A = ClusterAction


class Fault(IntEnum):
    CRASHED_PODS = 0
    BAD_ROLLOUT = 1
    OOM_KILLED = 2
    NODE_NOT_READY = 3
    NODE_CORDONED = 4
    NODE_PRESSURE = 5
    RUNAWAY_DEPLOYMENT = 6
    UNDERSCALED = 7
    QUOTA_EXHAUSTED = 8
    UNBOUND_PVC = 9
    DNS_FAILURE = 10
    OVERPROVISIONED = 11
    IMAGE_PULL_FAILURE = 12
    CONFIG_ERROR = 13
    DEPENDENCY_DOWN = 14
    SERVICE_NO_ENDPOINTS = 15
    INSUFFICIENT_CAPACITY = 16
    JOB_FAILED = 17


@dataclass(frozen=True)
class Emits:
    """One finding a fault produces: its (kind, reason), how many objects show it, and whether it
    points at this fault on its own (`signature`)."""

    kind: str
    reason: str
    count: str  # how many objects, in words ("one per failing pod", "one, after the progress deadline")
    signature: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.reason)


@dataclass(frozen=True)
class FaultSpec:
    fault: Fault
    description: str  # one line: what is wrong, and who fixes it
    symptoms: str  # what the cluster shows, in plain words
    fixed_by: tuple[ClusterAction, ...]  # remedies that fix it once a read identified it; () a human must act
    worse_by: tuple[ClusterAction, ...]  # remedies that make it worse
    revealed_by: tuple[ClusterAction, ...]  # reads that identify it (tell it apart from its look-alikes)
    findings: tuple[Emits, ...]  # what the analyzers report for it
    evidence: str  # a report's line; {size} is the fault's extent, {state} the ClusterState
    next_steps: tuple[str, ...]  # kubectl commands a human runs next
    relieved_by: tuple[ClusterAction, ...] = ()  # remedies that only buy time
    injected: bool = True  # False: it arises only from the agent's own wrong moves

    @property
    def human_only(self) -> bool:
        return not self.fixed_by

    @property
    def name(self) -> str:
        return self.fault.name.lower()


_POD_FAILED = "one per failing pod"
_ONE = "one"
_DEADLINE = "one, after the rollout's progress deadline"
_PER_DEPLOYMENT = "one per affected deployment"
_COREDNS = "two (the CoreDNS pods)"

CATALOGUE: tuple[FaultSpec, ...] = (
    FaultSpec(
        Fault.CRASHED_PODS,
        "pods crashed on a transient error; restart them",
        "a few pods of several deployments in CrashLoopBackOff after a one-off panic (corrupt local cache)",
        fixed_by=(A.RESTART_FAILED_PODS,),
        worse_by=(),
        revealed_by=(A.CHECK_LOGS,),
        findings=(
            Emits("Pod", "CrashLoopBackOff", _POD_FAILED),
            Emits("Deployment", "ReplicasUnavailable", _PER_DEPLOYMENT),
            Emits("Service", "NotReadyEndpoints", _PER_DEPLOYMENT),
            Emits("Log", "Panic", _POD_FAILED, signature=True),
        ),
        evidence="{size} pod(s) in CrashLoopBackOff after a one-off panic (exit code 2, low restart count)",
        next_steps=(
            "kubectl logs <pod> -n <namespace> --previous",
            "kubectl delete pod <pod> -n <namespace>",
        ),
    ),
    FaultSpec(
        Fault.BAD_ROLLOUT,
        "a rollout's new pods crash on a bad config or image; a human rolls it back",
        "the new ReplicaSet's pods in CrashLoopBackOff while the old one keeps serving; later ProgressDeadlineExceeded",
        fixed_by=(),
        worse_by=(A.SCALE_UP_DEPLOYMENT,),
        revealed_by=(A.CHECK_LOGS,),
        findings=(
            Emits("Pod", "CrashLoopBackOff", _POD_FAILED),
            Emits("Deployment", "ReplicasUnavailable", _ONE),
            Emits("Service", "NotReadyEndpoints", _ONE),
            Emits("Deployment", "ProgressDeadlineExceeded", _DEADLINE, signature=True),
            Emits("Log", "ConfigurationError", _POD_FAILED, signature=True),
        ),
        evidence="{size} pod(s) of a new ReplicaSet in CrashLoopBackOff; logs: invalid configuration",
        next_steps=(
            "kubectl rollout history deployment/<name> -n <namespace>",
            "kubectl logs deployment/<name> -n <namespace> --previous",
            "kubectl rollout undo deployment/<name> -n <namespace>",
        ),
    ),
    FaultSpec(
        Fault.OOM_KILLED,
        "pods OOMKilled under load; scale the deployment up",
        "pods of one deployment killed at their memory limit, memory high in `top pods`",
        fixed_by=(A.SCALE_UP_DEPLOYMENT,),
        worse_by=(A.SCALE_DOWN_DEPLOYMENT,),
        revealed_by=(A.GET_PODS, A.DESCRIBE_UNHEALTHY, A.TOP_PODS),
        findings=(
            Emits("Pod", "OOMKilled", _POD_FAILED, signature=True),
            Emits("Deployment", "ReplicasUnavailable", _ONE),
            Emits("Service", "NotReadyEndpoints", _ONE),
        ),
        evidence="{size} pod(s) with Last State OOMKilled; memory at {state.memory_usage_percent:.0f}%",
        next_steps=(
            "kubectl describe pod <pod> -n <namespace> | grep -A3 'Last State'",
            "kubectl top pods -n <namespace> --sort-by=memory",
            "kubectl set resources deployment/<name> -n <namespace> --limits=memory=<more>",
        ),
        relieved_by=(A.RESTART_FAILED_PODS,),
    ),
    FaultSpec(
        Fault.NODE_NOT_READY,
        "node NotReady (kubelet down); drain it so its pods reschedule",
        "one node NotReady; its pods Unknown, then Terminating after the eviction timeout",
        fixed_by=(A.DRAIN_NODE,),
        worse_by=(),
        revealed_by=(A.GET_NODES, A.DESCRIBE_UNHEALTHY),
        findings=(
            Emits("Node", "NotReady", _ONE, signature=True),
            Emits("Pod", "PhaseUnknown", "one per pod on the node, until the eviction timeout", signature=True),
            Emits(
                "Pod", "TerminatingOnDeadNode", "one per pod on the node, after the eviction timeout", signature=True
            ),
            Emits("Deployment", "ReplicasUnavailable", "one per deployment with a pod there, until the eviction"),
            Emits("Service", "NotReadyEndpoints", "one per deployment with a pod there, until the eviction"),
        ),
        evidence="1 node NotReady (kubelet stopped posting status); {state.pods_unknown} pod(s) Unknown",
        next_steps=(
            "kubectl describe node <node>",
            "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data",
        ),
    ),
    FaultSpec(
        Fault.NODE_CORDONED,
        "node cordoned and forgotten; uncordon it",
        "a Ready node SchedulingDisabled with no maintenance planned; capacity lower",
        fixed_by=(A.UNCORDON_NODE,),
        worse_by=(),
        revealed_by=(A.GET_NODES,),
        findings=(
            Emits("Node", "Cordoned", "one per cordoned node", signature=True),
            Emits("Pod", "Unschedulable", "one per pod the other nodes have no room for (a small, full cluster)"),
            Emits("Deployment", "ReplicasUnavailable", "one per deployment whose pods wait for room"),
        ),
        evidence="{size} Ready node(s) SchedulingDisabled, no maintenance annotation",
        next_steps=("kubectl get nodes | grep SchedulingDisabled", "kubectl uncordon <node>"),
    ),
    FaultSpec(
        Fault.NODE_PRESSURE,
        "node under memory pressure evicting pods; drain it",
        "node condition MemoryPressure, its pods Evicted, memory high in `top nodes`",
        fixed_by=(A.DRAIN_NODE,),
        worse_by=(),
        revealed_by=(A.GET_NODES, A.TOP_NODES, A.DESCRIBE_UNHEALTHY),
        findings=(
            Emits("Node", "MemoryPressure", _ONE, signature=True),
            Emits("Pod", "Evicted", "one per evicted pod", signature=True),
        ),
        evidence="node condition MemoryPressure=True; {size} pod(s) Evicted",
        next_steps=(
            "kubectl describe node <node> | grep -i pressure",
            "kubectl top pods -A --sort-by=memory",
            "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data",
        ),
        relieved_by=(A.RESTART_FAILED_PODS,),
    ),
    FaultSpec(
        Fault.RUNAWAY_DEPLOYMENT,
        "runaway deployment scaled to its autoscaler's ceiling eats capacity; scale it down",
        "one deployment far past its need (a bad HPA target): its HPA at maxReplicas, pods Pending, CPU high",
        fixed_by=(A.SCALE_DOWN_DEPLOYMENT,),
        worse_by=(A.SCALE_UP_DEPLOYMENT,),
        revealed_by=(A.TOP_PODS, A.GET_DEPLOYMENTS),
        findings=(
            Emits("HorizontalPodAutoscaler", "ScalingLimited", _ONE, signature=True),
            Emits("Pod", "Unschedulable", "one per pending pod"),
            Emits("Deployment", "ReplicasUnavailable", _ONE),
        ),
        evidence="one deployment {size} replica(s) over its need; {state.pods_pending} pod(s) Pending, "
        "CPU {state.cpu_usage_percent:.0f}%",
        next_steps=(
            "kubectl get hpa -A",
            "kubectl top pods -A --sort-by=cpu",
            "kubectl scale deployment/<name> -n <namespace> --replicas=<n>",
        ),
    ),
    FaultSpec(
        Fault.UNDERSCALED,
        "deployment under-scaled for its load; scale it up",
        "one deployment's pods fail readiness under load (probe timeouts, requests timing out in its logs), "
        "CPU high in `top pods`",
        fixed_by=(A.SCALE_UP_DEPLOYMENT,),
        worse_by=(A.SCALE_DOWN_DEPLOYMENT,),
        revealed_by=(A.TOP_PODS, A.GET_DEPLOYMENTS, A.CHECK_LOGS),
        findings=(
            Emits("Pod", "ReadinessProbeFailed", "one per deployment"),
            Emits("Deployment", "ReplicasUnavailable", _PER_DEPLOYMENT),
            Emits("Service", "NotReadyEndpoints", _PER_DEPLOYMENT),
            Emits("Log", "Overloaded", "one per deployment", signature=True),
        ),
        evidence="{size} deployment(s) failing readiness under load; CPU {state.cpu_usage_percent:.0f}%",
        next_steps=(
            "kubectl top pods -n <namespace> --sort-by=cpu",
            "kubectl scale deployment/<name> -n <namespace> --replicas=<n>",
        ),
    ),
    FaultSpec(
        Fault.QUOTA_EXHAUSTED,
        "ResourceQuota exhausted; a human must raise it or trim requests",
        "a namespace's quota used up: its deployment cannot create pods (FailedCreate: exceeded quota) and "
        "is unavailable",
        fixed_by=(),
        worse_by=(A.SCALE_UP_DEPLOYMENT,),
        revealed_by=(A.GET_RESOURCE_QUOTAS, A.GET_DEPLOYMENTS),
        findings=(
            Emits("ResourceQuota", "QuotaExceeded", _ONE, signature=True),
            Emits("ReplicaSet", "FailedCreate", _ONE, signature=True),
            Emits("Deployment", "ReplicaFailure", _ONE, signature=True),
            Emits("Deployment", "ReplicasUnavailable", _ONE),
        ),
        evidence="FailedCreate: exceeded quota; {size} replica(s) not created",
        next_steps=(
            "kubectl describe resourcequota -n <namespace>",
            "kubectl get events -n <namespace> --field-selector=reason=FailedCreate",
        ),
    ),
    FaultSpec(
        Fault.UNBOUND_PVC,
        "PersistentVolumeClaim unbound; a human must provision storage",
        "pods Pending on an unbound claim (no matching PersistentVolume or a broken StorageClass)",
        fixed_by=(),
        worse_by=(),
        revealed_by=(A.DESCRIBE_UNHEALTHY, A.GET_EVENTS),
        findings=(
            Emits("PersistentVolumeClaim", "Pending", _ONE, signature=True),
            Emits("Pod", "UnboundVolume", "one per pod waiting for the claim", signature=True),
            Emits("Deployment", "ReplicasUnavailable", _ONE),
        ),
        evidence="{size} pod(s) Pending: pod has unbound immediate PersistentVolumeClaims",
        next_steps=(
            "kubectl get pvc -A | grep -v Bound",
            "kubectl describe pvc <claim> -n <namespace>",
            "kubectl get storageclass",
        ),
    ),
    FaultSpec(
        Fault.DNS_FAILURE,
        "cluster DNS down; a human must repair CoreDNS",
        "CoreDNS pods crash-looping; pods of several deployments Running but not ready (lookups fail)",
        fixed_by=(),
        worse_by=(),
        revealed_by=(A.CHECK_LOGS, A.GET_EVENTS, A.GET_PODS, A.DESCRIBE_UNHEALTHY),
        findings=(
            Emits("ClusterDNS", "DNSDown", _ONE, signature=True),
            Emits("Pod", "CrashLoopBackOff", _COREDNS),
            Emits("Pod", "ReadinessProbeFailed", "one per deployment that needs DNS"),
            Emits("Deployment", "ReplicasUnavailable", _PER_DEPLOYMENT),
            Emits("Service", "NoReadyEndpoints", "one: kube-dns"),
            Emits("Service", "NotReadyEndpoints", "one per deployment that needs DNS"),
            Emits("Event", "DNSResolutionFailed", "one per deployment that needs DNS", signature=True),
            Emits("Log", "DNSResolutionFailed", "one per deployment that needs DNS", signature=True),
        ),
        evidence="CoreDNS down; {size} deployment(s) unavailable; logs: lookup ... no such host",
        next_steps=(
            "kubectl -n kube-system get pods -l k8s-app=kube-dns",
            "kubectl -n kube-system logs -l k8s-app=kube-dns --tail=50",
            "kubectl run dnscheck -it --rm --restart=Never --image=busybox:1.36 -- nslookup kubernetes.default",
        ),
    ),
    FaultSpec(
        Fault.OVERPROVISIONED,
        "deployment scaled up with no need; scale it down",
        "one deployment holds replicas it does not need (left by a blind scale-up); pods may go Pending",
        fixed_by=(A.SCALE_DOWN_DEPLOYMENT,),
        worse_by=(A.SCALE_UP_DEPLOYMENT,),
        revealed_by=(A.GET_DEPLOYMENTS, A.TOP_PODS),
        findings=(),  # nothing an analyzer flags: only `get deployments` and `top pods` show it
        evidence="one deployment scaled up by {size} replica(s) it does not need",
        next_steps=(
            "kubectl get deployments -A",
            "kubectl scale deployment/<name> -n <namespace> --replicas=<n>",
        ),
        injected=False,
    ),
    FaultSpec(
        Fault.IMAGE_PULL_FAILURE,
        "a rollout's image cannot be pulled (wrong tag, missing pull secret); a human fixes the image",
        "the new ReplicaSet's pods waiting in ImagePullBackOff while the old one serves; later "
        "ProgressDeadlineExceeded",
        fixed_by=(),
        worse_by=(A.SCALE_UP_DEPLOYMENT,),
        revealed_by=(A.GET_PODS, A.DESCRIBE_UNHEALTHY),
        findings=(
            Emits("Pod", "ImagePullBackOff", "one per waiting pod", signature=True),
            Emits("Deployment", "ReplicasUnavailable", _ONE),
            Emits("Service", "NotReadyEndpoints", _ONE),
            Emits("Deployment", "ProgressDeadlineExceeded", _DEADLINE),
        ),
        evidence="{size} pod(s) in ImagePullBackOff: manifest unknown or pull access denied",
        next_steps=(
            "kubectl describe pod <pod> -n <namespace> | grep -A5 Events",
            "kubectl get deployment/<name> -n <namespace> -o jsonpath='{..image}'",
            "kubectl rollout undo deployment/<name> -n <namespace>",
        ),
    ),
    FaultSpec(
        Fault.CONFIG_ERROR,
        "pods cannot start: a ConfigMap or Secret (or a key in it) is missing; a human provides it",
        "the new ReplicaSet's pods waiting in CreateContainerConfigError; later ProgressDeadlineExceeded",
        fixed_by=(),
        worse_by=(A.SCALE_UP_DEPLOYMENT,),
        revealed_by=(A.GET_PODS, A.DESCRIBE_UNHEALTHY),
        findings=(
            Emits("Pod", "CreateContainerConfigError", "one per waiting pod", signature=True),
            Emits("Deployment", "ReplicasUnavailable", _ONE),
            Emits("Service", "NotReadyEndpoints", _ONE),
            Emits("Deployment", "ProgressDeadlineExceeded", _DEADLINE),
        ),
        evidence='{size} pod(s) in CreateContainerConfigError: secret "..." not found',
        next_steps=(
            "kubectl describe pod <pod> -n <namespace> | grep -A5 Events",
            "kubectl get configmaps,secrets -n <namespace>",
        ),
    ),
    FaultSpec(
        Fault.DEPENDENCY_DOWN,
        "a deployment fails readiness because a dependency it calls is down; a human restores it",
        "one deployment's pods Running but not ready; its logs: connection refused to its database",
        fixed_by=(),
        worse_by=(),
        revealed_by=(A.CHECK_LOGS,),
        findings=(
            Emits("Pod", "ReadinessProbeFailed", "one per pod of the deployment"),
            Emits("Deployment", "ReplicasUnavailable", _ONE),
            Emits("Service", "NoReadyEndpoints", _ONE),
            Emits("Log", "ConnectionRefused", "one per pod of the deployment", signature=True),
        ),
        evidence="{size} pod(s) not ready; logs: dial tcp ...:5432: connect: connection refused",
        next_steps=(
            "kubectl logs deployment/<name> -n <namespace> --tail=50",
            "kubectl get endpoints -n <namespace>",
            "kubectl describe pod <pod> -n <namespace> | grep -A3 Readiness",
        ),
    ),
    FaultSpec(
        Fault.SERVICE_NO_ENDPOINTS,
        "a Service selects no pods (its selector matches no labels); a human fixes the selector",
        "a Service with no endpoints at all while its pods run; its clients' requests fail",
        fixed_by=(),
        worse_by=(),
        revealed_by=(A.GET_DEPLOYMENTS,),
        findings=(Emits("Service", "NoMatchingPods", _ONE, signature=True),),
        evidence="a Service whose selector matches none of the {size} pod(s) it was meant for",
        next_steps=(
            "kubectl get service <name> -n <namespace> -o jsonpath='{.spec.selector}'",
            "kubectl get pods -n <namespace> --show-labels",
        ),
    ),
    FaultSpec(
        Fault.INSUFFICIENT_CAPACITY,
        "the cluster is full: new pods cannot be scheduled anywhere; a human adds nodes",
        "pods of several deployments Pending (FailedScheduling: Insufficient cpu) and no runaway; nodes full",
        fixed_by=(),
        worse_by=(A.SCALE_UP_DEPLOYMENT, A.DRAIN_NODE),
        revealed_by=(A.GET_DEPLOYMENTS, A.TOP_NODES),
        findings=(
            Emits("Pod", "Unschedulable", "one per pending pod", signature=True),
            Emits("Deployment", "ReplicasUnavailable", _PER_DEPLOYMENT),
        ),
        evidence="{size} pod(s) Pending: 0/{state.num_nodes} nodes are available: Insufficient cpu",
        next_steps=(
            "kubectl get events -A --field-selector reason=FailedScheduling",
            "kubectl describe nodes | grep -A5 Allocated",
            "kubectl get nodes",
        ),
    ),
    FaultSpec(
        Fault.JOB_FAILED,
        "a Job failed past its backoff limit; its owner fixes and reruns it",
        "a Job's pods in Error (exit 1), the Job condition Failed (BackoffLimitExceeded)",
        fixed_by=(),
        worse_by=(),
        revealed_by=(A.GET_DEPLOYMENTS,),
        findings=(
            Emits("Job", "JobFailed", _ONE, signature=True),
            Emits("Pod", "ContainerExited", "one per failed attempt", signature=True),
        ),
        evidence="a Job failed: BackoffLimitExceeded after {size} failed pod(s)",
        next_steps=(
            "kubectl describe job <name> -n <namespace>",
            "kubectl logs job/<name> -n <namespace>",
        ),
    ),
)


@dataclass(frozen=True)
class Benign:
    """A finding real clusters show that is nobody's fault: it names nothing, and a cluster with only
    these is healthy. The simulator gives a share `chance` of clusters `fewest` to `most` of them."""

    kind: str
    reason: str
    chance: float
    fewest: int
    most: int
    why: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.reason)


BENIGN: tuple[Benign, ...] = (
    Benign("PodDisruptionBudget", "DisruptionsNotAllowed", 0.35, 1, 3, "single-replica apps with minAvailable 1"),
    Benign("NetworkPolicy", "SelectsAllPods", 0.25, 1, 2, "default-deny policies"),
    Benign("CronJob", "Suspended", 0.15, 1, 2, "schedules paused on purpose"),
    Benign(
        "Event", "WarningEvent", 0.5, 1, 6, "recent warnings about healthy objects (a probe failed once, a slow pull)"
    ),
    Benign("Log", "ConnectionRefused", 0.15, 1, 2, "a container that started before its database and retried"),
    Benign("Node", "PlannedMaintenance", 0.08, 1, 1, "a node cordoned for planned maintenance (of 5 nodes or more)"),
    Benign("Job", "PodFailures", 0.08, 1, 1, "a Job retrying a pod that exited; it will succeed"),
)
# What a read answers when it cannot be answered: metrics-server is not installed.
METRICS_UNAVAILABLE = ("Metrics", "Unavailable")


def _benign_only() -> frozenset[tuple[str, str]]:
    emitted = {e.key for spec in CATALOGUE for e in spec.findings}
    return frozenset(b.key for b in BENIGN if b.key not in emitted)


BENIGN_ONLY = _benign_only()


def is_problem(finding: Finding) -> bool:
    """Whether a finding keeps a cluster from being healthy: not an intent or a configuration a
    human set (severity info), and not one of the benign findings healthy clusters show that no fault
    produces (`BENIGN`: a PodDisruptionBudget at its limit, a suspended CronJob, ...), as in the
    simulator, where a cluster with only those is healthy."""
    return (
        finding.severity != INFO and vector_key(finding) not in BENIGN_ONLY and vector_key(finding) not in INTENT_KEYS
    )


def open_problems(findings: list[Finding]) -> list[Finding]:
    """The findings that keep a cluster from being healthy (`is_problem`), less the failed attempts
    of a Job that is still retrying (it reports PodFailures, not BackoffLimitExceeded): a Job that
    will succeed, as the simulator's background retrying Job is."""
    jobs: dict[tuple[str, str], set[str]] = {}
    for f in findings:
        if f.kind == "Job":
            jobs.setdefault((f.namespace, f"Job/{f.name}"), set()).add(f.reason)
    retrying = {job for job, reasons in jobs.items() if reasons == {"PodFailures"}}
    return [f for f in findings if is_problem(f) and not (f.kind == "Pod" and (f.namespace, f.parent) in retrying)]


SPECS: dict[Fault, FaultSpec] = {spec.fault: spec for spec in CATALOGUE}
NUM_FAULTS = len(Fault)
FAULT_NAMES = tuple(f.name.lower() for f in Fault)

HUMAN_ONLY = frozenset(spec.fault for spec in CATALOGUE if spec.human_only)
INDUCED_ONLY = frozenset(spec.fault for spec in CATALOGUE if not spec.injected)
INJECTABLE = tuple(f for f in Fault if f not in INDUCED_ONLY)

DESCRIPTIONS = {spec.fault: spec.description for spec in CATALOGUE}
EVIDENCE = {spec.fault: spec.evidence for spec in CATALOGUE}
NEXT_STEPS = {spec.fault: list(spec.next_steps) for spec in CATALOGUE}


def signature_keys(fault: Fault) -> tuple[tuple[str, str], ...]:
    """The (kind, reason) keys that point at `fault` on its own."""
    return tuple(e.key for e in SPECS[fault].findings if e.signature)


# A finding key that is the signature of a fault points at that fault alone.
SIGNATURES: dict[tuple[str, str], Fault] = {}
for _spec in CATALOGUE:
    for _emits in _spec.findings:
        if _emits.signature:
            if _emits.key in SIGNATURES:
                raise ValueError(f"{_emits.key} is the signature of two faults")
            SIGNATURES[_emits.key] = _spec.fault
        if _emits.key not in KEY_INDEX:
            raise ValueError(f"{_spec.name}: {_emits.key} is not in the findings vocabulary")
for _benign in BENIGN:
    if _benign.key not in KEY_INDEX:
        raise ValueError(f"benign finding {_benign.key}: not in the findings vocabulary")


def catalogue_markdown() -> str:
    """The catalogue as the Markdown tables the docs show (`scripts/fault_table.py` prints them; a test
    checks the docs hold exactly these)."""
    from rl.actions import ACTION_NAMES

    def actions(items) -> str:
        return ", ".join(ACTION_NAMES[a] for a in items) or "-"

    lines = [
        "| fault | what is wrong | who fixes it | identified by | made worse by | findings (signature in bold) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for spec in CATALOGUE:
        fixer = "a human" if spec.human_only else actions(spec.fixed_by)
        if not spec.injected:
            fixer += " (only ever caused by the agent)"
        findings = ", ".join(
            f"**{e.kind} {e.reason}**" if e.signature else f"{e.kind} {e.reason}" for e in spec.findings
        )
        lines.append(
            f"| {spec.name} | {spec.description} | {fixer} | {actions(spec.revealed_by)} | "
            f"{actions(spec.worse_by)} | {findings or '-'} |"
        )
    lines += [
        "",
        "| benign finding | share of clusters | why it is nobody's fault |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {b.kind} {b.reason} | {b.chance:.0%} | {b.why} |" for b in BENIGN]
    return "\n".join(lines) + "\n"
