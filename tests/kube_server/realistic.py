"""Realistic clusters generated from a seed, each with the root faults it was built with.

`build_cluster(ClusterSpec(...))` writes the objects a real cluster of that shape would show the API
server: kube-system (CoreDNS, kube-proxy and a CNI DaemonSet, more node agents, metrics-server when
installed), application namespaces with Deployments and their ReplicaSets, StatefulSets with their
claims, Services with EndpointSlices, Ingresses with their class and TLS Secrets, HPAs,
PodDisruptionBudgets, CronJobs with completed Jobs, normal events in the last minutes and old Warning
events, node and pod metrics; then it breaks the cluster with each fault of `spec.faults` (one
function per injectable fault type of `rl.faults`, `FAULTS`) the way a real incident shows in the API:
pods, controller statuses, events, logs. Controller statuses (Deployments, ReplicaSets,
StatefulSets, DaemonSets, PDBs, EndpointSlices) are derived from the pods at the end, as the
controllers would write them.

The faults are the cluster's labels (`Cluster.labels`), written as it is built; nothing here reads
the analyzers. `spec.noise` adds what healthy clusters show and is nobody's fault: single-replica
apps whose PodDisruptionBudget allows no disruption, old container restarts (some of whose previous
logs show a refused connection at start-up), default-deny NetworkPolicies, suspended CronJobs, a
node cordoned for planned maintenance, a Job retrying a failed pod, recent one-off warnings.

`benchmark_specs(count, seed)` draws the labelled set the real-cluster benchmark runs on; `serve`
loads a cluster into a `FakeKubeServer`.
"""

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .store import Store

HASH_CHARS = "bcdfghjklmnpqrstvwxz2456789"
NAMESPACES = (
    "shop",
    "payments",
    "search",
    "identity",
    "analytics",
    "notifications",
    "media",
    "inventory",
    "billing",
    "recommendations",
    "checkout",
    "platform",
    "data",
    "support",
    "partners",
    "mobile",
)
APPS = (
    "api",
    "web",
    "worker",
    "cart",
    "catalog",
    "orders",
    "auth",
    "gateway",
    "frontend",
    "scheduler",
    "indexer",
    "thumbnailer",
    "mailer",
    "reports",
    "ledger",
    "pricing",
    "profile",
    "session",
    "feed",
    "ranker",
    "exporter",
    "webhooks",
    "search-api",
    "render",
    "sync",
    "quotes",
    "tracker",
    "uploads",
)
INSTANCE_TYPES = (("m5.xlarge", 4, 16), ("m5.2xlarge", 8, 32), ("m5.4xlarge", 16, 64))
MI = 1024 * 1024
GI = 1024 * MI
LATE_MINUTES = 25  # how long a "late" incident has lasted: past rollout deadlines and eviction timeouts


@dataclass(frozen=True)
class ClusterSpec:
    seed: int
    nodes: int
    pods_per_node: int
    faults: tuple[str, ...] = ()
    metrics: bool = True  # metrics-server installed
    noise: bool = True  # the benign findings healthy clusters show
    late: bool = True  # incidents that evolve have evolved: rollouts past their deadline, pods evicted
    # Each fault in the one form its catalogue row describes (the sim/real agreement test); otherwise
    # faults vary as real incidents do (a claim of a StatefulSet or of a Deployment, every replica of
    # a small deployment down, a pod between two image pull attempts).
    catalogue_form: bool = False


@dataclass
class Cluster:
    spec: ClusterSpec
    objects: list[dict]
    logs: dict[tuple[str, str, str, bool], str]
    noise: list[str] = field(default_factory=list)  # the benign things it shows

    @property
    def labels(self) -> tuple[str, ...]:
        """The root faults it was built with."""
        return self.spec.faults

    @property
    def pods(self) -> int:
        return sum(1 for o in self.objects if o["kind"] == "Pod")


def serve(server, cluster: Cluster) -> None:
    """Make a FakeKubeServer serve `cluster` (and only it)."""
    store = Store()
    for obj in cluster.objects:
        store.put(obj, copy_object=False)
    store.logs.update(cluster.logs)
    server.store = store
    server.metrics_available = cluster.spec.metrics


# ---------------------------------------------------------------------------------------------
# The labelled set.

FAULT_TYPES = (
    "crashed_pods",
    "bad_rollout",
    "oom_killed",
    "node_not_ready",
    "node_cordoned",
    "node_pressure",
    "runaway_deployment",
    "underscaled",
    "quota_exhausted",
    "unbound_pvc",
    "dns_failure",
    "image_pull_failure",
    "config_error",
    "dependency_down",
    "service_no_endpoints",
    "insufficient_capacity",
    "job_failed",
)
# Faults that cannot be told apart when together (a runaway fills the cluster).
EXCLUSIVE = ({"runaway_deployment", "insufficient_capacity"},)


def benchmark_specs(count: int = 60, seed: int = 22) -> list[ClusterSpec]:
    """`count` clusters: about a fifth healthy (noise only), each fault type alone at least twice,
    the rest two faults at once, so that every fault type is in at least 3 clusters when `count` is
    at least 60 (at 51, each fault type exactly three times). Sizes: 3-200 nodes (log-uniform),
    10-110 pods per node; metrics-server on about 70%; incidents late on about 70%."""
    rng = random.Random(seed)
    healthy = max(1, math.ceil(0.2 * count))
    faulty = count - healthy
    singles_each = 2 if faulty >= 2 * len(FAULT_TYPES) + 5 else 1
    singles = [(f,) for f in FAULT_TYPES for _ in range(singles_each)][:faulty]
    doubles_needed = faulty - len(singles)
    # Pairs: every fault type in turn, each with a partner drawn among the compatible ones.
    pairs: list[tuple[str, str]] = []
    order = list(FAULT_TYPES)
    while len(pairs) < doubles_needed:
        rng.shuffle(order)
        for first in order:
            if len(pairs) == doubles_needed:
                break
            partners = [f for f in FAULT_TYPES if f != first and {first, f} not in EXCLUSIVE]
            pairs.append((first, rng.choice(partners)))
    kinds = [()] * healthy + singles + pairs
    rng.shuffle(kinds)
    specs = []
    for index, faults in enumerate(kinds):
        nodes = min(200, max(3, int(math.exp(rng.uniform(math.log(3), math.log(201))))))
        if any(f in ("node_not_ready", "node_pressure", "node_cordoned") for f in faults):
            nodes = max(nodes, 4)  # a node fault leaves room elsewhere
        density = rng.randint(10, 110)
        metrics = rng.random() < 0.7 or "runaway_deployment" in faults  # an HPA needs metrics to run away
        specs.append(
            ClusterSpec(
                seed=seed * 1000 + index,
                nodes=nodes,
                pods_per_node=density,
                faults=tuple(faults),
                metrics=metrics,
                noise=True,
                late=rng.random() < 0.7,
            )
        )
    return specs


def build_cluster(spec: ClusterSpec, now: datetime | None = None) -> Cluster:
    builder = _Builder(spec, now or datetime.now(UTC))
    builder.build_base()
    for fault in spec.faults:
        FAULTS[fault](builder)
    if spec.noise:
        builder.add_noise()
    return builder.finish()


# ---------------------------------------------------------------------------------------------
# The cluster as it is built.


@dataclass
class Workload:
    kind: str  # Deployment or StatefulSet
    namespace: str
    name: str
    replicas: int
    image: str
    cpu_m: int
    memory_mi: int
    pods: list = field(default_factory=list)
    hash: str = ""  # the current ReplicaSet's template hash
    old_hash: str = ""  # the previous ReplicaSet's (still serving during a stuck rollout)
    system: bool = False
    labels: dict = field(default_factory=dict)
    service: dict | None = None
    hpa: dict | None = None
    pdb: dict | None = None
    progressing: str = "complete"  # complete, rolling, deadline
    replica_failure: str = ""  # the FailedCreate message, when the controller cannot create pods
    claims: list = field(default_factory=list)
    busy: bool = False  # a fault took it
    new_replicas_image: str = ""
    probe_path: str = "/ready"


class _Builder:
    def __init__(self, spec: ClusterSpec, now: datetime):
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.now = now
        self.objects: list[dict] = []
        self.logs: dict[tuple[str, str, str, bool], str] = {}
        self.nodes: list[dict] = []
        self.node_alloc: dict[str, tuple[float, float]] = {}  # cores, bytes
        self.dead_nodes: set[str] = set()
        self.workloads: list[Workload] = []
        self.daemonsets: list[tuple[dict, list]] = []
        self.jobs: list[tuple[dict, list]] = []
        self.events: list[dict] = []
        self.usage: dict[tuple[str, str], tuple[float, float]] = {}  # pod -> cores, bytes
        self.hot_nodes: dict[str, float] = {}  # node -> memory share it uses
        self.noise: list[str] = []
        self.namespaces: list[str] = []
        self._slots: dict[str, int] = {}
        self._node_cycle = 0

    # -- helpers ----------------------------------------------------------------------------

    def ago(self, minutes: float = 0.0, **more) -> str:
        return (self.now - timedelta(minutes=minutes, **more)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def token(self, length: int) -> str:
        return "".join(self.rng.choice(HASH_CHARS) for _ in range(length))

    def place(self, avoid: set[str] | None = None) -> str:
        """A node with a free pod slot (round robin), else any live node."""
        names = [n["metadata"]["name"] for n in self.nodes]
        for _ in range(len(names)):
            name = names[self._node_cycle % len(names)]
            self._node_cycle += 1
            if self._slots.get(name, 0) > 0 and name not in self.dead_nodes and name not in (avoid or ()):
                self._slots[name] -= 1
                return name
        live = [n for n in names if n not in self.dead_nodes and n not in (avoid or ())]
        return self.rng.choice(live)

    def event(self, kind, namespace, name, reason, message, warning=True, minutes=2.0, count=1, first=None):
        self.events.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{name}.{self.rng.getrandbits(64):016x}",
                    "namespace": namespace or "default",
                    "creationTimestamp": self.ago(first if first is not None else minutes),
                },
                "involvedObject": {"kind": kind, "namespace": namespace, "name": name},
                "reason": reason,
                "message": message,
                "type": "Warning" if warning else "Normal",
                "count": count,
                "firstTimestamp": self.ago(first if first is not None else minutes),
                "lastTimestamp": self.ago(minutes),
                "source": {"component": "kubelet" if kind == "Pod" else "controller-manager"},
            }
        )

    # -- the healthy cluster ------------------------------------------------------------------

    def build_base(self) -> None:
        spec, rng = self.spec, self.rng
        instance = rng.choice(INSTANCE_TYPES[: 1 + min(2, spec.nodes // 10)])
        for i in range(spec.nodes):
            self.nodes.append(self._node(f"ip-10-0-{i // 250}-{10 + i % 250}.ec2.internal", instance))
        daemons = [
            ("kube-system", "kube-proxy", "k8s-app"),
            ("kube-system", rng.choice(("calico-node", "cilium", "aws-node")), "k8s-app"),
        ]
        extras = [
            ("monitoring", "node-exporter", "app"),
            ("logging", "fluent-bit", "app"),
            ("kube-system", "ebs-csi-node", "app"),
        ]
        daemons += rng.sample(extras, k=min(len(extras), rng.randint(0, 3), max(0, spec.pods_per_node - 8)))
        for node in self.nodes:
            self._slots[node["metadata"]["name"]] = spec.pods_per_node - len(daemons)
        for namespace, name, key in daemons:
            self._daemonset(namespace, name, key)
        self._system()
        count = rng.randint(3, 6) + spec.nodes // 15
        self.namespaces = rng.sample(NAMESPACES, k=min(len(NAMESPACES), count))
        budget = sum(self._slots.values())
        index = 0
        while budget > 0:
            namespace = self.namespaces[index % len(self.namespaces)]
            app = f"{APPS[index % len(APPS)]}" + (f"-{index // len(APPS)}" if index >= len(APPS) else "")
            index += 1
            if rng.random() < 0.1:
                replicas = min(budget, rng.choice((1, 2, 3, 3)))
                self._statefulset(namespace, app, replicas)
            else:
                replicas = min(budget, rng.choices((1, 2, 3, 4, 5, 6, 8, 12, 20), (20, 25, 20, 12, 8, 5, 4, 4, 2))[0])
                self._deployment(namespace, app, replicas)
            budget -= replicas
        for namespace in self.namespaces[: rng.randint(1, min(3, len(self.namespaces)))]:
            self._cronjob(namespace, rng.choice(("backup", "cleanup", "report", "sync")))
        self._quotas()

    def _node(self, name: str, instance) -> dict:
        kind, cores, memory_gi = instance
        alloc_cpu, alloc_mem = cores - 0.09, memory_gi * GI * 0.93
        self.node_alloc[name] = (alloc_cpu, alloc_mem)
        stamp = self.ago(days=self.rng.randint(2, 40))
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "creationTimestamp": stamp,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "node.kubernetes.io/instance-type": kind,
                    "topology.kubernetes.io/zone": self.rng.choice(("eu-west-1a", "eu-west-1b", "eu-west-1c")),
                },
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {"providerID": f"aws:///eu-west-1a/i-0{self.rng.getrandbits(60):015x}"},
            "status": {
                "capacity": {"cpu": str(cores), "memory": f"{memory_gi * 1024 * 1024}Ki", "pods": "110"},
                "allocatable": {
                    "cpu": f"{int(alloc_cpu * 1000)}m",
                    "memory": f"{int(alloc_mem / 1024)}Ki",
                    "pods": "110",
                },
                "conditions": [
                    self._condition(t, "False", r, m, stamp)
                    for t, r, m in (
                        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    )
                ]
                + [self._condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", stamp)],
                "nodeInfo": {"kubeletVersion": "v1.31.4-eks", "containerRuntimeVersion": "containerd://1.7.25"},
            },
        }

    def _condition(self, kind, status, reason, message, since):
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": self.ago(0.5),
            "lastTransitionTime": since,
        }

    def _resources(self, share: float) -> tuple[int, int]:
        """CPU (millicores) and memory (MiB) requests of one pod: the nodes' allocatable spread over
        their pods, `share` of it requested."""
        cores, memory = next(iter(self.node_alloc.values()))
        per_pod = max(1, self.spec.pods_per_node)
        cpu = max(10, int(1000 * cores * share / per_pod * self.rng.uniform(0.5, 1.6)))
        mem = max(32, int(memory / MI * share / per_pod * self.rng.uniform(0.5, 1.6)))
        return cpu, mem

    def pod(
        self,
        namespace: str,
        name: str,
        labels: dict,
        owner: tuple[str, str],
        node: str | None,
        image: str,
        cpu_m: int,
        memory_mi: int,
        container: str = "app",
        probe: bool = True,
        age_minutes: float | None = None,
        claims: tuple[str, ...] = (),
    ) -> dict:
        """A Running, ready pod (faults change it afterwards)."""
        started = self.ago(age_minutes if age_minutes is not None else self.rng.randint(60, 60 * 24 * 20))
        spec_container = {
            "name": container,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "resources": {
                "requests": {"cpu": f"{cpu_m}m", "memory": f"{memory_mi}Mi"},
                "limits": {"memory": f"{memory_mi * 2}Mi"},
            },
        }
        if probe:
            spec_container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 10}
        volumes = [{"name": f"vol-{c}", "persistentVolumeClaim": {"claimName": c}} for c in claims]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": started,
                "labels": dict(labels),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1" if owner[0] == "Job" else "apps/v1",
                        "kind": owner[0],
                        "name": owner[1],
                        "uid": f"uid-{owner[1]}",
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never" if owner[0] == "Job" else "Always",
                "schedulerName": "default-scheduler",
                "serviceAccountName": "default",
                "containers": [spec_container],
                "volumes": volumes,
            },
            "status": {
                "phase": "Running",
                "qosClass": "Burstable",
                "hostIP": "10.0.0.1",
                "podIP": f"10.{self.rng.randint(1, 250)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}",
                "startTime": started,
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": started}
                    for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
                ],
                "containerStatuses": [
                    {
                        "name": container,
                        "image": image,
                        "imageID": f"{image.split(':')[0]}@sha256:{self.rng.getrandbits(256):064x}",
                        "containerID": f"containerd://{self.rng.getrandbits(256):064x}",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": started}},
                    }
                ],
            },
        }
        self.usage[(namespace, name)] = (
            cpu_m / 1000 * self.rng.uniform(0.15, 0.9),
            memory_mi * MI * self.rng.uniform(0.4, 1.2),
        )
        return pod

    def _daemonset(self, namespace: str, name: str, key: str) -> None:
        ds_hash = self.token(10)
        labels = {key: name, "controller-revision-hash": ds_hash}
        cpu, mem = 100, 128
        image = f"registry.k8s.io/{name}:v1.31.2"
        ds = {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": self.ago(days=60), "generation": 1},
            "spec": {
                "selector": {"matchLabels": {key: name}},
                "template": {
                    "metadata": {"labels": {key: name}},
                    "spec": {"containers": [{"name": name, "image": image}]},
                },
                "updateStrategy": {"type": "RollingUpdate"},
            },
        }
        pods = [
            self.pod(
                namespace,
                f"{name}-{self.token(5)}",
                labels,
                ("DaemonSet", name),
                node["metadata"]["name"],
                image,
                cpu,
                mem,
                container=name,
                probe=False,
            )
            for node in self.nodes
        ]
        self.daemonsets.append((ds, pods))

    def _system(self) -> None:
        coredns = self._deployment("kube-system", "coredns", 2, system=True, label=("k8s-app", "kube-dns"))
        coredns.image = "registry.k8s.io/coredns/coredns:v1.11.3"
        coredns.service["metadata"]["name"] = "kube-dns"
        coredns.service["spec"]["ports"] = [{"name": "dns", "port": 53, "protocol": "UDP"}]
        if self.spec.metrics:
            self._deployment("kube-system", "metrics-server", 1, system=True, label=("k8s-app", "metrics-server"))

    def _deployment(self, namespace, name, replicas, system=False, label=None) -> Workload:
        rng = self.rng
        key, value = label or ("app", name)
        cpu, mem = self._resources(rng.uniform(0.35, 0.75))
        version = f"{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        w = Workload(
            "Deployment",
            namespace,
            name,
            replicas,
            f"registry.example.com/{namespace}/{name}:{version}",
            cpu,
            mem,
            hash=self.token(10),
            system=system,
            labels={key: value},
        )
        for _ in range(replicas):
            w.pods.append(self._workload_pod(w, w.hash))
        if system or rng.random() < 0.85:
            w.service = self._service(namespace, name, w.labels)
            if not system and rng.random() < 0.2:
                self._ingress(namespace, name)
        if not system and self.spec.metrics and replicas >= 2 and rng.random() < 0.25:
            w.hpa = self._hpa(namespace, name, replicas)
        if not system and self.spec.noise and replicas >= 2 and rng.random() < 0.3:
            w.pdb = self._pdb(namespace, name, w.labels)
        self.workloads.append(w)
        return w

    def _workload_pod(self, w: Workload, rs_hash: str, node: str | None = None, age_minutes=None) -> dict:
        if w.kind == "StatefulSet":
            name = f"{w.name}-{len(w.pods)}"
            labels = {**w.labels, "apps.kubernetes.io/pod-index": str(len(w.pods))}
            owner = ("StatefulSet", w.name)
            claims = (f"data-{name}",)
        else:
            name = f"{w.name}-{rs_hash}-{self.token(5)}"
            labels = {**w.labels, "pod-template-hash": rs_hash}
            owner = ("ReplicaSet", f"{w.name}-{rs_hash}")
            claims = tuple(w.claims)
        image = w.new_replicas_image if rs_hash == w.hash and w.new_replicas_image else w.image
        if rs_hash == w.old_hash:
            image = w.image
        return self.pod(
            w.namespace,
            name,
            labels,
            owner,
            node if node is not None else self.place(),
            image,
            w.cpu_m,
            w.memory_mi,
            probe=not w.system,
            age_minutes=age_minutes,
            claims=claims,
        )

    def _statefulset(self, namespace, name, replicas) -> Workload:
        cpu, mem = self._resources(self.rng.uniform(0.5, 0.9))
        w = Workload(
            "StatefulSet",
            namespace,
            name,
            replicas,
            f"registry.example.com/{namespace}/{name}:{self.rng.randint(1, 16)}.{self.rng.randint(0, 9)}",
            cpu,
            mem,
            hash=self.token(10),
            labels={"app": name},
        )
        for _ in range(replicas):
            w.pods.append(self._workload_pod(w, w.hash))
        w.service = self._service(namespace, name, w.labels, headless=True)
        self.workloads.append(w)
        return w

    def _service(self, namespace, name, selector, headless=False) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": self.ago(days=30)},
            "spec": {
                "selector": dict(selector),
                "type": "ClusterIP",
                "clusterIP": "None" if headless else f"10.96.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            },
        }

    def _ingress(self, namespace, name) -> None:
        secret = f"{name}-tls"
        self.objects.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": self.ago(days=20)},
                "spec": {
                    "ingressClassName": "nginx",
                    "tls": [{"hosts": [f"{name}.example.com"], "secretName": secret}],
                    "rules": [
                        {
                            "host": f"{name}.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": name, "port": {"number": 80}}},
                                    }
                                ]
                            },
                        }
                    ],
                },
            }
        )
        self.objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": secret, "namespace": namespace},
                "data": {"tls.crt": "LS0t", "tls.key": "LS0t"},
            }
        )

    def _hpa(self, namespace, name, replicas) -> dict:
        low = max(1, replicas - self.rng.randint(0, 2))
        at_floor = replicas == low
        return {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": self.ago(days=25)},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": low,
                "maxReplicas": replicas + self.rng.randint(3, 12),
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                    }
                ],
            },
            "status": {
                "currentReplicas": replicas,
                "desiredReplicas": replicas,
                "conditions": [
                    self._condition(
                        "AbleToScale",
                        "True",
                        "ReadyForNewScale",
                        "recommended size matches current size",
                        self.ago(days=2),
                    ),
                    self._condition(
                        "ScalingActive",
                        "True",
                        "ValidMetricFound",
                        "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
                        self.ago(days=2),
                    ),
                    self._condition(
                        "ScalingLimited",
                        "True" if at_floor else "False",
                        "TooFewReplicas" if at_floor else "DesiredWithinRange",
                        "the desired replica count is less than the minimum replica count"
                        if at_floor
                        else "the desired count is within the acceptable range",
                        self.ago(days=2),
                    ),
                ],
            },
        }

    def _pdb(self, namespace, name, selector) -> dict:
        return {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": self.ago(days=25)},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(selector)}},
        }

    def _cronjob(self, namespace, name, suspended=False) -> None:
        schedule = self.rng.choice(("0 2 * * *", "*/30 * * * *", "15 * * * *", "0 */6 * * *"))
        self.objects.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": self.ago(days=30)},
                "spec": {
                    "schedule": schedule,
                    "suspend": suspended,
                    "jobTemplate": {
                        "spec": {"backoffLimit": 3, "template": {"spec": {"containers": [{"name": name}]}}}
                    },
                },
                "status": {"lastScheduleTime": self.ago(minutes=self.rng.randint(20, 300))},
            }
        )
        if suspended:
            return
        job = f"{name}-{29000000 + self.rng.randint(0, 99999)}"
        finished = self.rng.randint(20, 300)
        self._job(namespace, job, ("CronJob", name), "complete", finished)

    def _job(self, namespace, name, owner, outcome, minutes, failed_pods=0, backoff_limit=3) -> tuple[dict, list]:
        """A Job and its pods: outcome "complete", "failed" (past its backoff limit) or "retrying"."""
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": self.ago(minutes + 5),
                "labels": {"job-name": name},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": owner[0],
                        "name": owner[1],
                        "uid": f"uid-{owner[1]}",
                        "controller": True,
                    }
                ]
                if owner
                else [],
            },
            "spec": {"backoffLimit": backoff_limit, "completions": 1, "parallelism": 1},
            "status": {"startTime": self.ago(minutes + 5)},
        }
        pods = []
        image = f"registry.example.com/{namespace}/{name.rsplit('-', 1)[0]}:1.0"
        for attempt in range(failed_pods):
            pod = self.pod(
                namespace,
                f"{name}-{self.token(5)}",
                {"job-name": name},
                ("Job", name),
                self.place(),
                image,
                100,
                128,
                probe=False,
            )
            self._exited(pod, 1, minutes + 4 - attempt)
            pods.append(pod)
        if outcome == "complete":
            pod = self.pod(
                namespace,
                f"{name}-{self.token(5)}",
                {"job-name": name},
                ("Job", name),
                self.place(),
                image,
                100,
                128,
                probe=False,
            )
            pod["status"]["phase"] = "Succeeded"
            pod["status"]["conditions"] = [
                {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": self.ago(minutes)}
            ]
            status = pod["status"]["containerStatuses"][0]
            status.update(ready=False, started=False)
            status["state"] = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": self.ago(minutes + 4),
                    "finishedAt": self.ago(minutes),
                }
            }
            self.usage.pop((namespace, pod["metadata"]["name"]), None)
            pods.append(pod)
            job["status"].update(succeeded=1, completionTime=self.ago(minutes))
            job["status"]["conditions"] = [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": self.ago(minutes)},
                {"type": "Complete", "status": "True", "lastTransitionTime": self.ago(minutes)},
            ]
        elif outcome == "failed":
            job["status"]["failed"] = failed_pods
            job["status"]["conditions"] = [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastTransitionTime": self.ago(minutes),
                }
            ]
        else:  # retrying: one attempt failed, the next one runs
            job["status"].update(failed=failed_pods, active=1)
            pods.append(
                self.pod(
                    namespace,
                    f"{name}-{self.token(5)}",
                    {"job-name": name},
                    ("Job", name),
                    self.place(),
                    image,
                    100,
                    128,
                    probe=False,
                    age_minutes=2,
                )
            )
        self.jobs.append((job, pods))
        return job, pods

    def _quotas(self) -> None:
        for namespace in self.namespaces:
            if self.rng.random() < 0.3:
                self.objects.append(self._quota(namespace, used=self.rng.randint(5, 40), hard=None))

    def _quota(self, namespace, used, hard=None, name="compute") -> dict:
        hard = hard if hard is not None else used + self.rng.randint(5, 60)
        return {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": self.ago(days=40)},
            "spec": {"hard": {"pods": str(hard), "requests.cpu": "200"}},
            "status": {
                "hard": {"pods": str(hard), "requests.cpu": "200"},
                "used": {"pods": str(used), "requests.cpu": "37"},
            },
        }

    # -- what incidents do to pods ------------------------------------------------------------

    def app_workloads(self, kind="Deployment", min_replicas=1, hpa=None) -> list[Workload]:
        return [
            w
            for w in self.workloads
            if not w.system
            and not w.busy
            and w.kind == kind
            and w.replicas >= min_replicas
            and (hpa is None or (w.hpa is not None) == hpa)
        ]

    def take(self, candidates: list[Workload], fallback_replicas: int = 3) -> Workload:
        """One workload for a fault (a new one when none fits)."""
        if candidates:
            w = self.rng.choice(candidates)
        else:
            namespace = self.rng.choice(self.namespaces)
            w = self._deployment(namespace, f"{self.rng.choice(APPS)}-{self.token(3)}", fallback_replicas)
        w.busy = True
        return w

    def crash(self, pod, exit_code, reason, restarts, minutes, message=None):
        status = pod["status"]
        container = status["containerStatuses"][0]
        name = container["name"]
        container.update(ready=False, started=False, restartCount=restarts)
        container["state"] = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": message or f"back-off 5m0s restarting failed container={name} pod={pod['metadata']['name']}",
            }
        }
        container["lastState"] = {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": self.ago(minutes + 0.5),
                "finishedAt": self.ago(minutes),
                "containerID": f"containerd://{self.rng.getrandbits(256):064x}",
            }
        }
        self._unready(pod, "ContainersNotReady", minutes + 5)
        self.event(
            "Pod",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            "BackOff",
            f"Back-off restarting failed container {name} in pod {pod['metadata']['name']}",
            minutes=1,
            count=restarts * 3 + 1,
            first=minutes + 30,
        )

    def _unready(self, pod, reason, minutes):
        for condition in pod["status"]["conditions"]:
            if condition["type"] in ("Ready", "ContainersReady"):
                condition.update(status="False", reason=reason, lastTransitionTime=self.ago(minutes))
                condition["message"] = f"containers with unready status: [{pod['spec']['containers'][0]['name']}]"

    def waiting(self, pod, reason, message, minutes):
        status = pod["status"]
        status["phase"] = "Pending"
        container = status["containerStatuses"][0]
        container.update(ready=False, started=False)
        container.pop("containerID", None)
        container["state"] = {"waiting": {"reason": reason, "message": message}}
        self._unready(pod, "ContainersNotReady", minutes)
        self.usage.pop((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)

    def not_ready(self, pod, probe_message, minutes):
        pod["status"]["containerStatuses"][0]["ready"] = False
        self._unready(pod, "ContainersNotReady", minutes)
        self.event(
            "Pod",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            "Unhealthy",
            f"Readiness probe failed: {probe_message}",
            minutes=0.2,
            count=int(minutes * 6) + 1,
            first=minutes,
        )

    def unschedulable(self, pod, message, minutes):
        pod["spec"].pop("nodeName", None)
        status = pod["status"]
        for key in ("hostIP", "podIP", "startTime", "containerStatuses"):
            status.pop(key, None)
        status["phase"] = "Pending"
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": self.ago(minutes),
            }
        ]
        self.usage.pop((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)
        self.event(
            "Pod",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            "FailedScheduling",
            message,
            minutes=0.5,
            count=int(minutes) + 1,
            first=minutes,
        )

    def _exited(self, pod, exit_code, minutes):
        pod["status"]["phase"] = "Failed"
        container = pod["status"]["containerStatuses"][0]
        container.update(ready=False, started=False)
        container["state"] = {
            "terminated": {
                "exitCode": exit_code,
                "reason": "Error",
                "startedAt": self.ago(minutes + 1),
                "finishedAt": self.ago(minutes),
            }
        }
        pod["status"]["conditions"] = [
            {"type": "Ready", "status": "False", "reason": "PodFailed", "lastTransitionTime": self.ago(minutes)}
        ]
        self.usage.pop((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)

    def log(self, pod, text, previous):
        self.logs[
            (pod["metadata"]["namespace"], pod["metadata"]["name"], pod["spec"]["containers"][0]["name"], previous)
        ] = text

    def rollout(self, w: Workload, new_image: str) -> list[dict]:
        """A rolling update whose new pods do not become ready: the old ReplicaSet keeps
        replicas - maxUnavailable pods, the new one holds maxSurge + maxUnavailable."""
        surge = max(1, math.ceil(0.25 * w.replicas))
        unavailable = math.floor(0.25 * w.replicas)
        w.old_hash, w.hash = w.hash, self.token(10)
        w.new_replicas_image = new_image
        keep = w.pods[: w.replicas - unavailable]
        w.pods = keep
        minutes = LATE_MINUTES if self.spec.late else self.rng.randint(2, 8)
        new = [self._workload_pod(w, w.hash, age_minutes=minutes) for _ in range(surge + unavailable)]
        w.pods += new
        w.progressing = "deadline" if self.spec.late else "rolling"
        return new

    def finish(self) -> Cluster:
        objects = list(self.nodes)
        for w in self.workloads:
            objects += self._controllers(w)
        for ds, pods in self.daemonsets:
            ready = sum(1 for p in pods if _ready(p))
            ds["status"] = {
                "desiredNumberScheduled": len(pods),
                "currentNumberScheduled": len(pods),
                "updatedNumberScheduled": len(pods),
                "numberReady": ready,
                "numberAvailable": ready,
                "numberMisscheduled": 0,
                "observedGeneration": 1,
            }
            if ready < len(pods):
                ds["status"]["numberUnavailable"] = len(pods) - ready
            objects += [ds, *pods]
        for job, pods in self.jobs:
            objects += [job, *pods]
        objects += self.objects
        objects.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {"name": "nginx"},
                "spec": {"controller": "k8s.io/ingress-nginx"},
            }
        )
        for klass in ("gp3", "gp2"):
            objects.append(
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {"name": klass},
                    "provisioner": "ebs.csi.aws.com",
                    "volumeBindingMode": "WaitForFirstConsumer",
                }
            )
        self._normal_events()
        objects += self.events
        if self.spec.metrics:
            objects += self._metrics(objects)
        return Cluster(self.spec, objects, self.logs, self.noise)

    def _controllers(self, w: Workload) -> list[dict]:
        objects = []
        pods = [p for p in w.pods if not p["metadata"].get("deletionTimestamp")]
        live = [p for p in pods if p["status"]["phase"] not in ("Failed", "Succeeded")]
        ready = sum(1 for p in live if _ready(p))
        stamp = self.ago(days=30)
        if w.kind == "Deployment":
            replica_sets = [w.hash] + ([w.old_hash] if w.old_hash else [])
            for rs_hash in replica_sets:
                mine = [p for p in live if p["metadata"]["labels"].get("pod-template-hash") == rs_hash]
                rs = {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": f"{w.name}-{rs_hash}",
                        "namespace": w.namespace,
                        "creationTimestamp": stamp,
                        "labels": {**w.labels, "pod-template-hash": rs_hash},
                        "ownerReferences": [
                            {
                                "apiVersion": "apps/v1",
                                "kind": "Deployment",
                                "name": w.name,
                                "uid": f"uid-{w.name}",
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {
                        "replicas": len(mine)
                        + (w.replicas - len(live) if rs_hash == w.hash and w.replica_failure else 0)
                    },
                    "status": {
                        "replicas": len(mine),
                        "readyReplicas": sum(1 for p in mine if _ready(p)),
                        "availableReplicas": sum(1 for p in mine if _ready(p)),
                    },
                }
                if rs_hash == w.hash and w.replica_failure:
                    rs["status"]["conditions"] = [
                        {
                            "type": "ReplicaFailure",
                            "status": "True",
                            "reason": "FailedCreate",
                            "message": w.replica_failure,
                            "lastTransitionTime": self.ago(12),
                        }
                    ]
                objects.append(rs)
            conditions = [
                {
                    "type": "Available",
                    "status": "True" if ready >= w.replicas - math.floor(0.25 * w.replicas) else "False",
                    "reason": "MinimumReplicasAvailable"
                    if ready >= w.replicas - math.floor(0.25 * w.replicas)
                    else "MinimumReplicasUnavailable",
                    "message": "Deployment has minimum availability."
                    if ready >= w.replicas - math.floor(0.25 * w.replicas)
                    else "Deployment does not have minimum availability.",
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp
                    if ready >= w.replicas - math.floor(0.25 * w.replicas)
                    else self.ago(15),
                },
                {
                    "type": "Progressing",
                    **{
                        "complete": {
                            "status": "True",
                            "reason": "NewReplicaSetAvailable",
                            "message": f'ReplicaSet "{w.name}-{w.hash}" has successfully progressed.',
                        },
                        "rolling": {
                            "status": "True",
                            "reason": "ReplicaSetUpdated",
                            "message": f'ReplicaSet "{w.name}-{w.hash}" is progressing.',
                        },
                        "deadline": {
                            "status": "False",
                            "reason": "ProgressDeadlineExceeded",
                            "message": f'ReplicaSet "{w.name}-{w.hash}" has timed out progressing.',
                        },
                    }[w.progressing],
                    "lastUpdateTime": self.ago(10),
                    "lastTransitionTime": self.ago(10) if w.progressing == "deadline" else stamp,
                },
            ]
            if w.replica_failure:
                conditions.append(
                    {
                        "type": "ReplicaFailure",
                        "status": "True",
                        "reason": "FailedCreate",
                        "message": w.replica_failure,
                        "lastUpdateTime": self.ago(12),
                        "lastTransitionTime": self.ago(12),
                    }
                )
            objects.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {
                        "name": w.name,
                        "namespace": w.namespace,
                        "creationTimestamp": stamp,
                        "generation": 2 if w.old_hash else 1,
                        "labels": dict(w.labels),
                    },
                    "spec": {
                        "replicas": w.replicas,
                        "selector": {"matchLabels": dict(w.labels)},
                        "strategy": {
                            "type": "RollingUpdate",
                            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                        },
                        "progressDeadlineSeconds": 600,
                        "template": {
                            "metadata": {"labels": dict(w.labels)},
                            "spec": {
                                "containers": [
                                    {
                                        "name": "app",
                                        "image": w.new_replicas_image or w.image,
                                        "resources": {"requests": {"cpu": f"{w.cpu_m}m", "memory": f"{w.memory_mi}Mi"}},
                                    }
                                ],
                                "volumes": [
                                    {"name": f"vol-{c}", "persistentVolumeClaim": {"claimName": c}} for c in w.claims
                                ],
                            },
                        },
                    },
                    "status": {
                        "observedGeneration": 2 if w.old_hash else 1,
                        "replicas": len(live),
                        "updatedReplicas": sum(
                            1 for p in live if p["metadata"]["labels"].get("pod-template-hash") == w.hash
                        ),
                        "readyReplicas": ready,
                        "availableReplicas": ready,
                        **({"unavailableReplicas": w.replicas - ready} if ready < w.replicas else {}),
                        "conditions": conditions,
                    },
                }
            )
        else:
            objects.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": {"name": w.name, "namespace": w.namespace, "creationTimestamp": stamp, "generation": 1},
                    "spec": {
                        "replicas": w.replicas,
                        "serviceName": w.name,
                        "selector": {"matchLabels": dict(w.labels)},
                        "template": {
                            "metadata": {"labels": dict(w.labels)},
                            "spec": {"containers": [{"name": "app", "image": w.image}]},
                        },
                        "volumeClaimTemplates": [
                            {
                                "metadata": {"name": "data"},
                                "spec": {
                                    "storageClassName": "gp3",
                                    "accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": "20Gi"}},
                                },
                            }
                        ],
                    },
                    "status": {
                        "replicas": len(live),
                        "readyReplicas": ready,
                        "availableReplicas": ready,
                        "currentReplicas": len(live),
                        "updatedReplicas": len(live),
                        "observedGeneration": 1,
                    },
                }
            )
            for pod in w.pods:
                claim = f"data-{pod['metadata']['name']}"
                if not any(
                    o.get("kind") == "PersistentVolumeClaim"
                    and o["metadata"]["name"] == claim
                    and o["metadata"]["namespace"] == w.namespace
                    for o in self.objects
                ):
                    objects.append(self._claim(w.namespace, claim, "Bound"))
        for pod in w.pods:
            objects.append(pod)
        if w.service is not None:
            objects.append(w.service)
            objects.append(self._slice(w))
        if w.hpa is not None:
            objects.append(w.hpa)
        if w.pdb is not None:
            healthy = ready
            allowed = max(0, healthy - 1)
            w.pdb["status"] = {
                "currentHealthy": healthy,
                "desiredHealthy": 1,
                "disruptionsAllowed": allowed,
                "expectedPods": w.replicas,
                "observedGeneration": 1,
                "conditions": [
                    {
                        "type": "DisruptionAllowed",
                        "status": "True" if allowed else "False",
                        "reason": "SufficientPods" if allowed else "InsufficientPods",
                        "message": "",
                        "lastTransitionTime": self.ago(days=3),
                    }
                ],
            }
            objects.append(w.pdb)
        return objects

    def _claim(self, namespace, name, phase, klass="gp3") -> dict:
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": self.ago(days=10)},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": klass,
                "resources": {"requests": {"storage": "20Gi"}},
            },
            "status": {"phase": phase},
        }
        if phase == "Bound":
            claim["spec"]["volumeName"] = f"pvc-{self.rng.getrandbits(64):016x}"
        return claim

    def _slice(self, w: Workload) -> dict:
        selector = w.service["spec"]["selector"]
        endpoints = []
        for pod in w.pods:
            if not all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items()):
                continue
            # As the EndpointSlice controller: every pod with an IP that has not ended, ready or not.
            if pod["status"]["phase"] in ("Succeeded", "Failed") or not pod["status"].get("podIP"):
                continue
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            ready = _ready(pod) and not terminating
            endpoints.append(
                {
                    "addresses": [pod["status"].get("podIP", "10.0.0.1")],
                    "conditions": {"ready": ready, "serving": ready, "terminating": terminating},
                    "nodeName": pod["spec"]["nodeName"],
                    "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": w.namespace},
                }
            )
        name = w.service["metadata"]["name"]
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-{self.token(5)}",
                "namespace": w.namespace,
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }

    def _normal_events(self) -> None:
        pods = [p for w in self.workloads for p in w.pods if p["status"]["phase"] == "Running"]
        if not pods:
            return
        recent = int(len(pods) * self.rng.uniform(0.005, 0.04)) + self.rng.randint(3, 20)
        for _ in range(recent):
            pod = self.rng.choice(pods)
            reason, message = self.rng.choice(
                (
                    ("Pulled", f'Container image "{pod["spec"]["containers"][0]["image"]}" already present on machine'),
                    ("Created", "Created container app"),
                    ("Started", "Started container app"),
                    (
                        "Scheduled",
                        f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to {pod['spec'].get('nodeName')}",
                    ),
                )
            )
            self.event(
                "Pod",
                pod["metadata"]["namespace"],
                pod["metadata"]["name"],
                reason,
                message,
                warning=False,
                minutes=self.rng.uniform(0.2, 14),
            )
        for _ in range(self.rng.randint(1, 3 + len(pods) // 150)):  # old warnings: history, outside the window
            pod = self.rng.choice(pods)
            reason, message = self.rng.choice(
                (
                    ("BackOff", "Back-off restarting failed container app"),
                    ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
                    ("FailedScheduling", "0/3 nodes are available: 3 Insufficient memory."),
                )
            )
            self.event(
                "Pod",
                pod["metadata"]["namespace"],
                pod["metadata"]["name"],
                reason,
                message,
                minutes=self.rng.uniform(20, 55),
            )

    def _metrics(self, objects) -> list[dict]:
        stamp = self.ago(0.3)
        per_node: dict[str, list[float]] = {n["metadata"]["name"]: [0.0, 0.0] for n in self.nodes}
        metrics = []
        for obj in objects:
            if obj["kind"] != "Pod" or obj["status"].get("phase") != "Running":
                continue
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            node = obj["spec"].get("nodeName")
            if key not in self.usage or node in self.dead_nodes or node is None:
                continue
            cpu, memory = self.usage[key]
            per_node[node][0] += cpu
            per_node[node][1] += memory
            metrics.append(
                {
                    "apiVersion": "metrics.k8s.io/v1beta1",
                    "kind": "PodMetrics",
                    "metadata": {"name": key[1], "namespace": key[0], "creationTimestamp": stamp},
                    "timestamp": stamp,
                    "window": "15s",
                    "containers": [
                        {
                            "name": obj["spec"]["containers"][0]["name"],
                            "usage": {"cpu": f"{int(cpu * 1e9)}n", "memory": f"{int(memory / 1024)}Ki"},
                        }
                    ],
                }
            )
        for name, (cpu, memory) in per_node.items():
            if name in self.dead_nodes:
                continue
            alloc_cpu, alloc_mem = self.node_alloc[name]
            cpu = min(alloc_cpu, cpu + self.rng.uniform(0.1, 0.3))
            memory = min(alloc_mem, memory + self.rng.uniform(0.8, 1.6) * GI)
            if name in self.hot_nodes:
                memory = self.hot_nodes[name] * alloc_mem
            metrics.append(
                {
                    "apiVersion": "metrics.k8s.io/v1beta1",
                    "kind": "NodeMetrics",
                    "metadata": {"name": name, "creationTimestamp": stamp},
                    "timestamp": stamp,
                    "window": "20s",
                    "usage": {"cpu": f"{int(cpu * 1e9)}n", "memory": f"{int(memory / 1024)}Ki"},
                }
            )
        return metrics

    # -- what healthy clusters show ------------------------------------------------------------

    def add_noise(self) -> None:
        rng = self.rng
        apps = [w for w in self.workloads if not w.system and not w.busy]
        single = [w for w in apps if w.kind == "Deployment" and w.replicas == 1]
        if single and rng.random() < 0.45:
            for w in rng.sample(single, k=min(len(single), rng.randint(1, 3))):
                w.pdb = self._pdb(w.namespace, w.name, w.labels)
            self.noise.append("single-replica apps with a PodDisruptionBudget of minAvailable 1")
        running = [p for w in apps for p in w.pods if _ready(p)]
        if running and rng.random() < 0.6:
            for pod in rng.sample(running, k=min(len(running), rng.randint(1, 5))):
                self._old_restart(pod)
            self.noise.append("old container restarts")
        if rng.random() < 0.35:
            for namespace in rng.sample(self.namespaces, k=min(len(self.namespaces), rng.randint(1, 2))):
                self.objects.append(
                    {
                        "apiVersion": "networking.k8s.io/v1",
                        "kind": "NetworkPolicy",
                        "metadata": {"name": "default-deny-ingress", "namespace": namespace},
                        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
                    }
                )
            self.noise.append("default-deny NetworkPolicies")
        if rng.random() < 0.15:
            self._cronjob(rng.choice(self.namespaces), "nightly-export", suspended=True)
            self.noise.append("a suspended CronJob")
        live = [
            n for n in self.nodes if n["metadata"]["name"] not in self.dead_nodes and not n["spec"].get("unschedulable")
        ]
        if len(self.nodes) >= 5 and rng.random() < 0.12 and len(live) >= 4:
            node = rng.choice(live)
            node["spec"]["unschedulable"] = True
            node["spec"]["taints"] = [
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": self.ago(40)}
            ]
            node["metadata"]["annotations"]["maintenance.example.com/window"] = "kernel upgrade, CHG-4821"
            self.noise.append("a node cordoned for planned maintenance")
        if rng.random() < 0.08:
            namespace = rng.choice(self.namespaces)
            _, pods = self._job(
                namespace, f"import-{29000000 + rng.randint(0, 99999)}", None, "retrying", 6, failed_pods=1
            )
            self.log(
                pods[0], "fetching batch 12/40\nerror: upstream returned 502, giving up this attempt\n", previous=False
            )
            self.noise.append("a Job retrying a failed pod")
        if running and rng.random() < 0.45:
            for pod in rng.sample(running, k=min(len(running), rng.randint(1, 3))):
                if not _ready(pod):
                    continue
                self.event(
                    "Pod",
                    pod["metadata"]["namespace"],
                    pod["metadata"]["name"],
                    "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    minutes=rng.uniform(1, 12),
                )
            self.noise.append("recent one-off readiness warnings")

    def _old_restart(self, pod) -> None:
        container = pod["status"]["containerStatuses"][0]
        days = self.rng.randint(1, 9)
        reason, code = self.rng.choice((("Error", 1), ("Error", 1), ("OOMKilled", 137), ("Completed", 0)))
        container["restartCount"] = self.rng.randint(1, 4)
        container["lastState"] = {
            "terminated": {
                "exitCode": code,
                "reason": reason,
                "startedAt": self.ago(days=days, minutes=30),
                "finishedAt": self.ago(days=days),
            }
        }
        container["state"] = {"running": {"startedAt": self.ago(days=days)}}
        text = self.rng.choice(
            (
                'level=error msg="database not reachable" err="dial tcp 10.96.44.12:5432: connect: connection refused"\nlevel=fatal msg="exiting"\n',
                'level=info msg="received SIGTERM, shutting down"\nlevel=info msg="drained 12 connections"\n',
                "INFO  Shutting down executor\nINFO  Stopped\n",
            )
        )
        self.log(pod, text, previous=True)


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or ())


# ---------------------------------------------------------------------------------------------
# The faults, one per injectable fault type. Each breaks the cluster as the incident would.

GO_PANIC = (
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x8c3f2a]\n\n"
    "goroutine 87 [running]:\nmain.(*cache).load(0x0, {0xc0001a2000, 0x14})\n\t/src/cache.go:112 +0x2a\n"
)
CONFIG_ERRORS = (
    'level=fatal msg="invalid configuration: unknown field \\"retryPolicy\\" in /etc/app/config.yaml"\n',
    "Error: failed to load config: yaml: line 14: did not find expected key\n",
    'FATAL missing required setting "DATABASE_URL"\n',
    "panic: json: cannot unmarshal string into Go struct field Config.timeout of type time.Duration\n",
)


def crashed_pods(b: _Builder) -> None:
    """A few pods of several deployments crash-loop after a one-off panic (a corrupt local cache)."""
    candidates = b.app_workloads(min_replicas=2)
    chosen = b.rng.sample(candidates, k=min(len(candidates), b.rng.randint(2, 3))) if candidates else []
    if not chosen:
        chosen = [b.take([], 3)]
    for w in chosen:
        w.busy = True
        for pod in b.rng.sample(w.pods, k=b.rng.randint(1, min(2, w.replicas - 1) if w.replicas > 1 else 1)):
            b.crash(pod, 2, "Error", b.rng.randint(1, 4), b.rng.uniform(1, 4))
            b.log(pod, f"{b.ago(3)} INFO warming cache from /var/cache/app\n" + GO_PANIC, previous=True)


def bad_rollout(b: _Builder) -> None:
    """A rollout whose new pods crash on a bad config: the old ReplicaSet keeps serving."""
    w = b.take(b.app_workloads(min_replicas=4) or b.app_workloads(min_replicas=2), 4)
    text = b.rng.choice(CONFIG_ERRORS)
    for pod in b.rollout(w, w.image.rsplit(":", 1)[0] + ":" + f"{b.rng.randint(5, 9)}.0.0"):
        b.crash(pod, 1, "Error", b.rng.randint(3, 9), b.rng.uniform(0.5, 3))
        b.log(pod, f"{b.ago(2)} INFO starting {w.name}\n{text}", previous=True)


def oom_killed(b: _Builder) -> None:
    """Pods of one deployment killed at their memory limit, again and again."""
    w = b.take(b.app_workloads(min_replicas=2) or b.app_workloads(), 3)
    count = b.rng.randint(1, w.replicas - 1 if b.spec.catalogue_form else w.replicas)
    for pod in b.rng.sample(w.pods, k=count):
        b.crash(pod, 137, "OOMKilled", b.rng.randint(3, 20), b.rng.uniform(0.5, 4))
        b.log(pod, f"{b.ago(2)} INFO loaded 1.8M catalogue entries\n{b.ago(1)} WARN heap near limit\n", previous=True)
    for pod in w.pods:
        key = (w.namespace, pod["metadata"]["name"])
        if key in b.usage:
            b.usage[key] = (b.usage[key][0], w.memory_mi * 2 * MI * b.rng.uniform(0.9, 0.99))


def _pick_node(b: _Builder) -> dict:
    """A live, schedulable node free of pressure (in the catalogue's form, one that holds no
    StatefulSet pod, whose pods would not be replaced)."""
    nodes = [n for n in b.nodes if n["metadata"]["name"] not in b.dead_nodes and not n["spec"].get("unschedulable")]
    if b.spec.catalogue_form:
        stateful = {p["spec"].get("nodeName") for w in b.workloads if w.kind == "StatefulSet" for p in w.pods}
        nodes = [n for n in nodes if n["metadata"]["name"] not in stateful] or nodes
    nodes = [
        n
        for n in nodes
        if not any(c["type"] == "MemoryPressure" and c["status"] == "True" for c in n["status"]["conditions"])
    ]
    return b.rng.choice(nodes)


def _pods_on(b: _Builder, node: str) -> list[tuple[Workload, dict]]:
    return [
        (w, p)
        for w in b.workloads
        for p in w.pods
        if p["spec"].get("nodeName") == node and p["status"]["phase"] == "Running"
    ]


def node_not_ready(b: _Builder) -> None:
    """A node's kubelet stopped posting status; after the eviction timeout its pods are Terminating
    and replaced elsewhere."""
    node = _pick_node(b)
    name = node["metadata"]["name"]
    b.dead_nodes.add(name)
    minutes = LATE_MINUTES if b.spec.late else b.rng.uniform(1.5, 4)
    for condition in node["status"]["conditions"]:
        condition.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
        condition["lastHeartbeatTime"] = b.ago(minutes + 0.7)
        condition["lastTransitionTime"] = b.ago(minutes)
    node["spec"]["taints"] = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": b.ago(minutes)},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": b.ago(minutes)},
    ]
    for _, pods in b.daemonsets:
        for pod in pods:
            if pod["spec"]["nodeName"] == name:
                b._unready(pod, "NodeNotReady", minutes - 0.5)
    for w, pod in _pods_on(b, name):
        b._unready(pod, "NodeNotReady", minutes - 0.5)
        if b.spec.late:
            pod["metadata"]["deletionTimestamp"] = b.ago(minutes - 5)
            pod["metadata"]["deletionGracePeriodSeconds"] = 30
            pod["status"]["containerStatuses"][0]["ready"] = False
            if w.kind == "Deployment":
                w.pods.append(b._workload_pod(w, w.hash, node=b.place(avoid={name}), age_minutes=minutes - 5))
        b.event(
            "Pod",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            "NodeNotReady",
            "Node is not ready",
            minutes=minutes - 0.5,
        )
    b.event(
        "Node", "", name, "NodeNotReady", f"Node {name} status is now: NodeNotReady", warning=False, minutes=minutes
    )


def node_cordoned(b: _Builder) -> None:
    """A node cordoned (by hand, for a test) and forgotten."""
    node = _pick_node(b)
    node["spec"]["unschedulable"] = True
    node["spec"]["taints"] = [
        {
            "key": "node.kubernetes.io/unschedulable",
            "effect": "NoSchedule",
            "timeAdded": b.ago(hours=b.rng.randint(2, 72)),
        }
    ]
    b.event(
        "Node",
        "",
        node["metadata"]["name"],
        "NodeNotSchedulable",
        f"Node {node['metadata']['name']} status is now: NodeNotSchedulable",
        warning=False,
        minutes=1,
    )


def node_pressure(b: _Builder) -> None:
    """A node under memory pressure evicts pods; their replacements run elsewhere."""
    node = _pick_node(b)
    name = node["metadata"]["name"]
    for condition in node["status"]["conditions"]:
        if condition["type"] == "MemoryPressure":
            condition.update(
                status="True",
                reason="KubeletHasInsufficientMemory",
                message="kubelet has insufficient memory available",
                lastTransitionTime=b.ago(9),
            )
    node["spec"]["taints"] = [
        {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule", "timeAdded": b.ago(9)}
    ]
    b.hot_nodes[name] = b.rng.uniform(0.93, 0.98)
    victims = [(w, p) for w, p in _pods_on(b, name) if w.kind == "Deployment" and not w.system]
    for w, pod in b.rng.sample(victims, k=min(len(victims), b.rng.randint(1, 4))):
        pod["status"].update(
            phase="Failed",
            reason="Evicted",
            message="The node was low on resource: memory. Threshold quantity: 100Mi, available: 61244Ki. "
            f"Container app was using {w.memory_mi * 2}Mi, request is {w.memory_mi}Mi, has larger consumption of memory.",
        )
        pod["status"]["conditions"] = [
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "TerminationByKubelet",
                "lastTransitionTime": b.ago(6),
            }
        ]
        pod["status"]["containerStatuses"][0].update(
            ready=False,
            started=False,
            state={"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "finishedAt": b.ago(6)}},
        )
        b.usage.pop((w.namespace, pod["metadata"]["name"]), None)
        w.pods.append(b._workload_pod(w, w.hash, node=b.place(avoid={name}), age_minutes=5))
        b.event(
            "Pod", w.namespace, pod["metadata"]["name"], "Evicted", "The node was low on resource: memory.", minutes=6
        )
    b.event("Node", "", name, "EvictionThresholdMet", "Attempting to reclaim memory", minutes=1, count=4, first=9)


def runaway_deployment(b: _Builder) -> None:
    """A deployment driven to its autoscaler's ceiling by a bad target: pods Pending for room."""
    w = b.take(b.app_workloads(min_replicas=2), 3)
    if w.hpa is None:
        w.hpa = b._hpa(w.namespace, w.name, w.replicas)
    ceiling = max(w.replicas * 4, w.replicas + b.rng.randint(15, 40))
    w.hpa["spec"]["maxReplicas"] = ceiling
    w.hpa["status"].update(currentReplicas=ceiling, desiredReplicas=ceiling)
    w.hpa["status"]["conditions"][2] = b._condition(
        "ScalingLimited",
        "True",
        "TooManyReplicas",
        "the desired replica count is more than the maximum replica count",
        b.ago(14),
    )
    extra = ceiling - w.replicas
    w.replicas = ceiling
    pending = b.rng.randint(3, max(4, extra // 2))
    n = len(b.nodes)
    for i in range(extra):
        pod = b._workload_pod(w, w.hash, age_minutes=14)
        key = (w.namespace, pod["metadata"]["name"])
        if i < pending:
            b.unschedulable(
                pod,
                f"0/{n} nodes are available: {n} Insufficient cpu. preemption: 0/{n} nodes are available: {n} No preemption victims found for incoming pod.",
                14,
            )
        else:
            b.usage[key] = (w.cpu_m / 1000 * b.rng.uniform(1.2, 2.0), b.usage[key][1])
        w.pods.append(pod)
    b.event(
        "HorizontalPodAutoscaler",
        w.namespace,
        w.name,
        "SuccessfulRescale",
        f"New size: {ceiling}; reason: cpu resource utilization (percentage of request) above target",
        warning=False,
        minutes=14,
    )


def underscaled(b: _Builder) -> None:
    """A deployment too small for its load: some pods fail readiness, requests time out."""
    w = b.take(b.app_workloads(min_replicas=2, hpa=False) or b.app_workloads(min_replicas=2), 3)
    for pod in b.rng.sample(w.pods, k=b.rng.randint(1, w.replicas - 1)):
        b.not_ready(
            pod,
            'Get "http://'
            + pod["status"]["podIP"]
            + ':8080/ready": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
            b.rng.uniform(3, 20),
        )
        b.log(
            pod,
            f'{b.ago(1)} level=warn msg="request timed out after 30s" path=/api/v1/{w.name}\n{b.ago(0.5)} level=warn msg="worker pool exhausted, 412 requests queued"\n',
            previous=False,
        )
    for pod in w.pods:
        key = (w.namespace, pod["metadata"]["name"])
        if key in b.usage:
            b.usage[key] = (w.cpu_m / 1000 * b.rng.uniform(1.5, 2.5), b.usage[key][1])


def quota_exhausted(b: _Builder) -> None:
    """A namespace's ResourceQuota is used up: a deployment cannot create the pods it wants."""
    w = b.take(b.app_workloads(min_replicas=2) or b.app_workloads(), 3)
    used = sum(1 for other in b.workloads if other.namespace == w.namespace for _ in other.pods)
    b.objects = [
        o for o in b.objects if not (o["kind"] == "ResourceQuota" and o["metadata"]["namespace"] == w.namespace)
    ]
    b.objects.append(b._quota(w.namespace, used=used, hard=used))
    missing = b.rng.randint(1, 3)
    w.replicas += missing
    pod = f"{w.name}-{w.hash}-{b.token(5)}"
    w.replica_failure = f'pods "{pod}" is forbidden: exceeded quota: compute, requested: pods=1, used: pods={used}, limited: pods={used}'
    b.event(
        "ReplicaSet",
        w.namespace,
        f"{w.name}-{w.hash}",
        "FailedCreate",
        f"Error creating: {w.replica_failure}",
        minutes=0.5,
        count=40,
        first=12,
    )


def unbound_pvc(b: _Builder) -> None:
    """Pods wait for a claim that cannot be provisioned (a StorageClass that does not exist, or a
    provisioner that fails)."""
    n = len(b.nodes)
    message = f"0/{n} nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
    if b.spec.catalogue_form or b.rng.random() < 0.5:
        # (in the catalogue's form, a worker without a Service: every pod waits, and a Service of
        # them would have no ready endpoint)
        unexposed = [x for x in b.app_workloads() if x.service is None]
        w = b.take(unexposed if b.spec.catalogue_form else b.app_workloads(), 1)
        if b.spec.catalogue_form:
            w.service = None
        claim = f"{w.name}-data"
        w.claims = [claim]
        b.objects.append(b._claim(w.namespace, claim, "Pending", klass="fast-ssd"))
        b.event(
            "PersistentVolumeClaim",
            w.namespace,
            claim,
            "ProvisioningFailed",
            'storageclass.storage.k8s.io "fast-ssd" not found',
            minutes=0.3,
            count=30,
            first=15,
        )
        for pod in w.pods:
            pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
            b.unschedulable(pod, message, 15)
    else:
        candidates = [x for x in b.workloads if x.kind == "StatefulSet" and not x.busy]
        w = b.take(candidates) if candidates else b._statefulset(b.rng.choice(b.namespaces), f"db-{b.token(3)}", 2)
        w.busy = True
        w.replicas += 1
        pod = b._workload_pod(w, w.hash, age_minutes=15)
        w.pods.append(pod)
        claim = f"data-{pod['metadata']['name']}"
        b.objects.append(b._claim(w.namespace, claim, "Pending"))
        b.event(
            "PersistentVolumeClaim",
            w.namespace,
            claim,
            "ProvisioningFailed",
            'failed to provision volume with StorageClass "gp3": rpc error: code = Internal desc = Could not create volume: VolumeLimitExceeded',
            minutes=0.5,
            count=12,
            first=15,
        )
        b.unschedulable(pod, message, 15)


def dns_failure(b: _Builder) -> None:
    """CoreDNS crash-loops (a forwarding loop); pods whose readiness checks a dependency by name go
    unready: some of those of several deployments (connections made before the outage still work)."""
    coredns = next(w for w in b.workloads if w.name == "coredns")
    for pod in coredns.pods:
        b.crash(pod, 1, "Error", b.rng.randint(5, 30), b.rng.uniform(0.5, 3))
        b.log(
            pod,
            '[INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc\nCoreDNS-1.11.3\n[FATAL] plugin/loop: Loop (127.0.0.1:53 -> :53) detected for zone ".", see https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO 4547991504243258144.3688648895315093531."\n',
            previous=True,
        )
    candidates = b.app_workloads(min_replicas=2)
    for w in b.rng.sample(candidates, k=min(len(candidates), b.rng.randint(2, 5))):
        w.busy = True
        dependency = f"{b.rng.choice(('postgres', 'redis', 'kafka', 'auth'))}.{w.namespace}.svc.cluster.local"
        for pod in b.rng.sample(w.pods, k=b.rng.randint(1, w.replicas - 1)):
            b.not_ready(
                pod,
                f"dependency check failed: dial tcp: lookup {dependency} on 10.96.0.10:53: server misbehaving",
                b.rng.uniform(3, 12),
            )
            b.log(
                pod,
                f'{b.ago(1)} level=error msg="health check failed" err="dial tcp: lookup {dependency} on 10.96.0.10:53: read udp 10.244.3.7:48211->10.96.0.10:53: i/o timeout"\n',
                previous=False,
            )


def _stuck_rollout(b: _Builder, waiting) -> None:
    """A rollout whose new pods never start: `waiting(w, image)` gives each one's (reason, message of
    its state, message of its Failed event)."""
    w = b.take(b.app_workloads(min_replicas=4) or b.app_workloads(min_replicas=2), 4)
    new_image = w.image.rsplit(":", 1)[0] + ":" + f"{b.rng.randint(5, 9)}.{b.rng.randint(0, 9)}.0"
    minutes = LATE_MINUTES if b.spec.late else 5
    for pod in b.rollout(w, new_image):
        reason, state, event = waiting(w, new_image)
        b.waiting(pod, reason, state, minutes)
        b.event("Pod", w.namespace, pod["metadata"]["name"], "Failed", event, minutes=0.5, count=20, first=minutes)


def image_pull_failure(b: _Builder) -> None:
    """A rollout to an image that cannot be pulled (a tag never pushed, a registry denying access);
    kubelet backs off between attempts, so a pod is seldom caught in ErrImagePull itself."""
    why = b.rng.choice(("not found", "pull access denied, repository does not exist or may require authorization"))

    def waiting(w, image):
        pulled = f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image "{image}": {why}'
        if not b.spec.catalogue_form and b.rng.random() < 0.2:
            return "ErrImagePull", pulled, pulled
        return "ImagePullBackOff", f'Back-off pulling image "{image}"', pulled

    _stuck_rollout(b, waiting)


def config_error(b: _Builder) -> None:
    """A rollout whose pods reference a Secret or ConfigMap key that does not exist."""
    missing = b.rng.choice(("secret", "key"))

    def waiting(w, image):
        if missing == "secret":
            text = f'secret "{w.name}-credentials" not found'
        else:
            text = f"couldn't find key DATABASE_URL in ConfigMap {w.namespace}/{w.name}-config"
        return "CreateContainerConfigError", text, f"Error: {text}"

    _stuck_rollout(b, waiting)


def dependency_down(b: _Builder) -> None:
    """A deployment's database is down: every pod fails readiness, its Service has no ready endpoint."""
    w = b.take([x for x in b.app_workloads(min_replicas=1) if x.service is not None], 3)
    if w.service is None:
        w.service = b._service(w.namespace, w.name, w.labels)
    port = b.rng.choice((5432, 6379, 3306, 9092))
    address = f"10.96.{b.rng.randint(0, 255)}.{b.rng.randint(1, 254)}:{port}"
    minutes = b.rng.uniform(4, 30)
    for pod in w.pods:
        b.not_ready(pod, "HTTP probe failed with statuscode: 503", minutes)
        b.log(
            pod,
            f'{b.ago(0.5)} level=error msg="readiness: dependency unavailable" err="dial tcp {address}: connect: connection refused"\n',
            previous=False,
        )


def service_no_endpoints(b: _Builder) -> None:
    """A Service whose selector matches no pod (a label renamed in one place only)."""
    w = b.take([x for x in b.app_workloads() if x.service is not None], 2)
    if w.service is None:
        w.service = b._service(w.namespace, w.name, w.labels)
    w.service["spec"]["selector"] = {"app": f"{w.name}-svc"}


def insufficient_capacity(b: _Builder) -> None:
    """The cluster is full: new pods of several deployments wait for room no node has."""
    n = len(b.nodes)
    resource = b.rng.choice(("cpu", "memory"))
    for w in b.rng.sample(b.app_workloads(), k=min(len(b.app_workloads()), b.rng.randint(2, 4))) or [b.take([], 2)]:
        w.busy = True
        extra = b.rng.randint(1, 3)
        w.replicas += extra
        for _ in range(extra):
            pod = b._workload_pod(w, w.hash, age_minutes=10)
            b.unschedulable(
                pod,
                f"0/{n} nodes are available: {n} Insufficient {resource}. preemption: 0/{n} nodes are available: {n} No preemption victims found for incoming pod.",
                10,
            )
            w.pods.append(pod)


JOB_LOGS = (
    'ERROR migrate: migration 0042_add_orders_index failed: pq: duplicate key value violates unique constraint "orders_pkey"\n',
    "upload failed: s3://backups/db-2025.tar.gz An error occurred (AccessDenied) when calling the PutObject operation: Access Denied\n",
    "Traceback (most recent call last):\n  File \"/app/report.py\", line 88, in <module>\n    main()\nKeyError: 'region'\n",
)


def job_failed(b: _Builder) -> None:
    """A Job fails past its backoff limit; its pods are kept, each exited 1."""
    namespace = b.rng.choice(b.namespaces)
    limit = b.rng.randint(1, 5)
    name = f"{b.rng.choice(('db-migrate', 'backup', 'report', 'reindex'))}-{29000000 + b.rng.randint(0, 99999)}"
    owner = ("CronJob", name.rsplit("-", 1)[0]) if b.rng.random() < 0.5 else None
    _, pods = b._job(namespace, name, owner, "failed", b.rng.randint(5, 40), failed_pods=limit + 1, backoff_limit=limit)
    text = JOB_LOGS[0] if b.spec.catalogue_form else b.rng.choice(JOB_LOGS)
    for pod in pods:
        b.log(pod, text, previous=False)
    b.event("Job", namespace, name, "BackoffLimitExceeded", "Job has reached the specified backoff limit", minutes=3)


FAULTS = {
    "crashed_pods": crashed_pods,
    "bad_rollout": bad_rollout,
    "oom_killed": oom_killed,
    "node_not_ready": node_not_ready,
    "node_cordoned": node_cordoned,
    "node_pressure": node_pressure,
    "runaway_deployment": runaway_deployment,
    "underscaled": underscaled,
    "quota_exhausted": quota_exhausted,
    "unbound_pvc": unbound_pvc,
    "dns_failure": dns_failure,
    "image_pull_failure": image_pull_failure,
    "config_error": config_error,
    "dependency_down": dependency_down,
    "service_no_endpoints": service_no_endpoints,
    "insufficient_capacity": insufficient_capacity,
    "job_failed": job_failed,
}
assert tuple(FAULTS) == FAULT_TYPES
