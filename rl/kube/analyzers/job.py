"""Job analyzer: failed Jobs (from their conditions, however long ago), pod failures, suspension."""

from rl.findings import CRITICAL, INFO, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, conditions_of, name_of, namespace_of, one_line

KIND = "Job"
NEEDS = ("jobs",)
REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for job in inv.items("jobs"):
        namespace, name = namespace_of(job), name_of(job)
        spec, status = job.get("spec") or {}, job.get("status") or {}
        conditions = conditions_of(job)
        parent = inv.parent(job)
        if spec.get("suspend"):
            findings.append(
                Finding(KIND, namespace, name, "Suspended", "job is suspended", ("spec.suspend=true",), INFO, parent)
            )
        failed = conditions.get("Failed") or {}
        succeeded = any((conditions.get(t) or {}).get("status") == "True" for t in ("Complete", "SuccessCriteriaMet"))
        attempts = int(status.get("failed") or 0)
        if failed.get("status") == "True":
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "JobFailed",
                    f"job failed: {failed.get('reason', '')}: {one_line(failed.get('message', ''))} ({attempts} failed pod(s))",
                    (f"condition Failed=True ({failed.get('reason', '')})", f"status.failed {attempts}"),
                    CRITICAL,
                    parent,
                    failed.get("lastTransitionTime"),
                )
            )
        elif attempts > 0 and not succeeded:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "PodFailures",
                    f"{attempts} pod(s) failed; the job is retrying (backoffLimit {spec.get('backoffLimit', 6)})",
                    (f"status.failed {attempts}",),
                    WARNING,
                    parent,
                )
            )
    return findings
