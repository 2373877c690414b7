"""Keep numba's on-disk cache in step with the tables compiled into it.

numba caches a compiled function keyed on its own source file, and compiles module-level arrays and
numbers into it as constants. The kernels read tables derived in other modules (the fault catalogue,
the findings vocabulary, the input layout), so a change there alone would leave a cached kernel
running with the old tables. `drop_stale` stamps each cache with a fingerprint of those tables and
flushes the cached functions when the fingerprint differs.
"""

import hashlib
from pathlib import Path

from rl.files import atomic_write


def fingerprint(*tables) -> str:
    """A short digest of the tables (tuples, dicts, sets, numpy arrays, enums and numbers), the same in
    every process (sets are taken in sorted order)."""
    digest = hashlib.sha256()
    for table in tables:
        if hasattr(table, "tolist"):
            table = table.tolist()
        elif isinstance(table, set | frozenset):
            table = sorted(table, key=repr)
        digest.update(repr(table).encode())
    return digest.hexdigest()[:16]


def drop_stale(name: str, dispatchers, stamp: str) -> None:
    """Flush the on-disk cache of `dispatchers` (numba functions compiled with cache=True) unless it
    was written for `stamp`; then record `stamp`. Best effort: a cache that cannot be written is
    numba's own business (it compiles without one)."""
    caches = [d._cache for d in dispatchers if getattr(d, "_cache", None) is not None]
    if not caches or not hasattr(caches[0], "flush"):
        return
    marker = Path(caches[0].cache_path) / f"{name}.tables"
    try:
        if marker.read_text() == stamp:
            return
    except OSError:
        pass
    for cache in caches:
        try:
            cache.flush()
        except OSError:
            pass
    try:
        # Readable by all, as numba's own cache files are: an image's cache is written by root at
        # build time and read by whatever uid the container runs as.
        atomic_write(marker, stamp.encode(), mode=0o644)
    except OSError:
        pass
