"""jobs/k8s: the base and every overlay render with `kubectl kustomize` and validate strictly."""

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "jobs" / "k8s"
KUBERNETES_VERSION = "1.32.0"
TARGETS = {"base": K8S, "gpu": K8S / "overlays" / "gpu", "write-actions": K8S / "overlays" / "write-actions"}
# Training over several pods (torchrun in an Indexed Job); checked by the tests at the end.
DISTRIBUTED = {"distributed": K8S / "overlays" / "distributed", "distributed-gpu": K8S / "overlays" / "distributed-gpu"}

# kubectl comes from Debian's kubernetes-client package; .ci/run installs it when missing.
assert shutil.which("kubectl"), "kubectl is needed to render jobs/k8s (apt-get install kubernetes-client)"


def render(name: str) -> list[dict]:
    result = subprocess.run(
        ["kubectl", "kustomize", str({**TARGETS, **DISTRIBUTED}[name])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", TARGETS)
def test_renders_and_validates_strictly(name):
    docs = render(name)
    assert docs
    for doc in docs:
        # raises ValidationError on any schema violation or unknown field
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_catches_a_misspelt_field():
    cronjob = by_kind(render("base"), "CronJob")["train-nightly"]
    pod_spec(cronjob)["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSION, strict=True)


def test_base_contents():
    docs = render("base")
    assert {d["kind"] for d in docs} == {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CronJob",
    }
    assert all(
        d["metadata"].get("namespace") == "cluster-rl"
        for d in docs
        if d["kind"] in ("ServiceAccount", "ConfigMap", "CronJob")
    )
    role = by_kind(docs, "ClusterRole")["cluster-rl-read-only"]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    for needed in [
        ("", "nodes"),
        ("", "pods"),
        ("", "pods/log"),
        ("", "events"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("", "persistentvolumeclaims"),
        ("", "resourcequotas"),
        ("metrics.k8s.io", "nodes"),
        ("metrics.k8s.io", "pods"),
    ]:
        assert needed in granted
    binding = by_kind(docs, "ClusterRoleBinding")["cluster-rl-read-only"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "cluster-rl", "namespace": "cluster-rl"}]
    specs = by_kind(docs, "ConfigMap")["cluster-rl-jobs"]["data"]
    train = yaml.safe_load(specs["train-nightly.yaml"])
    assert (train["kind"], train["spec"]["mode"], train["spec"]["output"]) == (
        "TrainJob",
        "simulation",
        "s3://my-models/cluster-agent/",
    )
    diagnose = yaml.safe_load(specs["diagnose-cluster.yaml"])
    assert diagnose["kind"] == "DiagnoseJob" and diagnose["spec"]["cluster"]["allowWrites"] is False


@pytest.mark.parametrize("name", TARGETS)
def test_pods_are_locked_down(name):
    cronjobs = by_kind(render(name), "CronJob")
    assert set(cronjobs) == {"train-nightly", "diagnose-cluster"}
    for job_name, cronjob in cronjobs.items():
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
        assert cronjob["spec"]["startingDeadlineSeconds"] > 0
        assert cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
        spec = pod_spec(cronjob)
        assert spec["serviceAccountName"] == "cluster-rl"
        assert spec["terminationGracePeriodSeconds"] >= 30  # trainer needs up to 10 s to checkpoint
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = spec["containers"]
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert set(container["resources"]) == {"requests", "limits"}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]] and "emptyDir" in volumes[mounts["/data"]]
        assert volumes[mounts["/etc/cluster-rl"]]["configMap"]["name"] == "cluster-rl-jobs"
        env = {e["name"]: e.get("value") for e in container["env"]}
        job_file = f"/etc/cluster-rl/{job_name}.yaml"
        assert env == {"CLUSTER_RL_JOB": job_file, "CLUSTER_CODE_HOME": "/data"}
        assert container["args"] == ["run", job_file]
        assert container["envFrom"] == [{"secretRef": {"name": "cluster-rl-s3"}}]


def test_gpu_overlay_changes_only_training():
    cronjobs = by_kind(render("gpu"), "CronJob")
    train = pod_spec(cronjobs["train-nightly"])
    assert train["containers"][0]["image"] == "ghcr.io/cluster-code/cluster-code-rl:cuda"
    assert train["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert train["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    diagnose = pod_spec(cronjobs["diagnose-cluster"])
    assert diagnose["containers"][0]["image"] == "ghcr.io/cluster-code/cluster-code-rl:cpu"
    base_train = pod_spec(by_kind(render("base"), "CronJob")["train-nightly"])
    assert "nvidia.com/gpu" not in base_train["containers"][0]["resources"]["limits"]


def test_write_permissions_exist_only_in_the_write_overlay():
    def write_verbs(docs):
        return {
            (resource, verb)
            for role in by_kind(docs, "ClusterRole").values()
            for rule in role["rules"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
            if verb not in ("get", "list", "watch")
        }

    for name in ("base", "gpu"):
        assert write_verbs(render(name)) == set()
    docs = render("write-actions")
    assert write_verbs(docs) == {
        ("pods", "delete"),
        ("pods/eviction", "create"),
        ("deployments/scale", "patch"),
        ("deployments/scale", "update"),
        ("nodes", "patch"),
    }
    binding = by_kind(docs, "ClusterRoleBinding")["cluster-rl-write-actions"]
    assert binding["roleRef"]["name"] == "cluster-rl-write-actions"
    assert binding["subjects"][0]["name"] == "cluster-rl"


def test_configmap_job_specs_are_valid_and_match_the_cronjobs():
    """The specs the CronJobs run are checked by the same loader `cluster-rl run` uses."""
    from entrypoint.jobspec import parse_job

    docs = render("base")
    specs = by_kind(docs, "ConfigMap")["cluster-rl-jobs"]["data"]
    kinds = {name: parse_job(text.encode(), name).kind for name, text in specs.items()}
    assert sorted(kinds.values()) == ["DiagnoseJob", "TrainJob"]
    for cronjob in by_kind(docs, "CronJob").values():
        container = pod_spec(cronjob)["containers"][0]
        path = container["args"][-1]
        assert path.startswith("/etc/cluster-rl/") and path.rsplit("/", 1)[1] in specs


@pytest.mark.parametrize("name", DISTRIBUTED)
def test_distributed_overlays_render_and_validate_strictly(name):
    docs = render(name)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert {d["kind"] for d in docs} == {d["kind"] for d in render("base")} | {"Service"}


@pytest.mark.parametrize("name", DISTRIBUTED)
def test_distributed_training_is_an_indexed_job_of_torchrun_nodes(name):
    docs = render(name)
    job = by_kind(docs, "CronJob")["train-nightly"]["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed" and job["backoffLimit"] == 0
    nodes = job["completions"]
    assert job["parallelism"] == nodes >= 2
    spec = job["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"] == ["torchrun"]
    assert container["args"] == ["--no-python", "cluster-rl", "run", "/etc/cluster-rl/train-nightly.yaml"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PET_NNODES"]["value"] == str(nodes)
    rank_from = env["PET_NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert rank_from == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert env["JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/job-name']"
    names = [e["name"] for e in container["env"]]
    assert names.index("JOB_NAME") < names.index("PET_MASTER_ADDR")  # $(JOB_NAME) expands only if defined first
    service = by_kind(docs, "Service")[spec["subdomain"]]
    assert env["PET_MASTER_ADDR"]["value"] == f"$(JOB_NAME)-0.{spec['subdomain']}"
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["metadata"]["namespace"] == "cluster-rl"
    labels = job["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    port = int(env["PET_MASTER_PORT"]["value"])
    assert [p["port"] for p in service["spec"]["ports"]] == [port]
    assert spec["terminationGracePeriodSeconds"] > 30  # torchrun gives its workers 30 s after SIGTERM
    # still the locked-down pod of the base
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    # the job spec the pods run stays the one `cluster-rl run` accepts
    assert "train-nightly.yaml" in by_kind(docs, "ConfigMap")["cluster-rl-jobs"]["data"]
    gpus = container["resources"]["limits"].get("nvidia.com/gpu")
    if name == "distributed-gpu":
        assert container["image"].endswith(":cuda") and gpus == env["PET_NPROC_PER_NODE"]["value"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    else:
        assert container["image"].endswith(":cpu") and gpus is None
    diagnose = pod_spec(by_kind(docs, "CronJob")["diagnose-cluster"])
    assert "command" not in diagnose["containers"][0]  # diagnosis is untouched


def test_kubeflow_examples_run_torchrun_over_the_cli():
    examples = K8S / "overlays" / "distributed" / "kubeflow"
    trainjob = yaml.safe_load((examples / "trainjob.yaml").read_text())
    assert trainjob["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and trainjob["kind"] == "TrainJob"
    trainer = trainjob["spec"]["trainer"]
    assert trainer["command"][:3] == ["torchrun", "--no-python", "cluster-rl"]
    assert trainer["numNodes"] >= 2 and trainjob["spec"]["runtimeRef"]["name"] == "torch-distributed"
    pytorchjob = yaml.safe_load((examples / "pytorchjob.yaml").read_text())
    assert pytorchjob["kind"] == "PyTorchJob" and pytorchjob["spec"]["runPolicy"]["backoffLimit"] == 0
    for role in ("Master", "Worker"):
        (container,) = pytorchjob["spec"]["pytorchReplicaSpecs"][role]["template"]["spec"]["containers"]
        assert container["command"][:3] == ["torchrun", "--no-python", "cluster-rl"]
