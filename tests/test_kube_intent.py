"""Intent on a real cluster: with writes allowed, no remedy (not even a dry run) reaches the API server
when its target carries intent (a maintenance cordon, an autoscaler's or Karpenter's removal taint,
an HPA, Argo CD, Flux, a PodDisruptionBudget a drain would break) or when nothing is wrong; the
result and the report say why. Through the real `kubernetes` client and the test API server."""

import copy
import json

import pytest
from conftest import run_cli
from kube_server import FakeKubeServer, load_into, write_kubeconfig

from rl.actions import REMEDIATION_ACTIONS, ClusterAction
from rl.actions import ClusterAction as A
from rl.kube import KubeBackend

NODES = ("", "v1", "nodes")
DEPLOYMENTS = ("apps", "v1", "deployments")
HPAS = ("autoscaling", "v2", "horizontalpodautoscalers")
WRITES = ("POST", "PATCH", "PUT", "DELETE")


@pytest.fixture
def cluster(tmp_path):
    server = FakeKubeServer().start()
    load_into(server, "healthy")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    yield server, kubeconfig
    server.stop()


def _writer(kubeconfig) -> KubeBackend:
    return KubeBackend(
        kubeconfig=str(kubeconfig), allow_writes=True, write_namespaces=["shop"], backoff_seconds=0.01, wait_seconds=0
    )


def _writes(server) -> list[dict]:
    return [r for r in server.requests if r["method"] in WRITES]


def _edit(server, key, namespace, name, change) -> None:
    obj = copy.deepcopy(server.store.get(key, namespace, name))
    change(obj)
    server.store.put(obj)


def _annotate(**annotations):
    def change(obj):
        meta = obj["metadata"]
        meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}

    return change


def _label(**labels):
    def change(obj):
        meta = obj["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), **labels}  # a new dict: selectors share the old one

    return change


def _taint(key):
    def change(obj):
        obj["spec"]["taints"] = [*obj["spec"].get("taints", ()), {"key": key, "effect": "NoSchedule"}]

    return change


def _not_ready(obj):
    for condition in obj["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition.update(
                status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status."
            )


def _withheld(server, kubeconfig, action, *reasons):
    """Act once with writes allowed: the remedy is refused, nothing was sent, and the intent is a finding."""
    kube = _writer(kubeconfig)
    result = kube.act(action)
    assert _writes(server) == [], _writes(server)
    assert result["success"] is False and result["data"]["result"] == "refused"
    assert result["message"].startswith(f"{action.name} withheld: ") and "nothing was sent" in result["message"]
    intent = {(f.kind, f.object_name, f.reason) for f in kube.observe().findings if f.severity == "info"}
    for reason in reasons:
        assert reason in result["message"]
        assert any(r == reason for _, _, r in intent), (reason, intent)
    assert action in kube.unavailable_actions()  # not proposed again on this observation
    return result, kube


def test_a_cordon_for_planned_maintenance_is_not_undone(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/cordoned.yaml")
    _edit(server, NODES, "", "node-a", _annotate(**{"ops.example.com/change-ticket": "CHG-1234"}))
    result, _ = _withheld(server, kubeconfig, A.UNCORDON_NODE, "PlannedMaintenance")
    assert result["data"]["target"] == "node-a"
    assert "annotation ops.example.com/change-ticket=CHG-1234" in result["message"]
    assert server.store.get(NODES, "", "node-a")["spec"]["unschedulable"] is True


def test_a_node_rebooting_in_its_maintenance_window_is_not_drained(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/cordoned.yaml")
    _edit(server, NODES, "", "node-a", _annotate(**{"maintenance.example.com/window": "02:00-04:00 kernel upgrade"}))
    _edit(server, NODES, "", "node-a", _not_ready)
    result, _ = _withheld(server, kubeconfig, A.DRAIN_NODE, "PlannedMaintenance")
    assert result["data"]["target"] == "node-a"


@pytest.mark.parametrize(
    ("taint", "who"),
    [
        ("ToBeDeletedByClusterAutoscaler", "the cluster autoscaler is removing it"),
        ("karpenter.sh/disrupted", "Karpenter is disrupting it"),
        ("karpenter.sh/disruption", "Karpenter is disrupting it"),
    ],
)
def test_a_node_the_autoscaler_or_karpenter_is_removing_is_left_to_it(cluster, taint, who):
    server, kubeconfig = cluster
    load_into(server, "failures/node_notready.yaml")  # node-c NotReady: its instance is being terminated
    _edit(server, NODES, "", "node-c", _taint(taint))
    result, _ = _withheld(server, kubeconfig, A.DRAIN_NODE, "PlannedMaintenance")
    assert result["data"]["target"] == "node-c" and f"taint {taint}: {who}" in result["message"]
    # cordoned by the controller too: not uncordoned either
    _edit(server, NODES, "", "node-c", lambda n: n["spec"].update(unschedulable=True))
    _edit(
        server,
        NODES,
        "",
        "node-c",
        lambda n: [c.update(status="True") for c in n["status"]["conditions"] if c["type"] == "Ready"],
    )
    _withheld(server, kubeconfig, A.UNCORDON_NODE, "PlannedMaintenance")


def test_a_real_fault_on_another_node_is_still_remedied(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/cordoned.yaml", "failures/node_notready.yaml")
    _edit(server, NODES, "", "node-a", _annotate(**{"ops.example.com/change-ticket": "CHG-1234"}))
    _edit(server, NODES, "", "node-a", _not_ready)  # node-a is in maintenance; node-c is the fault
    result = _writer(kubeconfig).act(A.DRAIN_NODE)
    assert result["data"]["target"] == "node-c" and result["data"]["result"] == "applied"
    assert server.store.get(NODES, "", "node-a")["spec"]["unschedulable"] is True


def test_replicas_an_hpa_owns_are_not_scaled(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/crashloop.yaml")  # cart: 2 of 3 available; HPA cart owns it (min 3, max 6)
    result, _ = _withheld(server, kubeconfig, A.SCALE_UP_DEPLOYMENT, "ReplicasOwnedByHPA")
    assert result["data"]["target"] == "shop/cart"
    assert "HorizontalPodAutoscaler cart (min 3, max 6" in result["message"]
    assert server.store.get(DEPLOYMENTS, "shop", "cart")["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    ("change", "owner"),
    [
        (_label(**{"argocd.argoproj.io/instance": "shop-prod"}), "Argo CD application shop-prod"),
        (
            _annotate(**{"argocd.argoproj.io/tracking-id": "apps_shop-prod:apps/Deployment:shop/cart"}),
            "Argo CD application apps/shop-prod",
        ),
        (
            lambda d: (
                _label(**{"app.kubernetes.io/instance": "shop-prod"})(d),
                _annotate(**{"argocd.argoproj.io/sync-wave": "1"})(d),
            ),
            "Argo CD application shop-prod",
        ),
    ],
)
def test_a_deployment_argo_cd_manages_is_changed_in_git_not_on_the_cluster(cluster, change, owner):
    server, kubeconfig = cluster
    load_into(server, "failures/crashloop.yaml")
    server.store.delete(HPAS, "shop", "cart")
    _edit(server, DEPLOYMENTS, "shop", "cart", change)
    result, _ = _withheld(server, kubeconfig, A.SCALE_UP_DEPLOYMENT, "ManagedByArgoCD")
    assert owner in result["message"] and "Git source" in result["message"]


def test_helms_instance_label_alone_is_not_argo_cd(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/crashloop.yaml")
    server.store.delete(HPAS, "shop", "cart")
    _edit(server, DEPLOYMENTS, "shop", "cart", _label(**{"app.kubernetes.io/instance": "shop"}))
    assert _writer(kubeconfig).act(A.SCALE_UP_DEPLOYMENT)["data"]["result"] == "applied"


@pytest.mark.parametrize(
    ("group", "owner"),
    [
        ("kustomize.toolkit.fluxcd.io", "Kustomization flux-system/apps"),
        ("helm.toolkit.fluxcd.io", "HelmRelease flux-system/apps"),
    ],
)
def test_a_deployment_flux_manages_is_changed_in_git_not_on_the_cluster(cluster, group, owner):
    server, kubeconfig = cluster
    load_into(server, "failures/crashloop.yaml")
    server.store.delete(HPAS, "shop", "cart")
    _edit(server, DEPLOYMENTS, "shop", "cart", _label(**{f"{group}/name": "apps", f"{group}/namespace": "flux-system"}))
    result, _ = _withheld(server, kubeconfig, A.SCALE_UP_DEPLOYMENT, "ManagedByFlux")
    assert f"managed by Flux {owner}" in result["message"]


def test_a_drain_a_pod_disruption_budget_would_break_sends_nothing(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/node_pressure.yaml")  # node-b: a payments pod, whose PDB allows 0
    result, _ = _withheld(server, kubeconfig, A.DRAIN_NODE, "BlocksDrain")
    assert result["data"]["target"] == "node-b"
    assert "PodDisruptionBudget shop/payments blocks a drain of node node-b" in result["message"]
    assert "payments-5d4b9c7f8-r5t6y" in result["message"]
    assert not server.store.get(NODES, "", "node-b")["spec"].get("unschedulable")


def test_a_healthy_cluster_gets_no_write_whatever_is_proposed(cluster):
    server, kubeconfig = cluster
    kube = _writer(kubeconfig)
    results = {action: kube.act(action) for action in REMEDIATION_ACTIONS}
    assert _writes(server) == []
    assert all(r["data"]["result"] == "refused" for r in results.values())
    assert results[A.SCALE_DOWN_DEPLOYMENT]["message"] == (
        "SCALE_DOWN_DEPLOYMENT withheld: the cluster shows nothing wrong that a remedy addresses; "
        "no write, not even a dry run, was sent"
    )
    read_only = KubeBackend(kubeconfig=str(kubeconfig), backoff_seconds=0.01)
    assert read_only.act(A.SCALE_DOWN_DEPLOYMENT)["data"]["result"] == "dry_run"  # as the simulator says it
    assert _writes(server) == []  # but no dry run was sent


# Through the CLI: a model that proposes every remedy before anything else, with writes allowed.
@pytest.fixture(scope="module")
def remedy_model(tmp_path_factory):
    import torch

    from rl.model import build_policy, save_model

    policy = build_policy(8, 1, lstm=False)
    with torch.no_grad():
        policy.actor.weight.zero_()
        policy.actor.bias.fill_(-10.0)
        for rank, action in enumerate(REMEDIATION_ACTIONS):
            policy.actor.bias[action] = 50.0 - rank
        policy.actor.bias[ClusterAction.WAIT] = -50.0
    return save_model(tmp_path_factory.mktemp("model") / "remedies.pt", policy, {"global_step": 1})


def _diagnose(kubeconfig, model, output):
    return run_cli(
        "diagnose",
        "--no-simulation",
        "--model",
        str(model),
        "--steps",
        "12",
        "--allow-writes",
        "--write-namespace",
        "shop",
        "-o",
        output,
        env={"KUBECONFIG": str(kubeconfig)},
    )


def _maintenance_and_hpa(server):
    load_into(server, "failures/cordoned.yaml", "failures/crashloop.yaml")
    _edit(server, NODES, "", "node-a", _annotate(**{"ops.example.com/change-ticket": "CHG-1234"}))


def test_diagnose_with_writes_allowed_sends_nothing_and_the_report_says_why(cluster, remedy_model):
    server, kubeconfig = cluster
    _maintenance_and_hpa(server)
    result = _diagnose(kubeconfig, remedy_model, "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    tried = {s["action"] for s in report["steps"]}
    assert {"UNCORDON_NODE", "SCALE_UP_DEPLOYMENT", "SCALE_DOWN_DEPLOYMENT"} <= tried
    # the crash-looping pod is a fault a remedy fixes: RESTART_FAILED_PODS is the one write sent
    writes = [(r["method"], r["path"]) for r in _writes(server)]
    assert writes == [("DELETE", "/api/v1/namespaces/shop/pods/cart-7f9c8d6b5-x2x4q")], writes
    findings = {(f["kind"], f["name"], f["reason"]): f for f in report["findings"]}
    assert findings[("Node", "node-a", "PlannedMaintenance")]["status"] == "intent: honoured, left to a human"
    assert findings[("Deployment", "cart", "ReplicasOwnedByHPA")]["severity"] == "info"
    withheld = {e["action"]: e for e in report["could_not_act"] if e["why"] == "withheld"}
    assert "PlannedMaintenance" in withheld["UNCORDON_NODE"]["detail"]
    assert "HorizontalPodAutoscaler cart" in withheld["SCALE_UP_DEPLOYMENT"]["detail"]
    roots = {(r["finding"]["kind"], r["finding"]["reason"]) for r in report["root_causes"]}
    assert ("Deployment", "ReplicasOwnedByHPA") in roots  # stands on its own, not under the failing pod

    server.requests.clear()
    text = _diagnose(kubeconfig, remedy_model, "text")
    assert text.returncode == 0, text.stderr
    assert "UNCORDON_NODE withheld: node node-a PlannedMaintenance" in text.stdout
    assert "SCALE_UP_DEPLOYMENT withheld: deployment shop/cart ReplicasOwnedByHPA" in text.stdout
    assert "Deployment shop/cart ReplicasOwnedByHPA" in text.stdout  # a root cause of its own
    assert "Could not act:" in text.stdout


def test_diagnose_of_a_healthy_cluster_with_writes_allowed_sends_nothing(cluster, remedy_model):
    server, kubeconfig = cluster
    result = _diagnose(kubeconfig, remedy_model, "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {s["action"] for s in report["steps"]} >= {"SCALE_DOWN_DEPLOYMENT"}
    assert _writes(server) == []
    assert any("the cluster shows nothing wrong" in s["result"] for s in report["steps"])


def test_a_scale_is_withheld_when_the_hpas_cannot_be_read(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/crashloop.yaml")
    server.forbid("list", "horizontalpodautoscalers.autoscaling")
    kube = _writer(kubeconfig)
    result = kube.act(A.SCALE_UP_DEPLOYMENT)
    assert _writes(server) == []
    assert result["data"]["result"] == "refused"
    assert "HorizontalPodAutoscalers could not be read" in result["message"]


def test_a_job_spec_with_allow_writes_sends_nothing_on_intent(cluster, remedy_model, tmp_path):
    server, kubeconfig = cluster
    _maintenance_and_hpa(server)
    report = tmp_path / "report.json"
    spec = tmp_path / "diagnose.yaml"
    spec.write_text(
        "apiVersion: cluster-code.rl/v1\nkind: DiagnoseJob\nmetadata: {name: intent}\n"
        f"spec:\n  mode: cluster\n  model: {remedy_model}\n  steps: 12\n  report: {report}\n"
        f"  cluster: {{kubeconfig: {kubeconfig}, allowWrites: true, writeNamespaces: [shop]}}\n"
    )
    result = run_cli("run", str(spec))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["writes_allowed"] is True
    writes = [(r["method"], r["path"]) for r in _writes(server)]
    assert writes == [("DELETE", "/api/v1/namespaces/shop/pods/cart-7f9c8d6b5-x2x4q")], writes
    withheld = {e["action"] for e in data["could_not_act"] if e["why"] == "withheld"}
    assert {"UNCORDON_NODE", "SCALE_UP_DEPLOYMENT"} <= withheld
