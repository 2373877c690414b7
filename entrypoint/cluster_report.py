"""The real-cluster part of a diagnose report, built from the analyzers' findings (one source of truth).

- `findings`: every open finding with its evidence and next steps (keyed on kind and reason);
- `root_causes`: `[{"finding", "affects": [...]}]`, the findings grouped by shared cause;
- `could_not_act`: remedies the cluster refused (with the permission needed), answered as dry runs,
  or withheld before anything was sent (intent on the target, nothing wrong to fix: `rl.kube.guard`);
- `provider`, `errors`, `status`, `problems`, `results` at the top level: the same findings in the
  shape `k8sgpt analyze --output json` prints (k8sgpt's `analysis.JsonOutput`), so a tool that
  reads k8sgpt's output reads ours; `k8sgpt` holds the same object, for readers of the earlier
  nested layout.

Mapping to k8sgpt (docs/diagnose.md, "Acting on a real cluster"): one result per object; `kind` is the object's kind,
`name` is `namespace/name` (just the name when cluster-scoped), `error` holds one `{"Text",
"KubernetesDoc", "Sensitive"}` per finding on the object (Text is the finding's message prefixed by its
reason), `details` is empty (k8sgpt fills it only with --explain's AI text), `parentObject` is the top
controller ("Deployment/cart"). `status` is "ProblemDetected" when `problems` (the number of error
entries) is not 0, else "OK", as k8sgpt decides it; `provider` is "" (no AI backend); `errors` is
null, or the list of what could not be analyzed (our `degraded`), as k8sgpt lists its analyzers'
failures there. None of these names is one of our own report keys, so nothing is renamed.
"""

from entrypoint.recommendations import for_finding
from rl.findings import INTENT_KEYS
from rl.kube.targets import REMEDY_FOR


def finding_entry(finding, blocked: dict[str, str] | None = None) -> dict:
    """A report entry; `status` says why the finding is still open: it needs a human, or the remedy
    that could act on it was refused or only a dry run (`blocked`: action name -> why)."""
    remedy = REMEDY_FOR.get((finding.kind, finding.reason))
    if (finding.kind, finding.reason) in INTENT_KEYS:
        status = "intent: honoured, left to a human"
    elif remedy is None:
        status = "open: needs a human"
    elif remedy in (blocked or {}):
        status = f"open: {remedy} {blocked[remedy]}"
    else:
        status = f"open: {remedy} not tried"
    return {
        "issue": str(finding),
        "status": status,
        **finding.to_dict(),
        "recommended": for_finding(finding),
    }


K8SGPT_KEYS = ("provider", "errors", "status", "problems", "results")  # k8sgpt's JsonOutput, in its order


def k8sgpt_output(findings, degraded=()) -> dict:
    results: dict[tuple[str, str], dict] = {}
    for f in findings:
        entry = results.setdefault(
            (f.kind, f.object_name),
            {"kind": f.kind, "name": f.object_name, "error": [], "details": "", "parentObject": f.parent},
        )
        entry["error"].append({"Text": f"{f.reason}: {f.message}", "KubernetesDoc": "", "Sensitive": []})
    problems = sum(len(r["error"]) for r in results.values())
    return {
        "provider": "",
        "errors": list(degraded) or None,  # a Go nil slice marshals as null
        "status": "ProblemDetected" if problems else "OK",
        "problems": problems,
        "results": list(results.values()),
    }


def cluster_sections(env, info, writes_allowed: bool) -> dict:
    """The report fields of a real-cluster run, from the env's last observation."""
    from rl.kube.grouping import group

    backend = env.kube_backend
    findings = list(info.get("findings", []))
    reading = backend.reading
    roots = group(findings, reading.inventory) if reading is not None else []
    could_not_act = [
        {
            "action": r["action"],
            "target": r["target"],
            "object": r["object"],
            "why": "refused by the cluster",
            "detail": r["reason"],
            "permission_needed": _permission(r["reason"]),
        }
        for r in backend.refusals
    ]
    for (action, target), why in sorted(backend.blocked.items(), key=lambda kv: (kv[0][0].name, kv[0][1])):
        if why.startswith("answered as a dry run"):
            could_not_act.append(
                {
                    "action": action.name,
                    "target": target,
                    "why": "dry run only",
                    "detail": why,
                    "permission_needed": None,
                }
            )
    for (action, target), why in sorted(backend.withheld.items(), key=lambda kv: (kv[0][0].name, kv[0][1])):
        could_not_act.append(
            {"action": action.name, "target": target, "why": "withheld", "detail": why, "permission_needed": None}
        )
    blocked = {action.name: why for (action, _), why in backend.blocked.items()}
    degraded = info.get("degraded", [])
    k8sgpt = k8sgpt_output(findings, degraded)
    return {
        **k8sgpt,
        "findings": [finding_entry(f, blocked) for f in findings],
        "root_causes": [r.to_dict() for r in roots],
        "could_not_act": could_not_act,
        "degraded": degraded,
        "unknown": info.get("unknown", []),
        "writes_allowed": writes_allowed,
        "observations": backend.observations,
        "k8sgpt": k8sgpt,
    }


def _permission(reason: str) -> str | None:
    marker = "permission denied: cannot "
    if marker not in reason:
        return None
    return reason.split(marker, 1)[1].split(" (", 1)[0]


def print_cluster_text(report: dict) -> None:
    """The findings once each: every root cause with its status, and under it what it explains."""
    roots = report.get("root_causes", [])
    status = {(f["kind"], f["namespace"], f["name"], f["reason"]): f["status"] for f in report.get("findings", [])}
    print("\nRoot causes (and what each explains):")
    if not roots:
        print("  nothing wrong found" if report["resolved"] else "  none from what could be read")
    for root in roots:
        f = root["finding"]
        where = f"{f['namespace']}/{f['name']}" if f["namespace"] else f["name"]
        state = status.get((f["kind"], f["namespace"], f["name"], f["reason"]), "open")
        print(f"  - [{f['severity']}] {f['kind']} {where} {f['reason']}: {f['message']} [{state}]")
        for a in root["affects"]:
            a_where = f"{a['namespace']}/{a['name']}" if a["namespace"] else a["name"]
            print(f"      affects {a['kind']} {a_where} ({a['reason']})")
    if report.get("could_not_act"):
        print("\nCould not act:")
        for entry in report["could_not_act"]:
            need = f"; needs permission to {entry['permission_needed']}" if entry.get("permission_needed") else ""
            print(f"  - {entry['action']} on {entry['target']}: {entry['why']} ({entry['detail']}){need}")
