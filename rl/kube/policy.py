"""Who may be written to: read-only unless writes are allowed, and then only in listed namespaces."""


class WritePolicy:
    """Remediations are server-side dry runs unless `allow_writes` is set AND the object's
    namespace is in the allowlist (node actions need `allow_writes` only: nodes have no namespace).

    The allowlist is `write_namespaces`, or when that is not given, the observed `namespaces`
    without kube-system. kube-system is never a target, not even of a dry run, unless it is listed
    in `write_namespaces` itself.
    """

    def __init__(self, allow_writes: bool, write_namespaces: list[str] | None, namespaces: list[str] | None):
        if write_namespaces is not None:
            allowed = set(write_namespaces)
        else:
            allowed = {n for n in namespaces or () if n != "kube-system"}
        if allow_writes and not allowed:
            raise ValueError(
                "allow_writes needs a namespace allowlist (write_namespaces, or namespaces to observe); "
                "writes to every namespace are not allowed"
            )
        self.allow_writes = allow_writes
        self.allowed = frozenset(allowed)

    def may_target(self, namespace: str) -> bool:
        return namespace != "kube-system" or "kube-system" in self.allowed

    def writes_in(self, namespace: str) -> bool:
        return self.allow_writes and namespace in self.allowed and self.may_target(namespace)

    def why_dry(self, namespace: str | None) -> str:
        if not self.allow_writes:
            return "read-only: writes not allowed"
        if namespace is not None and namespace not in self.allowed:
            return f"namespace {namespace!r} not in the write allowlist"
        return ""
