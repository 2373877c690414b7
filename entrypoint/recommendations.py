"""What a human should run next: kubectl commands for each kind of problem found."""

import re

from rl.sim.faults import Fault

FOR_FAULT = {
    Fault.CRASHED_PODS: [
        "kubectl get pods -A --field-selector=status.phase=Failed",
        "kubectl delete pods -A --field-selector=status.phase=Failed",
    ],
    Fault.BAD_ROLLOUT: [
        "kubectl rollout history deployment/<name> -n <namespace>",
        "kubectl logs deployment/<name> -n <namespace> --previous",
        "kubectl rollout undo deployment/<name> -n <namespace>",
    ],
    Fault.OOM_KILLED: [
        "kubectl describe pod <pod> -n <namespace> | grep -A3 'Last State'",
        "kubectl top pods -n <namespace> --sort-by=memory",
        "kubectl set resources deployment/<name> -n <namespace> --limits=memory=<more>",
    ],
    Fault.NODE_NOT_READY: [
        "kubectl describe node <node>",
        "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data",
    ],
    Fault.NODE_CORDONED: ["kubectl get nodes | grep SchedulingDisabled", "kubectl uncordon <node>"],
    Fault.NODE_PRESSURE: [
        "kubectl describe node <node> | grep -i pressure",
        "kubectl top pods -A --sort-by=memory",
        "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data",
    ],
    Fault.RUNAWAY_DEPLOYMENT: [
        "kubectl get hpa -A",
        "kubectl top pods -A --sort-by=cpu",
        "kubectl scale deployment/<name> -n <namespace> --replicas=<n>",
    ],
    Fault.UNDERSCALED: [
        "kubectl top pods -n <namespace> --sort-by=cpu",
        "kubectl scale deployment/<name> -n <namespace> --replicas=<n>",
    ],
    Fault.QUOTA_EXHAUSTED: [
        "kubectl describe resourcequota -n <namespace>",
        "kubectl get events -n <namespace> --field-selector=reason=FailedCreate",
    ],
    Fault.UNBOUND_PVC: [
        "kubectl get pvc -A | grep -v Bound",
        "kubectl describe pvc <claim> -n <namespace>",
        "kubectl get storageclass",
    ],
    Fault.DNS_FAILURE: [
        "kubectl -n kube-system get pods -l k8s-app=kube-dns",
        "kubectl -n kube-system logs -l k8s-app=kube-dns --tail=50",
        "kubectl run dnscheck -it --rm --restart=Never --image=busybox:1.36 -- nslookup kubernetes.default",
    ],
    Fault.OVERPROVISIONED: [
        "kubectl get deployments -A",
        "kubectl scale deployment/<name> -n <namespace> --replicas=<n>",
    ],
}

# Real-cluster findings ("pod shop/cart-7f9c CrashLoopBackOff (...)") matched to the same advice.
_PATTERNS = [
    (
        re.compile(r"^pod (\S+)/(\S+) .*OOMKilled"),
        lambda m: [
            f"kubectl describe pod {m[2]} -n {m[1]} | grep -A3 'Last State'",
            f"kubectl top pod {m[2]} -n {m[1]}",
        ],
    ),
    (
        re.compile(r"^pod (\S+)/(\S+) .*CrashLoopBackOff"),
        lambda m: [f"kubectl logs {m[2]} -n {m[1]} --previous", f"kubectl describe pod {m[2]} -n {m[1]}"],
    ),
    (
        re.compile(r"^pod (\S+)/(\S+) .*(ImagePullBackOff|ErrImagePull)"),
        lambda m: [f"kubectl describe pod {m[2]} -n {m[1]} | grep -A5 Events"],
    ),
    (
        re.compile(r"^pod (\S+)/(\S+) .*(Unschedulable|Pending)"),
        lambda m: [
            f"kubectl describe pod {m[2]} -n {m[1]} | grep -A5 Events",
            "kubectl describe nodes | grep -A5 Allocated",
        ],
    ),
    (
        re.compile(r"^pod (\S+)/(\S+) .*Evicted"),
        lambda m: [f"kubectl describe pod {m[2]} -n {m[1]}", f"kubectl delete pod {m[2]} -n {m[1]}"],
    ),
    (re.compile(r"^pod (\S+)/(\S+)"), lambda m: [f"kubectl describe pod {m[2]} -n {m[1]}"]),
    (
        re.compile(r"^node (\S+) NotReady"),
        lambda m: [f"kubectl describe node {m[1]}", f"kubectl drain {m[1]} --ignore-daemonsets --delete-emptydir-data"],
    ),
    (re.compile(r"^node (\S+) cordoned"), lambda m: [f"kubectl uncordon {m[1]}"]),
    (
        re.compile(r"^node (\S+) .*Pressure"),
        lambda m: [f"kubectl describe node {m[1]} | grep -i pressure", "kubectl top pods -A --sort-by=memory"],
    ),
    (
        re.compile(r"^deployment (\S+)/(\S+)"),
        lambda m: [
            f"kubectl rollout status deployment/{m[2]} -n {m[1]}",
            f"kubectl describe deployment {m[2]} -n {m[1]}",
        ],
    ),
    (re.compile(r"(?i)persistentvolumeclaim (\S+)/(\S+)"), lambda m: [f"kubectl describe pvc {m[2]} -n {m[1]}"]),
    (re.compile(r"(?i)resourcequota (\S+)/(\S+)"), lambda m: [f"kubectl describe resourcequota {m[2]} -n {m[1]}"]),
    (re.compile(r"(?i)coredns|dns|network"), lambda m: FOR_FAULT[Fault.DNS_FAILURE]),
]


def for_finding(finding: str) -> list[str]:
    """kubectl commands for one real-cluster finding (empty when nothing specific applies)."""
    for pattern, commands in _PATTERNS:
        match = pattern.search(finding)
        if match:
            return commands(match)
    return []
