"""Log analyzer: what the logs of failing containers say, by pattern (k8sgpt's log analyzer, sharper).

Unlike the other analyzers it reads no list: `CHECK_LOGS` fetches the last lines of the containers
that are failing or restarted (`rl.kube.diagnostics`), and `analyze_logs` turns each into at most one
finding, the first pattern that matches in this order: a lookup that failed (DNS), a connection to a
dependency refused or timed out, requests timing out under load, a configuration the program
rejected, a crash (panic, fatal error, traceback, segfault). "Overloaded" (timeouts, a full queue) sits between: a program that is
too slow for its load.
"""

import re

from rl.findings import REASONS as VOCABULARY
from rl.findings import WARNING, Finding

KIND = "Log"
REASONS = VOCABULARY[KIND]
PATTERNS = (
    (
        "DNSResolutionFailed",
        re.compile(r"no such host|lookup \S+ on \S+:53|Temporary failure in name resolution|SERVFAIL", re.I),
    ),
    (
        "ConnectionRefused",
        re.compile(r"connection refused|ECONNREFUSED|connect: no route to host|dial tcp \S+: i/o timeout", re.I),
    ),
    (
        "Overloaded",
        re.compile(
            r"context deadline exceeded|request timed? ?out|too many (?:requests|open connections)|"
            r"queue (?:is )?full|worker pool exhausted|503 Service Unavailable",
            re.I,
        ),
    ),
    (
        "ConfigurationError",
        re.compile(
            r"invalid config|configuration (?:error|invalid)|failed to (?:load|parse) config|unknown field|"
            r"missing required (?:field|env|setting)|exec format error|yaml: |json: cannot unmarshal",
            re.I,
        ),
    ),
    (
        "Panic",
        re.compile(r"^panic:|fatal error:|Traceback \(most recent call last\)|segmentation fault|SIGSEGV", re.I | re.M),
    ),
)
assert tuple(reason for reason, _ in PATTERNS) == REASONS


def classify(text: str) -> tuple[str, str] | None:
    """(reason, the first line that matched) for one container's log, or None."""
    for reason, pattern in PATTERNS:
        match = pattern.search(text)
        if match:
            start = text.rfind("\n", 0, match.start()) + 1
            end = text.find("\n", match.end())
            return reason, text[start : end if end >= 0 else len(text)].strip()[:200]
    return None


def analyze_logs(logs: dict[tuple[str, str], str], parents: dict[tuple[str, str], str] | None = None) -> list[Finding]:
    """One finding per pod whose log matches a pattern; `logs` maps (namespace, pod) to its text."""
    findings = []
    for (namespace, name), text in sorted(logs.items()):
        found = classify(text)
        if found is None:
            continue
        reason, line = found
        findings.append(
            Finding(
                KIND,
                namespace,
                name,
                reason,
                f"log: {line}",
                (f"log line: {line}",),
                WARNING,
                (parents or {}).get((namespace, name), ""),
            )
        )
    return findings
