"""What a human should run next: kubectl commands for each kind of problem found."""

from rl.faults import NEXT_STEPS as FOR_FAULT  # each fault type's, from the catalogue
from rl.faults import Fault

# Real-cluster findings: kubectl commands keyed on (kind, reason), the analyzers' structured keys.
# Placeholders: {namespace}, {name}, {ref} (kind/name for kubectl), {parent} (the top controller, e.g.
# deployment/cart, or the object itself). ("*", reason) applies to any kind (warning events).
_POD_DESCRIBE = "kubectl describe pod {name} -n {namespace}"
_POD_EVENTS = "kubectl get events -n {namespace} --field-selector involvedObject.name={name}"
_IMAGE = [_POD_DESCRIBE, "kubectl get {parent} -n {namespace} -o jsonpath='{{..image}}'"]
_START = [_POD_DESCRIBE, "kubectl logs {name} -n {namespace} --all-containers"]
NEXT_STEPS: dict[tuple[str, str], list[str]] = {
    ("Pod", "CrashLoopBackOff"): ["kubectl logs {name} -n {namespace} --previous", _POD_DESCRIBE],
    ("Pod", "OOMKilled"): [
        _POD_DESCRIBE + " | grep -A5 'Last State'",
        "kubectl top pod {name} -n {namespace} --containers",
        "kubectl set resources {parent} -n {namespace} --limits=memory=<more>",
    ],
    ("Pod", "ImagePullBackOff"): _IMAGE,
    ("Pod", "ErrImagePull"): _IMAGE,
    ("Pod", "ErrImageNeverPull"): _IMAGE,
    ("Pod", "InvalidImageName"): _IMAGE,
    ("Pod", "ImageInspectError"): _IMAGE,
    ("Pod", "CreateContainerConfigError"): [
        _POD_DESCRIBE,
        "kubectl get configmaps,secrets -n {namespace}",
    ],
    ("Pod", "CreateContainerError"): _START,
    ("Pod", "PreCreateHookError"): _START,
    ("Pod", "PreStartHookError"): _START,
    ("Pod", "RunContainerError"): _START,
    ("Pod", "FailedMount"): [_POD_EVENTS, "kubectl get pvc -n {namespace}", "kubectl get volumeattachments"],
    ("Pod", "FailedAttachVolume"): [_POD_EVENTS, "kubectl get volumeattachments"],
    ("Pod", "FailedCreatePodSandBox"): [
        _POD_EVENTS,
        "kubectl get pods -n kube-system -o wide | grep -iE 'cni|calico|cilium|aws-node|flannel'",
    ],
    ("Pod", "ContainerExited"): ["kubectl logs {name} -n {namespace} --all-containers", _POD_DESCRIBE],
    ("Pod", "Unschedulable"): [_POD_EVENTS, "kubectl describe nodes | grep -A5 Allocated"],
    ("Pod", "UnboundVolume"): [_POD_EVENTS, "kubectl get pvc -n {namespace}", "kubectl get storageclass"],
    ("Pod", "SchedulingGated"): ["kubectl get pod {name} -n {namespace} -o jsonpath='{{.spec.schedulingGates}}'"],
    ("Pod", "Evicted"): [_POD_DESCRIBE, "kubectl delete pod {name} -n {namespace}"],
    ("Pod", "Failed"): [_POD_DESCRIBE, "kubectl logs {name} -n {namespace} --all-containers"],
    ("Pod", "PhaseUnknown"): [_POD_DESCRIBE + " | grep Node:", "kubectl get nodes"],
    ("Pod", "ReadinessProbeFailed"): [_POD_EVENTS, "kubectl logs {name} -n {namespace}"],
    ("Pod", "NotReady"): [_POD_DESCRIBE, "kubectl logs {name} -n {namespace}"],
    ("Pod", "TerminatingOnDeadNode"): [
        "kubectl get nodes",
        "kubectl delete pod {name} -n {namespace} --grace-period=0 --force  # only once the node is gone",
    ],
    ("Pod", "TerminatingStuck"): ["kubectl get pod {name} -n {namespace} -o jsonpath='{{.metadata.finalizers}}'"],
    ("Node", "NotReady"): [
        "kubectl describe node {name}",
        "kubectl drain {name} --ignore-daemonsets --delete-emptydir-data",
    ],
    ("Node", "MemoryPressure"): [
        "kubectl describe node {name} | grep -i pressure",
        "kubectl top pods -A --sort-by=memory",
    ],
    ("Node", "DiskPressure"): [
        "kubectl describe node {name} | grep -i pressure",
        "kubectl get pods -A -o wide --field-selector spec.nodeName={name}",
    ],
    ("Node", "PIDPressure"): [
        "kubectl describe node {name} | grep -i pressure",
        "kubectl get pods -A -o wide --field-selector spec.nodeName={name}",
    ],
    ("Node", "NetworkUnavailable"): [
        "kubectl describe node {name} | grep -A3 NetworkUnavailable",
        "kubectl get pods -n kube-system -o wide",
    ],
    ("Node", "NodeCondition"): ["kubectl describe node {name}"],
    ("Node", "Cordoned"): ["kubectl describe node {name}", "kubectl uncordon {name}"],
    ("Node", "PlannedMaintenance"): [
        "kubectl describe node {name} | grep -iE 'maintenance|ticket|window|cordon|Taints'",
        "# uncordon only once whoever planned it (change ticket, cluster autoscaler, Karpenter) is done",
    ],
    ("ClusterDNS", "DNSDown"): list(FOR_FAULT[Fault.DNS_FAILURE]),
    ("ClusterDNS", "DNSDegraded"): list(FOR_FAULT[Fault.DNS_FAILURE]),
    ("Deployment", "ReplicasUnavailable"): [
        "kubectl rollout status deployment/{name} -n {namespace}",
        "kubectl describe deployment {name} -n {namespace}",
    ],
    ("Deployment", "ProgressDeadlineExceeded"): [
        "kubectl rollout history deployment/{name} -n {namespace}",
        "kubectl rollout undo deployment/{name} -n {namespace}",
    ],
    ("Deployment", "ReplicaFailure"): [
        "kubectl describe deployment {name} -n {namespace}",
        "kubectl describe resourcequota -n {namespace}",
    ],
    ("Deployment", "ReplicasOwnedByHPA"): [
        "kubectl get hpa -n {namespace} -o wide",
        "# scale through the HPA: change its minReplicas/maxReplicas if the HPA is the problem",
    ],
    ("Deployment", "ManagedByArgoCD"): [
        "kubectl get deployment {name} -n {namespace} -o jsonpath='{{.metadata.labels}}{{.metadata.annotations}}'",
        "# change the manifest in the Argo CD application's Git source, then let it sync",
    ],
    ("Deployment", "ManagedByFlux"): [
        "kubectl get deployment {name} -n {namespace} -o jsonpath='{{.metadata.labels}}'",
        "# change the manifest in the Git path the Flux Kustomization or HelmRelease applies",
    ],
    ("ReplicaSet", "FailedCreate"): [
        "kubectl describe replicaset {name} -n {namespace}",
        "kubectl describe resourcequota -n {namespace}",
    ],
    ("StatefulSet", "ServiceNotFound"): [
        "kubectl get statefulset {name} -n {namespace} -o jsonpath='{{.spec.serviceName}}'",
        "kubectl get services -n {namespace}",
    ],
    ("StatefulSet", "StorageClassNotFound"): [
        "kubectl get storageclass",
        "kubectl describe statefulset {name} -n {namespace}",
    ],
    ("StatefulSet", "ReplicasUnavailable"): [
        "kubectl describe statefulset {name} -n {namespace}",
        "kubectl get pods -n {namespace} -l <selector>",
    ],
    ("DaemonSet", "PodsNotReady"): [
        "kubectl rollout status daemonset/{name} -n {namespace}",
        "kubectl describe daemonset {name} -n {namespace}",
    ],
    ("DaemonSet", "ImagePullSecretNotFound"): [
        "kubectl get secrets -n {namespace} --field-selector type=kubernetes.io/dockerconfigjson",
        "kubectl describe daemonset {name} -n {namespace}",
    ],
    ("DaemonSet", "Misscheduled"): ["kubectl describe daemonset {name} -n {namespace}"],
    ("Job", "JobFailed"): ["kubectl describe job {name} -n {namespace}", "kubectl logs job/{name} -n {namespace}"],
    ("Job", "PodFailures"): ["kubectl describe job {name} -n {namespace}", "kubectl logs job/{name} -n {namespace}"],
    ("Job", "Suspended"): ['kubectl patch job {name} -n {namespace} -p \'{{"spec":{{"suspend":false}}}}\''],
    ("CronJob", "Suspended"): ['kubectl patch cronjob {name} -n {namespace} -p \'{{"spec":{{"suspend":false}}}}\''],
    ("CronJob", "InvalidSchedule"): ["kubectl get cronjob {name} -n {namespace} -o jsonpath='{{.spec.schedule}}'"],
    ("CronJob", "NegativeStartingDeadline"): [
        "kubectl get cronjob {name} -n {namespace} -o jsonpath='{{.spec.startingDeadlineSeconds}}'"
    ],
    ("Service", "NoMatchingPods"): [
        "kubectl get service {name} -n {namespace} -o jsonpath='{{.spec.selector}}'",
        "kubectl get pods -n {namespace} --show-labels",
    ],
    ("Service", "NoReadyEndpoints"): [
        "kubectl get endpointslices -n {namespace} -l kubernetes.io/service-name={name}",
        "kubectl get pods -n {namespace} -o wide",
    ],
    ("Service", "NotReadyEndpoints"): [
        "kubectl get endpointslices -n {namespace} -l kubernetes.io/service-name={name}"
    ],
    ("Ingress", "NoIngressClass"): ["kubectl get ingressclass", "kubectl describe ingress {name} -n {namespace}"],
    ("Ingress", "IngressClassNotFound"): ["kubectl get ingressclass", "kubectl describe ingress {name} -n {namespace}"],
    ("Ingress", "BackendServiceNotFound"): [
        "kubectl describe ingress {name} -n {namespace}",
        "kubectl get services -n {namespace}",
    ],
    ("Ingress", "TLSSecretNotFound"): [
        "kubectl describe ingress {name} -n {namespace}",
        "kubectl get secrets -n {namespace} --field-selector type=kubernetes.io/tls",
    ],
    ("PersistentVolumeClaim", "Pending"): ["kubectl describe pvc {name} -n {namespace}", "kubectl get storageclass"],
    ("PersistentVolumeClaim", "Lost"): ["kubectl describe pvc {name} -n {namespace}", "kubectl get pv"],
    ("HorizontalPodAutoscaler", "AbleToScale"): ["kubectl describe hpa {name} -n {namespace}"],
    ("HorizontalPodAutoscaler", "ScalingActive"): [
        "kubectl describe hpa {name} -n {namespace}",
        "kubectl top pods -n {namespace}",
    ],
    ("HorizontalPodAutoscaler", "ScalingLimited"): ["kubectl describe hpa {name} -n {namespace}"],
    ("HorizontalPodAutoscaler", "ScaleTargetNotFound"): [
        "kubectl describe hpa {name} -n {namespace}",
        "kubectl get deployments,statefulsets -n {namespace}",
    ],
    ("HorizontalPodAutoscaler", "NoResourceRequests"): ["kubectl describe hpa {name} -n {namespace}"],
    ("PodDisruptionBudget", "DisruptionsNotAllowed"): ["kubectl describe pdb {name} -n {namespace}"],
    ("PodDisruptionBudget", "BlocksDrain"): [
        "kubectl describe pdb {name} -n {namespace}",
        "# drain once the budget allows it: more healthy replicas elsewhere, or agreed with its owner",
    ],
    ("NetworkPolicy", "SelectsAllPods"): ["kubectl describe networkpolicy {name} -n {namespace}"],
    ("NetworkPolicy", "NoMatchingPods"): [
        "kubectl describe networkpolicy {name} -n {namespace}",
        "kubectl get pods -n {namespace} --show-labels",
    ],
    ("ResourceQuota", "QuotaExceeded"): ["kubectl describe resourcequota {name} -n {namespace}"],
    ("Log", "DNSResolutionFailed"): [
        "kubectl logs {name} -n {namespace} --tail=50",
        "kubectl -n kube-system get pods -l k8s-app=kube-dns",
    ],
    ("Log", "ConnectionRefused"): [
        "kubectl logs {name} -n {namespace} --tail=50",
        "kubectl get endpoints -n {namespace}",
    ],
    ("Log", "Overloaded"): ["kubectl logs {name} -n {namespace} --tail=50", "kubectl top pods -n {namespace}"],
    ("Log", "ConfigurationError"): [
        "kubectl logs {name} -n {namespace} --previous",
        "kubectl rollout history {parent} -n {namespace}",
    ],
    ("Log", "Panic"): ["kubectl logs {name} -n {namespace} --previous", _POD_DESCRIBE],
    ("*", "WarningEvent"): ["kubectl get events -n {namespace} --field-selector involvedObject.name={name}"],
    ("*", "DNSResolutionFailed"): [
        "kubectl -n kube-system get pods -l k8s-app=kube-dns",
        "kubectl get events -n {namespace} --field-selector involvedObject.name={name}",
    ],
    ("*", "NetworkError"): [
        "kubectl get events -n {namespace} --field-selector involvedObject.name={name}",
        "kubectl get pods -n kube-system -o wide",
    ],
}


def steps_for(kind: str, reason: str) -> list[str] | None:
    """The command templates for a (kind, reason), or None when there are none."""
    return NEXT_STEPS.get((kind, reason)) or NEXT_STEPS.get(("*", reason))


def for_finding(finding) -> list[str]:
    """kubectl commands for one real-cluster finding (`rl.findings.Finding`)."""
    templates = steps_for(finding.kind, finding.reason) or []
    parent = finding.parent.lower() if finding.parent else f"{finding.kind.lower()}/{finding.name}"
    fields = {"namespace": finding.namespace or "default", "name": finding.name, "parent": parent}
    commands = [t.format(**fields) for t in templates]
    if not finding.namespace:
        commands = [c.replace(" -n default", "") for c in commands]
    return commands
