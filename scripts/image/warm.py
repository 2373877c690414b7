"""Run once at image build time, in the builder's venv, with `--no-compile` installs:
`warm.py IMPORTED`, with NUMBA_CACHE_DIR set.

1. Imports what a run of `cluster-rl` imports and writes the venv's source files among them to
   IMPORTED, sorted, one a line: the Dockerfiles byte-compile exactly those, in one deterministic
   `compileall` run (imports write bytecode in whatever order and interpreter state they happen to
   run in, which does not give the same bytes from build to build). The runtime image is read-only
   and would otherwise recompile them at every start, while byte-compiling every installed module
   would add about 200 MB of .pyc that no run reads.
2. Steps the simulator through `ClusterEnv` and `ClusterPufferEnv`, so numba compiles its kernels
   into NUMBA_CACHE_DIR, which the image ships as the seed of its runtime cache
   (see numba_cache_seed.py).
3. Keeps memory addresses out of that cache, so two builds ship the same bytes: array expressions are
   numbered instead of named after their address (number_array_expressions), and the addresses left
   in the text the cache holds are zeroed (blank_addresses).
A failure here fails the build: an image whose modules do not import is broken.
"""

import importlib
import os
import pkgutil
import re
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

THIRD_PARTY = [
    "torch",
    "torch.nn",
    "torch.optim",
    "torch.utils.tensorboard",
    "numpy",
    "numba",
    "pufferlib",
    "pufferlib.pufferl",
    "pufferlib.vector",
    "pufferlib.pytorch",
    "pufferlib.models",
    "pufferlib.emulation",
    "gymnasium",
    "typer",
    "rich",
    "rich.console",
    "rich.table",
    "yaml",
    "pydantic",
    "matplotlib",
    "matplotlib.pyplot",
    "kubernetes",
    "kubernetes.client",
    "kubernetes.config",
    "kubernetes.watch",
    "boto3",
    "botocore",
    "pynvml",
]
OUR_PACKAGES = ["rl", "entrypoint"]


def import_everything() -> None:
    for name in THIRD_PARTY:
        importlib.import_module(name)
    for package_name in OUR_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
            importlib.import_module(module.name)
    import boto3

    # Creating a client loads botocore's service model and the modules that handle it; STS is what
    # assume-role and EKS web-identity credentials call (slim.sh keeps only these models).
    session = boto3.session.Session()
    session.client("s3", region_name="us-east-1")
    session.client("sts", region_name="us-east-1")


def number_array_expressions() -> None:
    """Names the functions numba lowers array expressions to by number, not by address.

    numba compiles an array expression in a kernel (`a * b + c` on arrays) to a function named after
    `hash(expr)`, and also names the ufuncs in it after `hash(ufunc)`; for these objects that is their
    address (`__numba_array_expr_0x7fe632336510`). The name is a symbol in the compiled code that the
    cache stores, so it differed from build to build. Here, `hash` in that module numbers each object
    in the order they are lowered, which is fixed, and keeps every object alive so that a number is
    never reused. Only this build-time process is affected: the image's processes load the kernels
    from the cache, and one that compiles a kernel anew names it after its address as usual.
    """
    from numba.np.ufunc import array_exprs

    if "hash" not in array_exprs._lower_array_expr.__code__.co_names:
        sys.exit("warm.py: numba no longer names array expressions after hash(); revisit number_array_expressions")
    numbers: dict[int, tuple[object, int]] = {}

    def numbered(obj: object) -> int:
        if id(obj) not in numbers:
            numbers[id(obj)] = (obj, len(numbers) + 1)
        return numbers[id(obj)][1]

    array_exprs.hash = numbered


def compile_simulator() -> None:
    import numpy as np

    from rl.env import ClusterEnv
    from rl.puffer_env import ClusterPufferEnv

    env = ClusterEnv()
    env.reset(seed=0)
    for _ in range(64):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()

    vec = ClusterPufferEnv(num_envs=8)
    vec.reset(seed=0)
    actions = np.zeros(vec.actions.shape, dtype=vec.actions.dtype)
    for _ in range(64):
        vec.step(actions)
    vec.close()


# A function's repr, `<function name at 0x7f...>`: numba stores the typed IR's text (the types of the
# globals a kernel calls) in each .nbc entry, for inspect_types only.
ADDRESS_IN_REPR = re.compile(rb" at 0x([0-9a-f]+)>")


def blank_addresses(cache_dir: str) -> int:
    """Zeroes the addresses in the cache's function reprs, digit for digit.

    The address is where the function object happened to be allocated, so it differs from build to
    build. Zeroing keeps each string's length, so the pickles stay valid byte for byte.
    """
    changed = 0
    for entry in sorted(Path(cache_dir).rglob("*.nbc")):
        data = entry.read_bytes()
        blanked = ADDRESS_IN_REPR.sub(lambda m: b" at 0x" + b"0" * len(m.group(1)) + b">", data)
        if blanked != data:
            staging = entry.with_name(entry.name + ".tmp")
            staging.write_bytes(blanked)
            staging.replace(entry)
            changed += 1
    return changed


def imported_sources() -> list[str]:
    """The .py files of the modules imported so far that lie in the venv, sorted."""
    venv = os.path.realpath(sys.prefix) + os.sep
    files = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    return sorted(f for f in files if f and f.endswith(".py") and os.path.realpath(f).startswith(venv))


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: warm.py IMPORTED (the list of imported source files to write)")
    if not os.environ.get("NUMBA_CACHE_DIR"):
        sys.exit("warm.py: set NUMBA_CACHE_DIR to the cache directory the image ships")
    import_everything()
    number_array_expressions()
    compile_simulator()
    sources = imported_sources()
    Path(sys.argv[1]).write_text("".join(f"{source}\n" for source in sources))
    blanked = blank_addresses(os.environ["NUMBA_CACHE_DIR"])
    print(
        f"warm.py: {len(sources)} imported source files listed in {sys.argv[1]}; numba cache in"
        f" {os.environ['NUMBA_CACHE_DIR']} ({blanked} entries with addresses blanked)"
    )


if __name__ == "__main__":
    main()
