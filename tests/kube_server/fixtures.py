"""Cluster states for the fake server: kubectl-shaped YAML files, a synthetic large cluster, and a
kubeconfig pointing at a running server.

Fixture timestamps are written as of ANCHOR (2025-06-01T12:00:00Z); loading shifts every timestamp
by (now - ANCHOR), so "5 minutes ago" in a fixture is 5 minutes ago when the test runs.
"""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

CLUSTERS = Path(__file__).parent / "clusters"
ANCHOR = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def load_objects(*names: str, now: datetime | None = None) -> tuple[list[dict], list[dict]]:
    """Objects and pod logs from fixture files (names relative to clusters/, e.g. "healthy"
    for every file in that folder, or "failures/crashloop.yaml"). Later files replace earlier
    objects with the same kind/namespace/name."""
    shift = (now or datetime.now(UTC)) - ANCHOR
    objects, logs = [], []
    for name in names:
        path = CLUSTERS / name
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            for document in yaml.safe_load_all(file.read_text()):
                if not document:
                    continue
                items = document.get("items", []) if document.get("kind") in ("List", "PodLogs") else [document]
                target = logs if document.get("kind") == "PodLogs" else objects
                target.extend(_shift_times(item, shift) for item in items)
    return objects, logs


def load_into(server, *names: str) -> None:
    objects, logs = load_objects(*names)
    for obj in objects:
        server.store.put(obj)
    for entry in logs:
        key = (entry["namespace"], entry["pod"], entry["container"], bool(entry.get("previous", False)))
        server.store.logs[key] = entry["text"]


def _shift_times(value, shift: timedelta):
    if isinstance(value, dict):
        return {k: _shift_times(v, shift) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift_times(v, shift) for v in value]
    if isinstance(value, str) and _TIMESTAMP.match(value):
        moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + shift
        return moved.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def write_kubeconfig(
    path: Path,
    server_url: str,
    token: str = "test-token",
    context: str = "fake",
    user: dict | None = None,
    cluster: dict | None = None,
) -> Path:
    """A real kubeconfig file (the shape `kubectl config view --raw` prints) for the fake server.
    `user` replaces the user entry's `{"token": token}` (tokenFile, exec, client certificates);
    `cluster` adds fields to the cluster entry (certificate-authority, insecure-skip-tls-verify)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake-cluster", "cluster": {"server": server_url, **(cluster or {})}}],
        "users": [{"name": "cluster-rl", "user": user if user is not None else {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "fake-cluster", "user": "cluster-rl"}}],
        "current-context": context,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost and its key, as PEM files; the
    certificate is also the CA a kubeconfig's certificate-authority names to trust it."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kube-apiserver")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def synthetic_cluster(pods: int = 5000, nodes: int = 50, now: datetime | None = None) -> list[dict]:
    """A large cluster of realistic objects: `nodes` nodes, deployments of 10 pods, about 2% of
    pods in CrashLoopBackOff and 1% Pending on an image pull, node metrics and a few events."""
    now = now or datetime.now(UTC)
    stamp = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = (now - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    objects = [_node(f"node-{i:03d}", stamp) for i in range(nodes)]
    objects += [_node_metrics(f"node-{i:03d}", recent, i) for i in range(nodes)]
    deployments = max(1, pods // 10)
    for d in range(deployments):
        namespace = f"team-{d % 20:02d}"
        name = f"svc-{d:04d}"
        objects.append(_deployment(namespace, name, 10, stamp))
    for p in range(pods):
        d = p // 10
        objects.append(_pod(f"team-{d % 20:02d}", f"svc-{d:04d}", p, f"node-{p % nodes:03d}", stamp, recent))
    for e in range(200):
        objects.append(_event("team-00", f"svc-0000-7d9f8b6c5-{e:05d}", e, recent))
    return objects


def _node(name: str, stamp: str) -> dict:
    conditions = [
        {
            "type": t,
            "status": "False",
            "reason": f"KubeletHas{r}",
            "message": f"kubelet has {m}",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for t, r, m in (
            ("MemoryPressure", "SufficientMemory", "sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "no disk pressure"),
            ("PIDPressure", "SufficientPID", "sufficient PID available"),
        )
    ] + [
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
    ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "creationTimestamp": stamp,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.2xlarge",
            },
        },
        "spec": {
            "podCIDR": "10.244.0.0/24",
            "providerID": f"aws:///eu-west-1a/i-{abs(hash(name)) % 10**12:012d}",
        },
        "status": {
            "capacity": {
                "cpu": "8",
                "memory": "32386756Ki",
                "pods": "110",
                "ephemeral-storage": "101430960Ki",
            },
            "allocatable": {
                "cpu": "7910m",
                "memory": "31235780Ki",
                "pods": "110",
                "ephemeral-storage": "93478772582",
            },
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": "10.0.1.10"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "containerRuntimeVersion": "containerd://1.7.22",
                "osImage": "Ubuntu 24.04 LTS",
                "architecture": "amd64",
                "operatingSystem": "linux",
            },
        },
    }


def _node_metrics(name: str, stamp: str, i: int) -> dict:
    return {
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "NodeMetrics",
        "metadata": {"name": name, "creationTimestamp": stamp},
        "timestamp": stamp,
        "window": "20s",
        "usage": {"cpu": f"{2000 + 37 * i}m", "memory": f"{12000000 + 10000 * i}Ki"},
    }


def _deployment(namespace: str, name: str, replicas: int, stamp: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": stamp,
            "generation": 1,
            "labels": {"app": name},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": f"registry.example.com/{name}:1.0"}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
        },
    }


def _pod(namespace: str, deployment: str, index: int, node: str, stamp: str, recent: str) -> dict:
    rs = f"{deployment}-7d9f8b6c5"
    name = f"{rs}-{index:05d}"
    image = f"registry.example.com/{deployment}:1.0"
    running = {"running": {"startedAt": stamp}}
    container_status = {
        "name": "app",
        "image": image,
        "imageID": f"{image}@sha256:{'ab' * 32}",
        "containerID": f"containerd://{index:064d}",
        "ready": True,
        "started": True,
        "restartCount": 0,
        "state": running,
    }
    phase = "Running"
    if index % 50 == 7:
        container_status.update(
            ready=False,
            started=False,
            restartCount=14,
            state={
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 5m0s restarting failed container=app pod={name}",
                }
            },
            lastState={
                "terminated": {
                    "exitCode": 137,
                    "reason": "OOMKilled",
                    "startedAt": recent,
                    "finishedAt": recent,
                }
            },
        )
    elif index % 100 == 13:
        phase = "Pending"
        container_status.update(
            ready=False,
            started=False,
            state={"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}},
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": stamp,
            "labels": {"app": deployment, "pod-template-hash": "7d9f8b6c5"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": stamp},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs,
                    "uid": f"rs-{deployment}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "containers": [
                {
                    "name": "app",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                    "volumeMounts": [
                        {
                            "name": "kube-api-access",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        }
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "kube-api-access",
                    "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]},
                }
            ],
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
        },
        "status": {
            "phase": phase,
            "qosClass": "Burstable",
            "hostIP": "10.0.1.10",
            "podIP": f"10.244.{index // 250}.{index % 250}",
            "startTime": stamp,
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": stamp}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [container_status],
        },
    }


def _event(namespace: str, pod: str, index: int, stamp: str) -> dict:
    warning = index % 4 == 0
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod}.{index:016x}", "namespace": namespace, "creationTimestamp": stamp},
        "involvedObject": {"kind": "Pod", "namespace": namespace, "name": pod, "apiVersion": "v1"},
        "reason": "BackOff" if warning else "Pulled",
        "message": "Back-off restarting failed container app" if warning else "Container image already present",
        "type": "Warning" if warning else "Normal",
        "count": 1,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "source": {"component": "kubelet", "host": "node-000"},
    }
