"""Job specs: YAML files that describe one training or diagnosis run (`cluster-rl run FILE`).

    apiVersion: cluster-code.rl/v1
    kind: TrainJob            # or DiagnoseJob
    metadata: {name: nightly-sim}
    spec: {...}               # TrainSpec or DiagnoseSpec below, camelCase keys

Validation is strict: unknown fields, wrong types (a quoted "500" is not a number) and values out
of range are errors. Every error is a SpecError whose str() is one line naming the file and the
field ("jobs/x.yaml: spec.episodes: must be >= 1") or the line and column of a YAML syntax error.
A field left out (or null) means the command's default, unless a default is given here.
"""

import os
import re
import stat
import sys
from dataclasses import fields as dataclass_fields
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.alias_generators import to_camel

from entrypoint.choices import DEFAULT_PROMOTE, Promote
from entrypoint.names import NAME_PATTERN, check_name, check_namespace
from entrypoint.storage import DEFAULT_TIMEOUT_S as S3_DEFAULT_TIMEOUT_S
from entrypoint.storage import StorageError, check_location
from rl.safe_yaml import MAX_BYTES, YamlError, load_yaml

API_VERSION = "cluster-code.rl/v1"
JOB_ENV_VAR = "CLUSTER_RL_JOB"
KINDS = ("TrainJob", "DiagnoseJob")
API_DEFAULT_TIMEOUT_S = 10.0  # rl.kube.connection.DEFAULT_TIMEOUT_S, without importing the kubernetes client


class SpecError(Exception):
    """A job spec that cannot be used; str() is the complete one-line message."""


def validate_name(name: str, field: str) -> str:
    """Check a name that ends up in paths or S3 keys (job names, `--run-name`); raise SpecError."""
    try:
        return check_name(name, field)
    except ValueError as err:
        raise SpecError(str(err)) from None


def _location(value: str) -> str:
    """A local path or an s3:// URI, checked for shape (not existence); other URL schemes are refused."""
    try:
        return check_location(value, "location")
    except StorageError as err:
        raise ValueError(str(err).removeprefix("location: ")) from None


def _namespace(value: str) -> str:
    return _bare(check_namespace, value)


def _bare(check, value):
    """Run a `check(value, field)` that prefixes its message with the field; pydantic adds the path."""
    try:
        return check(value, "name")
    except ValueError as err:
        raise ValueError(str(err).partition(": ")[2]) from None


Location = Annotated[str, AfterValidator(_location)]
Namespace = Annotated[str, AfterValidator(_namespace)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="Random seed; the same seed gives the same run.")]
S3Timeout = Annotated[
    float,
    Field(
        ge=1,
        le=3600,
        description=f"Seconds one S3 request may take, retries included (default {S3_DEFAULT_TIMEOUT_S:g}).",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", alias_generator=to_camel, allow_inf_nan=False)


class Metadata(_Strict):
    name: Annotated[
        str,
        AfterValidator(lambda v: _bare(check_name, v)),
        Field(
            description="Names the run in paths and S3 keys.",
            json_schema_extra={"pattern": NAME_PATTERN, "not": {"pattern": r"\.\."}},
        ),
    ]


def _training_model() -> type[BaseModel]:
    """`spec.training`: the settable fields of `rl.train.TrainConfig`, under their camelCase keys,
    with the bounds declared there (config.json's `pufferlib.trainingConfig` reads the same keys)."""
    from rl.train_config import training_settings

    definitions = {}
    for f in training_settings():
        kind = {"int": int, "float": float}.get(f.type, f.type)
        description = f.metadata["help"] or None
        definitions[f.name] = (
            kind | None,
            Field(None, alias=f.metadata["key"], description=description, **f.metadata["bounds"]),
        )
    model = create_model("TrainingConfig", __base__=_Strict, **definitions)
    model.__doc__ = "PPO settings, the keys of config.json `pufferlib.trainingConfig`; unset keys keep their defaults."
    return model


def _simulation_model() -> type[BaseModel]:
    """`spec.simulation`: every field of `rl.sim.scenario.ScenarioConfig` (ranges checked there),
    so a knob added to the simulator is settable in a job spec without touching this file."""
    from rl.sim.scenario import ScenarioConfig

    hints = get_type_hints(ScenarioConfig)
    definitions = {}
    for f in dataclass_fields(ScenarioConfig):
        kind = hints.get(f.name, Any)
        if kind is dict or get_origin(kind) is dict:
            kind = dict[str, float]
        elif kind not in (int, float, bool, str):
            kind = Any
        description = FIELD_DESCRIPTIONS.get(f.name)
        definitions[f.name] = (kind | None if kind is not Any else Any, Field(None, description=description))
    model = create_model("SimulationConfig", __base__=_Strict, **definitions)
    model.__doc__ = "Scenario knobs, the fields of `rl.sim.scenario.ScenarioConfig` (ranges checked there)."
    return model


FIELD_DESCRIPTIONS = {
    "fault_weights": "Fault name (e.g. crashed_pods) to relative weight; faults not listed are not injected.",
    "cascade_chance": "Chance that a fault left alone sets off its follow-on fault.",
    "max_steps": "Steps per episode (the same as spec.steps).",
}
TrainingConfig = _training_model()
SimulationConfig = _simulation_model()


class ClusterConfig(_Strict):
    """A real cluster. Read-only unless allowWrites is true, and then only in writeNamespaces."""

    kubeconfig: Location | None = Field(None, description="Kubeconfig file; default: in-cluster or ~/.kube/config.")
    context: str | None = Field(None, min_length=1, description="Kubeconfig context; default: the current one.")
    namespaces: list[Namespace] | None = Field(None, min_length=1, description="Namespaces to look at.")
    allow_writes: bool = Field(False, description="Let the agent change the cluster (restart, scale, drain).")
    write_namespaces: list[Namespace] = Field(default_factory=list, description="Where writes are allowed.")
    api_timeout: float | None = Field(
        None,
        ge=0.1,
        le=600,
        description=f"Connect and read timeout of each API request in seconds (default {API_DEFAULT_TIMEOUT_S:g}).",
    )

    @model_validator(mode="after")
    def _writes_are_explicit(self):
        if self.write_namespaces and not self.allow_writes:
            raise _FieldError("writeNamespaces", "only used with allowWrites: true")
        if self.allow_writes and not self.write_namespaces:
            raise _FieldError("writeNamespaces", "list the namespaces the agent may change (allowWrites is true)")
        if self.namespaces is not None:
            outside = sorted(set(self.write_namespaces) - set(self.namespaces))
            if outside:
                raise _FieldError("writeNamespaces", f"not in namespaces: {', '.join(outside)}")
        return self


class _FieldError(ValueError):
    """Raised by a model validator to blame one field of that model."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")


Mode = Literal["simulation", "cluster"]


class _Spec(_Strict):
    @model_validator(mode="after")
    def _blocks_match_mode(self):
        if self.mode == "simulation" and self.cluster is not None:
            raise _FieldError("cluster", "only used with mode: cluster")
        if self.mode == "cluster" and self.simulation is not None:
            raise _FieldError("simulation", "only used with mode: simulation")
        return self


class TrainSpec(_Spec):
    mode: Mode = Field("simulation", description="Train on the simulator or on a real cluster.")
    episodes: int | None = Field(None, ge=1, le=10**9)
    steps: int | None = Field(None, ge=1, le=10_000, description="Steps per episode.")
    seed: Seed | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    resume: Literal["auto", "never"] = Field(
        "auto", description="auto: continue the newest checkpoint of this job's run, or start the run if it has none."
    )
    output: Location | None = Field(None, description="Local directory or s3://bucket/prefix/ for the model.")
    checkpoint_interval: int = Field(300, ge=1, le=86_400, description="Seconds between checkpoints.")
    total_steps: int | None = Field(None, ge=1, le=10**12, description="Environment steps; overrides episodes.")
    num_envs: int | None = Field(None, ge=1, le=65536, description="Same as training.numEnvs.")
    s3_timeout: S3Timeout | None = None
    promote: Literal[tuple(p.value for p in Promote)] = Field(  # the choices of `train --promote`
        DEFAULT_PROMOTE.value,
        description="Whether the model becomes the default: always; if-better: when it is not worse than the "
        "current default on the same clusters, or there is none; never.",
    )
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    simulation: SimulationConfig | None = None
    cluster: ClusterConfig | None = None

    @model_validator(mode="after")
    def _num_envs_agree(self):
        if self.num_envs is not None and self.training.num_envs not in (None, self.num_envs):
            raise _FieldError("numEnvs", f"conflicts with training.numEnvs ({self.training.num_envs})")
        return self


class DiagnoseSpec(_Spec):
    mode: Mode = Field("simulation", description="Diagnose a simulated cluster or a real one.")
    model: Location | None = Field(None, description="Model file or s3:// URI; default: the local default model.")
    steps: int = Field(20, ge=1, le=10_000, description="Diagnosis steps.")
    seed: Seed | None = None
    policy: Literal["model", "expert", "random"] = "model"
    report: Location | None = Field(None, description="Where to write the JSON report: a path or s3:// URI.")
    s3_timeout: S3Timeout | None = None
    deadline: float | None = Field(
        None,
        ge=1,
        le=86_400,
        description="Seconds the whole diagnosis may take (default 300); past it, the report of what was read "
        "so far and exit 5.",
    )
    simulation: SimulationConfig | None = None
    cluster: ClusterConfig | None = None

    @model_validator(mode="after")
    def _model_needs_model_policy(self):
        if self.model is not None and self.policy != "model":
            raise _FieldError("model", f"only used with policy: model (policy is {self.policy})")
        return self


class TrainJob(_Strict):
    api_version: Literal["cluster-code.rl/v1"]
    kind: Literal["TrainJob"]
    metadata: Metadata
    spec: TrainSpec = Field(default_factory=TrainSpec)


class DiagnoseJob(_Strict):
    api_version: Literal["cluster-code.rl/v1"]
    kind: Literal["DiagnoseJob"]
    metadata: Metadata
    spec: DiagnoseSpec = Field(default_factory=DiagnoseSpec)


Job = TrainJob | DiagnoseJob
_MODELS = {"TrainJob": TrainJob, "DiagnoseJob": DiagnoseJob}


# ---------------------------------------------------------------------------------------------
# Loading


def load_job(source: str | None = None) -> Job:
    """Load and validate a job spec from a file, "-" (stdin) or, when `source` is None, $CLUSTER_RL_JOB."""
    if source is None:
        source = os.environ.get(JOB_ENV_VAR)
        if not source:
            raise SpecError(f"no job spec given: pass a file, '-' for stdin, or set {JOB_ENV_VAR}")
    label = "<stdin>" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            data = _read_regular_file(source)
    except OSError as err:
        raise SpecError(f"{label}: cannot read: {err.strerror or err}") from None
    return parse_job(data, label)


def _read_regular_file(source: str) -> bytes:
    """At most MAX_BYTES + 1 bytes of a regular file; a FIFO or a device is refused, not waited on."""
    fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise SpecError(f"{source}: not a regular file")
        return fh.read(MAX_BYTES + 1)


def parse_job(data: bytes, source: str) -> Job:
    """Validate YAML bytes as a job spec; `source` names it in error messages."""
    try:
        document = load_yaml(data, source)
    except YamlError as err:
        raise SpecError(str(err)) from None
    if document is None:
        raise SpecError(f"{source}: empty file, expected a job spec (apiVersion, kind, metadata, spec)")
    if not isinstance(document, dict):
        raise SpecError(f"{source}: expected a mapping with apiVersion, kind, metadata and spec")
    kind = document.get("kind")
    if kind not in _MODELS:
        problem = "required" if kind is None else f"must be TrainJob or DiagnoseJob, got {kind!r}"
        raise SpecError(f"{source}: kind: {problem}")
    model = _MODELS[kind]
    try:
        job = model.model_validate(document)
    except ValidationError as err:
        raise SpecError(f"{source}: {_describe(err, model)}") from None
    scenario_config(job.spec, source)  # surfaces the simulator's own range checks now, not mid-run
    return job


def job_json_schema() -> dict:
    """JSON Schema (draft 2020-12) of job spec files, for editors and CI linters."""
    adapter = TypeAdapter(Annotated[Union[TrainJob, DiagnoseJob], Field(discriminator="kind")])  # noqa: UP007
    schema = adapter.json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cluster-rl job spec",
        "description": "A TrainJob or DiagnoseJob for `cluster-rl run`.",
        **schema,
    }


# ---------------------------------------------------------------------------------------------
# What the commands read from a validated spec


def training_overrides(spec: TrainSpec) -> dict[str, Any]:
    """The training keys the spec sets, camelCase as in config.json (spec.numEnvs folded in)."""
    values = spec.training.model_dump(by_alias=True, exclude_none=True)
    if spec.num_envs is not None:
        values["numEnvs"] = spec.num_envs
    return values


def cluster_target(spec: TrainSpec | DiagnoseSpec) -> dict[str, Any]:
    """Which cluster a spec reads: `context`, `namespaces` (None: all) and `kubeconfig` (None: default)."""
    cluster = spec.cluster
    return {
        "context": cluster.context if cluster else None,
        "namespaces": list(cluster.namespaces) if cluster and cluster.namespaces else None,
        "kubeconfig": str(cluster.kubeconfig) if cluster and cluster.kubeconfig else None,
        "api_timeout": cluster.api_timeout if cluster else None,
    }


def scenario_config(spec: TrainSpec | DiagnoseSpec, source: str | None = None):
    """The `ScenarioConfig` a spec asks for (defaults where it is silent: training's scenario for a
    TrainJob, the default scenario for a diagnosis); raises SpecError.

    `spec.steps` is the episode length, so it becomes `max_steps` unless simulation.maxSteps is set.
    """
    from rl.sim.scenario import ScenarioConfig
    from rl.train_config import training_scenario

    prefix = f"{source}: " if source else ""
    values = spec.simulation.model_dump(exclude_none=True) if spec.simulation else {}
    steps_explicit = "steps" in spec.model_fields_set
    if "max_steps" in values:
        if steps_explicit and spec.steps is not None and values["max_steps"] != spec.steps:
            raise SpecError(f"{prefix}spec.simulation.maxSteps: conflicts with spec.steps ({spec.steps})")
    elif spec.steps is not None:
        values["max_steps"] = spec.steps
    try:
        return training_scenario(**values) if isinstance(spec, TrainSpec) else ScenarioConfig(**values)
    except ValueError as err:
        field, _, problem = str(err).partition(": ")
        head, dot, rest = field.partition(".")
        location = f"spec.simulation.{to_camel(head)}{dot}{rest}"
        for name in SimulationConfig.model_fields:  # the simulator's names, as the spec spells them
            problem = re.sub(rf"\b{name}\b", to_camel(name), problem)
        raise SpecError(f"{prefix}{location}: {problem}") from None


# ---------------------------------------------------------------------------------------------
# Error messages


_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "dict": "a mapping",
    "list": "a list",
    "NoneType": "null",
    "datetime": "a date",
    "date": "a date",
}
_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _describe(err: ValidationError, model: type[BaseModel]) -> str:
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    message = _message(first, model, loc)
    if first["type"] == "value_error" and isinstance(first.get("ctx", {}).get("error"), _FieldError):
        field, _, message = message.partition(": ")
        loc.append(field)
    more = len(errors) - 1
    more_text = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    path = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc).lstrip(".")
    return f"{path or '(top level)'}: {message}{more_text}"


def _message(error: dict, model: type[BaseModel], loc: list[str]) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    got = _TYPE_NAMES.get(type(error.get("input")).__name__, type(error.get("input")).__name__)
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        known = _known_fields(model, loc[:-1])
        return "unknown field" + (f" (known: {', '.join(known)})" if known else "")
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]}, got {got}"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        bound = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {bound:g}" if isinstance(bound, float) else f"must be {bounds[kind]} {bound}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}, got {error.get('input')!r}"
    if kind == "too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else error["msg"].lower()
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"][0].lower() + error["msg"][1:]


def _known_fields(model: type[BaseModel], loc: list[str]) -> list[str]:
    """camelCase field names of the model found by following `loc` (aliases) from `model`."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        by_alias = {(f.alias or name): f for name, f in current.model_fields.items()}
        if part not in by_alias:
            return []
        current = _model_in(by_alias[part].annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            if (found := _model_in(arg)) is not None:
                return found
    return None


def load_job_for(source: str, kind: str) -> Job:
    """The job spec a command's `--job` names, which must be of `kind`; a CliError (exit 2) otherwise."""
    from entrypoint.errors import CliError, ExitCode

    try:
        loaded = load_job(source)
    except SpecError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if loaded.kind != kind:
        raise CliError(f"{source}: kind: expected {kind} here, got {loaded.kind}", ExitCode.USAGE)
    return loaded
