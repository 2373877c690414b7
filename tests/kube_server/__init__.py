"""A fake Kubernetes API server for tests and benchmarks (see README.md here)."""

from .fixtures import load_into, load_objects, synthetic_cluster, write_certificate, write_kubeconfig
from .server import FakeKubeServer, Fault

__all__ = [
    "Fault",
    "FakeKubeServer",
    "load_into",
    "load_objects",
    "synthetic_cluster",
    "write_certificate",
    "write_kubeconfig",
]
