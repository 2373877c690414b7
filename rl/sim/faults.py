"""The faults the simulator injects, each documented the way an SRE would check it.

Every fault has: the symptoms it shows in `kubectl get` output (the observation), the diagnostic
read that reveals it (identifies the object, telling it apart from look-alikes), the fix among the
agent's actions (or none: a human must act), and what makes it worse. The simulation core
(`rl.sim.core`) implements exactly this table; `tests/test_sim.py` checks each row.

Observation freshness: node counts are refreshed by GET_NODES; pod counts by GET_PODS and
DESCRIBE_UNHEALTHY; deployment counts by GET_DEPLOYMENTS; CPU and memory by TOP_NODES (node
averages: a pressured node stands out) and TOP_PODS (pods against their requests and limits: a hot
deployment, pods at their memory limit stand out); events by GET_EVENTS. Remedies and WAIT refresh
nothing. Anything not refreshed goes stale. The three flags are set only when a read finds their
cause.

Remedies act on the object a read identified since the last remedy. With nothing identified they act
on a plausible but wrong object, and what that breaks is hidden until the read below finds it: a
healthy node drained leaves NODE_CORDONED, a healthy deployment scaled down UNDERSCALED, scaled up
OVERPROVISIONED, healthy pods restarted UNDERSCALED. Half the time a blind drain, restart or
scale-down also breaks what only a human can mend (UNBOUND_PVC: a pod with a local volume evicted;
BAD_ROLLOUT: a pending config change rolled out, a quorum lost); caused by the agent, such a fault
keeps the episode from being resolved.
"""

from enum import IntEnum


class Fault(IntEnum):
    # Symptoms: a few pods Failed (Error, exit 1) spread over deployments; every deployment still
    #   has ready replicas. Reveals: CHECK_LOGS (a one-off panic, low restart count).
    # Fix: RESTART_FAILED_PODS. Worse: nothing; it stays until restarted.
    CRASHED_PODS = 0
    # Symptoms: every new pod of one deployment is in CrashLoopBackOff (pods Failed), that
    #   deployment is unavailable, BackOff warnings keep coming. Reveals: CHECK_LOGS ("invalid
    #   config", "exec format error") or DESCRIBE_UNHEALTHY. Fix: none, a human rolls back the bad
    #   config or image. Worse: RESTART_FAILED_PODS changes nothing; the pods crash again.
    BAD_ROLLOUT = 1
    # Symptoms: pods Failed (OOMKilled) and memory near the limit (TOP_PODS). Reveals:
    #   DESCRIBE_UNHEALTHY (Last State: OOMKilled) or TOP_PODS. Fix: SCALE_UP_DEPLOYMENT spreads the
    #   load so each replica fits its limit. Worse: RESTART_FAILED_PODS only buys a few steps.
    OOM_KILLED = 2
    # Symptoms: one node NotReady (kubelet stopped posting status); its pods go Unknown, and after
    #   the eviction timeout they are evicted and go Pending if the rest of the cluster is full,
    #   raising CPU and memory elsewhere. Reveals: GET_NODES or DESCRIBE_UNHEALTHY. Fix: DRAIN_NODE evicts its pods now,
    #   and the node is replaced. Worse: waiting lets the cascade land.
    NODE_NOT_READY = 3
    # Symptoms: a Ready node is SchedulingDisabled (counted neither ready nor not ready); capacity
    #   is lower, pods may go Pending. Reveals: GET_NODES. Fix: UNCORDON_NODE. Worse: nothing.
    #   Draining a healthy node leaves exactly this behind.
    NODE_CORDONED = 4
    # Symptoms: a node under MemoryPressure/DiskPressure evicts pods (phase Failed, reason Evicted),
    #   memory high. Reveals: TOP_NODES or DESCRIBE_UNHEALTHY (has_resource_pressure). Fix:
    #   DRAIN_NODE moves the workload off and the node recovers, cordoned until GET_NODES finds it
    #   and UNCORDON_NODE. Worse: restarting evicted pods lands them back on the node, to be
    #   evicted again.
    NODE_PRESSURE = 5
    # Symptoms: one deployment scaled far past its need (a bad HPA target) eats capacity: pods
    #   Pending, CPU high. Reveals: TOP_PODS or GET_DEPLOYMENTS. Fix: SCALE_DOWN_DEPLOYMENT (the
    #   runaway is the one scaled down). Worse: SCALE_UP adds more pending pods.
    RUNAWAY_DEPLOYMENT = 6
    # Symptoms: one deployment under load fails readiness (unavailable), CPU high, nothing Pending.
    #   Reveals: TOP_PODS or GET_DEPLOYMENTS. Fix: SCALE_UP_DEPLOYMENT. Worse: SCALE_DOWN. Scaling
    #   down a healthy deployment leaves exactly this behind.
    UNDERSCALED = 7
    # Symptoms: a namespace's ResourceQuota is used up: its deployment cannot create pods
    #   (FailedCreate warnings) and is unavailable. Reveals: GET_RESOURCE_QUOTAS
    #   (has_resource_pressure). Fix: none, a human raises the quota or trims requests.
    #   Worse: SCALE_UP asks for even more.
    QUOTA_EXHAUSTED = 8
    # Symptoms: pods Pending ("pod has unbound immediate PersistentVolumeClaims"). Reveals:
    #   DESCRIBE_UNHEALTHY or GET_EVENTS (has_pvc_issues). Fix: none, a human fixes the storage
    #   class or provisions the volume. Worse: nothing the agent does helps.
    UNBOUND_PVC = 9
    # Symptoms: pods Running but several deployments unavailable (readiness probes fail to reach
    #   their dependencies), warning events. Reveals: CHECK_LOGS ("lookup ... no such host",
    #   has_network_issues). Fix: none, a human repairs CoreDNS or the network policy. Worse:
    #   restarting or scaling does nothing.
    DNS_FAILURE = 10
    # A deployment scaled up with no need: it holds capacity the cluster may not have. Left behind
    #   by SCALE_UP_DEPLOYMENT when nothing needed it; pods may go Pending when capacity is tight.
    #   Reveals: GET_DEPLOYMENTS or TOP_PODS. Fix: SCALE_DOWN_DEPLOYMENT.
    OVERPROVISIONED = 11


NUM_FAULTS = len(Fault)
FAULT_NAMES = tuple(f.name.lower() for f in Fault)

# Faults the agent cannot fix: its job is to reveal them and not make things worse.
HUMAN_ONLY = frozenset({Fault.BAD_ROLLOUT, Fault.QUOTA_EXHAUSTED, Fault.UNBOUND_PVC, Fault.DNS_FAILURE})

# Faults that arise only from the agent's own wrong moves, never injected at reset.
INDUCED_ONLY = frozenset({Fault.OVERPROVISIONED})

INJECTABLE = tuple(f for f in Fault if f not in INDUCED_ONLY)

# Short human descriptions for `info["issues"]` and reports.
DESCRIPTIONS = {
    Fault.CRASHED_PODS: "pods crashed (transient error); restart them",
    Fault.BAD_ROLLOUT: "deployment in CrashLoopBackOff after a bad config/image rollout; needs a rollback",
    Fault.OOM_KILLED: "pods OOMKilled under load; scale the deployment up",
    Fault.NODE_NOT_READY: "node NotReady (kubelet down); drain it so its pods reschedule",
    Fault.NODE_CORDONED: "node cordoned and forgotten; uncordon it",
    Fault.NODE_PRESSURE: "node under memory/disk pressure evicting pods; drain it",
    Fault.RUNAWAY_DEPLOYMENT: "runaway deployment eating capacity; scale it down",
    Fault.UNDERSCALED: "deployment under-scaled for its load; scale it up",
    Fault.QUOTA_EXHAUSTED: "ResourceQuota exhausted; a human must raise it",
    Fault.UNBOUND_PVC: "PersistentVolumeClaim unbound; a human must provision storage",
    Fault.DNS_FAILURE: "DNS/network failure; a human must repair CoreDNS or the network policy",
    Fault.OVERPROVISIONED: "deployment over-provisioned; scale it down",
}

# What `kubectl` showed of each fault, for reports ({size} is the fault's extent, {state} the cluster).
EVIDENCE = {
    Fault.CRASHED_PODS: "{size} pod(s) in Error after a one-off crash (exit code 1, low restart count)",
    Fault.BAD_ROLLOUT: "all {size} replica(s) of one deployment in CrashLoopBackOff; logs: invalid configuration",
    Fault.OOM_KILLED: "{size} pod(s) with Last State OOMKilled; memory at {state.memory_usage_percent:.0f}%",
    Fault.NODE_NOT_READY: "1 node NotReady (kubelet stopped posting status); {state.pods_unknown} pod(s) Unknown",
    Fault.NODE_CORDONED: "{size} Ready node(s) SchedulingDisabled",
    Fault.NODE_PRESSURE: "node condition MemoryPressure=True; {size} pod(s) Evicted",
    Fault.RUNAWAY_DEPLOYMENT: "one deployment {size} replica(s) over its need; {state.pods_pending} pod(s) Pending, "
    "CPU {state.cpu_usage_percent:.0f}%",
    Fault.UNDERSCALED: "{size} deployment(s) failing readiness under load; CPU {state.cpu_usage_percent:.0f}%",
    Fault.QUOTA_EXHAUSTED: "FailedCreate: exceeded quota; {size} replica(s) not created",
    Fault.UNBOUND_PVC: "{size} pod(s) Pending: pod has unbound immediate PersistentVolumeClaims",
    Fault.DNS_FAILURE: "{size} deployment(s) unavailable; logs: lookup ... no such host",
    Fault.OVERPROVISIONED: "one deployment scaled up by {size} replica(s) it does not need",
}
