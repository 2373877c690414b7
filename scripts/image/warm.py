"""Run once at image build time, in the builder's venv, with `--no-compile` installs.

1. Imports what a run of `cluster-rl` imports, so Python writes bytecode (.pyc) for exactly those
   modules: the runtime image is read-only and would otherwise recompile them at every start, while
   byte-compiling every installed module would add about 200 MB of .pyc that no run reads.
2. Steps the simulator through `ClusterEnv` and `ClusterPufferEnv`, so numba compiles its kernels
   into NUMBA_CACHE_DIR, which the image ships as the seed of its runtime cache
   (see numba_cache_seed.py).
A failure here fails the build: an image whose modules do not import is broken.
"""

import importlib
import os
import pkgutil
import sys

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


def import_everything() -> int:
    count = 0
    for name in THIRD_PARTY:
        importlib.import_module(name)
        count += 1
    for package_name in OUR_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
            importlib.import_module(module.name)
            count += 1
    import boto3

    # Creating a client loads botocore's service model and the modules that handle it.
    boto3.session.Session().client("s3", region_name="us-east-1")
    return count


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


def main() -> None:
    if not os.environ.get("NUMBA_CACHE_DIR"):
        sys.exit("warm.py: set NUMBA_CACHE_DIR to the cache directory the image ships")
    count = import_everything()
    compile_simulator()
    print(f"warm.py: byte-compiled {count} imported modules; numba cache in {os.environ['NUMBA_CACHE_DIR']}")


if __name__ == "__main__":
    main()
