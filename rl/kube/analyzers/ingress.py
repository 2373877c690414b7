"""Ingress analyzer: ingress class missing or unknown, backend Services and TLS Secrets that do not exist."""

from rl.findings import CRITICAL, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, name_of, namespace_of

KIND = "Ingress"
NEEDS = ("ingresses",)
REASONS = VOCABULARY[KIND]
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
BUILTIN_CLASSES = ("gce", "gce-internal")  # GKE's controllers need no IngressClass object


def referenced_secrets(ingress: dict) -> list[str]:
    return [t["secretName"] for t in (ingress.get("spec") or {}).get("tls") or () if t.get("secretName")]


def backend_services(ingress: dict) -> list[str]:
    spec = ingress.get("spec") or {}
    backends = [spec.get("defaultBackend") or {}]
    for rule in spec.get("rules") or ():
        backends += [path.get("backend") or {} for path in (rule.get("http") or {}).get("paths") or ()]
    return list(dict.fromkeys(b["service"]["name"] for b in backends if (b.get("service") or {}).get("name")))


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    classes = inv.items("ingressclasses")
    has_default = any(
        ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true" for c in classes
    )
    for ingress in inv.items("ingresses"):
        namespace, name = namespace_of(ingress), name_of(ingress)
        spec = ingress.get("spec") or {}
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        klass = spec.get("ingressClassName") or annotations.get(CLASS_ANNOTATION)
        parent = inv.parent(ingress)
        if inv.has("ingressclasses"):
            if not klass:
                why = (
                    "a default IngressClass exists, but controllers ignore class-less Ingresses unless told to watch them"
                    if has_default
                    else "and no IngressClass is the default: no controller serves it"
                )
                findings.append(
                    Finding(
                        KIND,
                        namespace,
                        name,
                        "NoIngressClass",
                        f"no ingress class given ({why})",
                        ("spec.ingressClassName unset",),
                        WARNING if has_default else CRITICAL,
                        parent,
                    )
                )
            elif (
                klass
                and spec.get("ingressClassName")
                and klass not in BUILTIN_CLASSES
                and inv.get("ingressclasses", "", klass) is None
            ):
                findings.append(
                    Finding(
                        KIND,
                        namespace,
                        name,
                        "IngressClassNotFound",
                        f"ingress class {klass} does not exist",
                        (f"spec.ingressClassName {klass}",),
                        CRITICAL,
                        parent,
                    )
                )
        if inv.has("services"):
            for service in backend_services(ingress):
                if inv.get("services", namespace, service) is None:
                    findings.append(
                        Finding(
                            KIND,
                            namespace,
                            name,
                            "BackendServiceNotFound",
                            f"backend Service {namespace}/{service} does not exist",
                            (f"backend service {service}",),
                            CRITICAL,
                            parent,
                        )
                    )
        for secret in referenced_secrets(ingress):
            if inv.secrets.get((namespace, secret)) is False:
                findings.append(
                    Finding(
                        KIND,
                        namespace,
                        name,
                        "TLSSecretNotFound",
                        f"TLS Secret {namespace}/{secret} does not exist: HTTPS serves the controller's default certificate",
                        (f"spec.tls secretName {secret}",),
                        WARNING,
                        parent,
                    )
                )
    return findings
