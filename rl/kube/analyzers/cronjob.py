"""CronJob analyzer: suspended, an invalid schedule, a negative starting deadline."""

import re

from rl.findings import CRITICAL, INFO, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, name_of, namespace_of

KIND = "CronJob"
NEEDS = ("cronjobs",)
REASONS = VOCABULARY[KIND]

MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
NAMES = (
    None,
    None,
    None,
    {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
)


def schedule_error(schedule: str) -> str | None:
    """Why a cron schedule (standard 5 fields, names, ranges, steps, macros) is invalid; None if valid."""
    text = (schedule or "").strip()
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        text = text.split(None, 1)[1] if " " in text else ""
    if text in MACROS:
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: {schedule!r}"
    for field, (low, high), names in zip(fields, FIELD_RANGES, NAMES, strict=True):
        for part in field.split(","):
            base, _, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return f"bad step in {part!r}"
            if base in ("*", "?"):
                continue
            bounds = base.split("-")
            if len(bounds) > 2:
                return f"bad range {base!r}"
            for bound in bounds:
                value = names.get(bound.lower()) if names and not bound.isdigit() else None
                if value is None:
                    if not re.fullmatch(r"\d+", bound):
                        return f"failed to parse {bound!r}"
                    value = int(bound)
                if not low <= value <= high:
                    return f"{value} out of range [{low}, {high}]"
    return None


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for cron in inv.items("cronjobs"):
        namespace, name, spec = namespace_of(cron), name_of(cron), cron.get("spec") or {}
        parent = inv.parent(cron)
        if spec.get("suspend"):
            findings.append(
                Finding(
                    KIND, namespace, name, "Suspended", "cron job is suspended", ("spec.suspend=true",), INFO, parent
                )
            )
        error = schedule_error(spec.get("schedule", ""))
        if error:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "InvalidSchedule",
                    f"invalid schedule {spec.get('schedule')!r}: {error}",
                    (f"spec.schedule {spec.get('schedule')!r}",),
                    CRITICAL,
                    parent,
                )
            )
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and int(deadline) < 0:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "NegativeStartingDeadline",
                    f"startingDeadlineSeconds is {deadline}: no run can start",
                    (f"spec.startingDeadlineSeconds {deadline}",),
                    CRITICAL,
                    parent,
                )
            )
    return findings
