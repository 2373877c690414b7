"""The one way commands get a policy: random, expert, or a trained model from a path or s3:// URI.

Used by `diagnose` and `evaluate`. A missing or unusable model file exits 3 (`ExitCode.MODEL`),
an S3 problem 4 (`ExitCode.STORAGE`), a location with another URL scheme 2.
"""

from pathlib import Path

from entrypoint.choices import PolicyName
from entrypoint.errors import CliError, ExitCode
from entrypoint.prog import prog


def load_policy(name: PolicyName | str, model: str | None, num_envs: int, seed: int = 0):
    """`(policy, model_ref)` for `num_envs` clusters at once; `model_ref` is None unless a model.

    `model` is a local path, an s3:// object or prefix (its latest.json), or None for the default
    model under $CLUSTER_CODE_HOME.
    """
    from rl.policies import ExpertPolicy, RandomPolicy

    name = PolicyName(name)
    if name is PolicyName.expert:
        return ExpertPolicy(num_envs), None
    if name is PolicyName.random:
        return RandomPolicy(num_envs, seed=seed), None
    path, ref = resolve_model_file(model)
    return model_policy(path), ref


def resolve_model_file(model: str | None) -> tuple[Path, str]:
    """The local file for a model reference (S3 models are downloaded, verified and cached)."""
    from entrypoint import home, storage

    ref = model or str(home.default_model_path())
    try:
        storage.check_location(ref, "--model")
    except storage.StorageError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if storage.is_s3_uri(ref):
        try:
            return storage.resolve_model(ref, home.cluster_code_home()), ref
        except storage.StorageError as err:
            raise CliError(str(err), ExitCode.STORAGE) from None
    path = Path(ref).expanduser()
    if not path.exists():
        hint = f"run `{prog()} train` first" if model is None else "check the path"
        raise CliError(f"no model at {path}: {hint}, or use --policy expert", ExitCode.MODEL)
    return path, ref


def model_policy(path: Path):
    """A greedy `ModelPolicy` from a model file; ModelError becomes exit 3."""
    from rl.model import ModelError, ModelPolicy, load_model

    try:
        network, _ = load_model(path)
    except ModelError as err:
        raise CliError(str(err), ExitCode.MODEL) from None
    return ModelPolicy(network)
