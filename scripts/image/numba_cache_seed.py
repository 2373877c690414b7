"""Seeds numba's cache in a container from the one compiled when the image was built.

numba writes its cache next to the sources or under NUMBA_CACHE_DIR, and only uses a directory it
can write to, so a cache baked into a read-only image cannot be used in place. The image sets
NUMBA_CACHE_DIR to a directory under /tmp (a tmpfs with --read-only) and this module, run at
interpreter start by a .pth file in the venv, copies the baked cache there when it is missing. The
copy is a few MB; compiling the simulator's kernels instead takes seconds. numba still checks each
entry against the sources and the CPU, and recompiles whatever does not match.
"""

import os


def seed_numba_cache() -> None:
    seed = os.environ.get("CLUSTER_RL_NUMBA_CACHE_SEED")
    target = os.environ.get("NUMBA_CACHE_DIR")
    if not seed or not target or os.path.exists(target) or not os.path.isdir(seed):
        return
    import shutil
    import tempfile

    staging = None
    try:
        parent = os.path.dirname(os.path.abspath(target))
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".numba-cache-", dir=parent)
        shutil.copytree(seed, staging, dirs_exist_ok=True)
        os.rename(staging, target)  # atomic: a concurrent process sees all of it or none
        staging = None
    except OSError:
        pass  # unwritable or raced by another process: numba compiles or uses the winner's copy
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


seed_numba_cache()
