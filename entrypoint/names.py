"""Names that end up in file paths, S3 keys and API paths (job names, run ids, namespaces): strict rules, no traversal."""

import re

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
NAME_RULE = "1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME_RE = re.compile(NAME_PATTERN)
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_name(name: object, field: str) -> str:
    """Return `name` if it is safe in a path or key, else raise ValueError("<field>: ...")."""
    if not isinstance(name, str):
        raise ValueError(f"{field}: must be a string, got {type(name).__name__}")
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"{field}: {name!r} is not a valid name ({NAME_RULE})")
    if ".." in name:
        raise ValueError(f"{field}: {name!r} must not contain '..'")
    return name


def check_namespace(name: object, field: str) -> str:
    """Return `name` if it is a Kubernetes namespace name (a DNS label), else raise ValueError."""
    if not isinstance(name, str) or not _NAMESPACE_RE.fullmatch(name):
        raise ValueError(f"{field}: {name!r} is not a valid namespace name (a DNS label: lowercase, digits, '-')")
    return name
