"""Job specs: strict validation, safe YAML, one-line errors, JSON Schema, `cluster-rl run` and `schema`."""

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from entrypoint.jobspec import (
    JOB_ENV_VAR,
    DiagnoseJob,
    SpecError,
    TrainJob,
    job_json_schema,
    load_job,
    parse_job,
    scenario_config,
    training_overrides,
    validate_name,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "jobs").glob("*.yaml"))
HEAD = "apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: {name: t}\n"
DIAGNOSE_HEAD = "apiVersion: cluster-code.rl/v1\nkind: DiagnoseJob\nmetadata: {name: d}\n"

FULL_TRAIN = """\
apiVersion: cluster-code.rl/v1
kind: TrainJob
metadata: {name: nightly-sim}
spec:
  mode: simulation
  episodes: 500
  steps: 100
  seed: 7
  device: auto
  resume: auto
  output: s3://my-models/cluster-agent/
  checkpointInterval: 300
  totalSteps: 2000000
  numEnvs: 1024
  training: {learningRate: 0.0003, numEnvs: 1024, gamma: 0.99, batchSize: 4096, numLayers: 2}
  simulation: {minNodes: 3, maxNodes: 30, maxFaults: 3, faultWeights: {crashed_pods: 2, dns_failure: 0.5}}
"""


def parse(text: str):
    return parse_job(text.encode(), "jobs/x.yaml")


def spec_error(text: str | bytes) -> str:
    with pytest.raises(SpecError) as err:
        parse_job(text if isinstance(text, bytes) else text.encode(), "jobs/x.yaml")
    message = str(err.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------- valid specs


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_jobs_are_valid(path):
    job = load_job(str(path))
    assert job.metadata.name
    scenario_config(job.spec)


def test_the_three_examples_exist_and_say_what_they_do():
    jobs = {p.name: load_job(str(p)) for p in EXAMPLES}
    assert {"train-sim.yaml", "train-nightly-s3.yaml", "diagnose-cluster.yaml"} <= set(jobs)
    assert jobs["train-sim.yaml"].spec.output.startswith("./")
    assert jobs["train-nightly-s3.yaml"].spec.output.startswith("s3://")
    diagnose = jobs["diagnose-cluster.yaml"]
    assert isinstance(diagnose, DiagnoseJob) and diagnose.spec.mode == "cluster"
    assert diagnose.spec.cluster.allow_writes is False and diagnose.spec.cluster.write_namespaces == []


def test_full_train_spec():
    job = parse(FULL_TRAIN)
    assert isinstance(job, TrainJob)
    spec = job.spec
    assert (spec.episodes, spec.steps, spec.seed, spec.total_steps, spec.num_envs) == (
        500,
        100,
        7,
        2_000_000,
        1024,
    )
    assert (spec.device, spec.resume, spec.checkpoint_interval) == ("auto", "auto", 300)
    assert training_overrides(spec) == {
        "learningRate": 0.0003,
        "numEnvs": 1024,
        "gamma": 0.99,
        "batchSize": 4096,
        "numLayers": 2,
    }
    scenario = scenario_config(spec)
    assert (scenario.min_nodes, scenario.max_nodes, scenario.max_faults, scenario.max_steps) == (
        3,
        30,
        3,
        100,
    )
    assert scenario.fault_weights == {"crashed_pods": 2.0, "dns_failure": 0.5}
    assert scenario.min_deployments == 3  # the simulator's default where the spec is silent


def test_defaults():
    train = parse(HEAD).spec
    assert (train.mode, train.device, train.resume, train.checkpoint_interval) == (
        "simulation",
        "auto",
        "auto",
        300,
    )
    assert train.episodes is None and train.output is None and training_overrides(train) == {}
    diagnose = parse(DIAGNOSE_HEAD + "spec: {}").spec
    assert (diagnose.mode, diagnose.steps, diagnose.policy, diagnose.model) == (
        "simulation",
        20,
        "model",
        None,
    )
    assert scenario_config(diagnose).max_steps == 20


def test_cluster_mode_with_writes_in_named_namespaces():
    job = parse(
        DIAGNOSE_HEAD
        + textwrap.dedent("""\
        spec:
          mode: cluster
          cluster: {context: prod, namespaces: [default, shop], allowWrites: true, writeNamespaces: [shop]}
        """)
    )
    assert job.spec.cluster.write_namespaces == ["shop"]


def test_steps_and_max_steps():
    assert scenario_config(parse(HEAD + "spec: {simulation: {maxSteps: 40}}").spec).max_steps == 40
    assert scenario_config(parse(HEAD + "spec: {steps: 40, simulation: {maxSteps: 40}}").spec).max_steps == 40
    assert spec_error(HEAD + "spec: {steps: 50, simulation: {maxSteps: 40}}") == (
        "jobs/x.yaml: spec.simulation.maxSteps: conflicts with spec.steps (50)"
    )


def test_yaml_anchors_and_merge_keys_are_allowed():
    job = parse(HEAD + "spec:\n  training:\n    <<: &base {learningRate: 0.001, gamma: 0.9}\n    gamma: 0.95\n")
    assert (job.spec.training.learning_rate, job.spec.training.gamma) == (0.001, 0.95)


# --------------------------------------------------------------------------------------------- field errors


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{episodes: 0}", "spec.episodes: must be >= 1"),
        ("{episodes: '500'}", "spec.episodes: must be an integer, got a string"),
        ("{episodes: 2.5}", "spec.episodes: must be an integer, got a number"),
        ("{episodes: yes}", "spec.episodes: must be an integer, got true or false"),
        ("{steps: 20000}", "spec.steps: must be <= 10000"),
        ("{checkpointInterval: 0}", "spec.checkpointInterval: must be >= 1"),
        ("{seed: -1}", "spec.seed: must be >= 0"),
        ("{device: gpu}", "spec.device: must be 'auto', 'cpu' or 'cuda', got 'gpu'"),
        ("{resume: always}", "spec.resume: must be 'auto' or 'never', got 'always'"),
        ("{promote: maybe}", "spec.promote: must be 'always', 'if-better' or 'never', got 'maybe'"),
        ("{mode: real}", "spec.mode: must be 'simulation' or 'cluster', got 'real'"),
        ("{training: {gamma: 0}}", "spec.training.gamma: must be > 0"),
        ("{training: {gamma: 1.5}}", "spec.training.gamma: must be <= 1"),
        ("{training: {learningRate: -0.1}}", "spec.training.learningRate: must be > 0"),
        ("{training: {numEnvs: 0}}", "spec.training.numEnvs: must be >= 1"),
        ("{training: {hiddenSize: 64.0}}", "spec.training.hiddenSize: must be an integer, got a number"),
        ("{training: {entropyCoefficient: -1}}", "spec.training.entropyCoefficient: must be >= 0"),
        ("{training: 3}", "spec.training: must be a mapping, got an integer"),
        ("{numEnvs: 4, training: {numEnvs: 8}}", "spec.numEnvs: conflicts with training.numEnvs (8)"),
        ("{output: ''}", "spec.output: must not be empty"),
        (
            "{output: 's3://My_Bucket/x/'}",
            "spec.output: s3://My_Bucket/x/: 'My_Bucket' is not a valid bucket name",
        ),
        ("{output: 's3://models/../x'}", "spec.output: s3://models/../x: '.' and '..' are not allowed"),
        (
            "{simulation: {minNodes: 600, maxNodes: 500}}",
            "spec.simulation.minNodes: must not exceed maxNodes (600 > 500)",
        ),
        ("{simulation: {maxNodes: 1001}}", "spec.simulation.maxNodes: must be between 3 and 1000, got 1001"),
        (
            "{simulation: {newFaultRate: 0.9}}",
            "spec.simulation.newFaultRate: must be between 0 and 0.5, got 0.9",
        ),
        (
            "{simulation: {maxPodsPerNode: 251}}",
            "spec.simulation.maxPodsPerNode: must be between 1 and 250, got 251",
        ),
        (
            "{simulation: {readOnlyShare: 1.5}}",
            "spec.simulation.readOnlyShare: must be between 0 and 1, got 1.5",
        ),
        (
            "{simulation: {faultWeights: {dns_failure: -1}}}",
            "spec.simulation.faultWeights.dns_failure: must be a finite number >= 0, got -1.0",
        ),
        (
            "{simulation: {faultWeights: {gremlins: 1}}}",
            "spec.simulation.faultWeights.gremlins: unknown fault (known: bad_rollout, config_error, crashed_pods,",
        ),
        (
            "{simulation: {min_nodes: 3}}",
            "spec.simulation.min_nodes: unknown field (known: minNodes, maxNodes,",
        ),
        ("{cluster: {context: prod}}", "spec.cluster: only used with mode: cluster"),
        ("{mode: cluster, simulation: {minNodes: 3}}", "spec.simulation: only used with mode: simulation"),
        (
            "{mode: cluster, cluster: {allowWrites: true}}",
            "spec.cluster.writeNamespaces: list the namespaces the agent may change (allowWrites is true)",
        ),
        (
            "{mode: cluster, cluster: {writeNamespaces: [shop]}}",
            "spec.cluster.writeNamespaces: only used with allowWrites: true",
        ),
        (
            "{mode: cluster, cluster: {namespaces: [a], allowWrites: true, writeNamespaces: [b]}}",
            "spec.cluster.writeNamespaces: not in namespaces: b",
        ),
        ("{mode: cluster, cluster: {namespaces: []}}", "spec.cluster.namespaces: must not be empty"),
        (
            "{mode: cluster, cluster: {namespaces: [Prod_1]}}",
            "spec.cluster.namespaces[0]: 'Prod_1' is not a valid namespace name",
        ),
        (
            "{mode: cluster, cluster: {allowWrites: 'false'}}",
            "spec.cluster.allowWrites: must be true or false, got a string",
        ),
        (
            "{episodez: 5}",
            "spec.episodez: unknown field (known: mode, episodes, steps, seed, device, resume, output,",
        ),
    ],
)
def test_train_spec_errors_name_the_field(spec, message):
    assert spec_error(HEAD + f"spec: {spec}\n").startswith(f"jobs/x.yaml: {message}")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{policy: expert, model: m.pt}", "spec.model: only used with policy: model (policy is expert)"),
        ("{policy: smart}", "spec.policy: must be 'model', 'expert' or 'random', got 'smart'"),
        ("{steps: 0}", "spec.steps: must be >= 1"),
        ("{report: 's3://a/x.json'}", "spec.report: s3://a/x.json: 'a' is not a valid bucket name"),
        ("{episodes: 5}", "spec.episodes: unknown field (known: mode, model, steps, seed, policy, report,"),
    ],
)
def test_diagnose_spec_errors_name_the_field(spec, message):
    assert spec_error(DIAGNOSE_HEAD + f"spec: {spec}\n").startswith(f"jobs/x.yaml: {message}")


@pytest.mark.parametrize(
    "text, message",
    [
        ("kind: TrainJob\nmetadata: {name: t}\n", "apiVersion: required"),
        (
            "apiVersion: cluster-code.rl/v2\nkind: TrainJob\nmetadata: {name: t}\n",
            "apiVersion: must be 'cluster-code.rl/v1', got 'cluster-code.rl/v2'",
        ),
        ("apiVersion: cluster-code.rl/v1\nmetadata: {name: t}\n", "kind: required"),
        (
            "apiVersion: cluster-code.rl/v1\nkind: EvalJob\n",
            "kind: must be TrainJob or DiagnoseJob, got 'EvalJob'",
        ),
        ("apiVersion: cluster-code.rl/v1\nkind: TrainJob\n", "metadata: required"),
        (
            "apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: {name: t}\nstatus: {}\n",
            "status: unknown field (known: apiVersion, kind, metadata, spec)",
        ),
        (
            "apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: {name: t, labels: {}}\n",
            "metadata.labels: unknown field (known: name)",
        ),
        ("- a\n- b\n", "expected a mapping with apiVersion, kind, metadata and spec"),
        ("", "empty file, expected a job spec (apiVersion, kind, metadata, spec)"),
        ("# only a comment\n", "empty file, expected a job spec (apiVersion, kind, metadata, spec)"),
    ],
)
def test_document_errors(text, message):
    assert spec_error(text) == f"jobs/x.yaml: {message}"


@pytest.mark.parametrize("name", ["../etc", "a/b", "Nightly", ".hidden", "a..b", "", "x" * 64, "-dash"])
def test_unsafe_job_names_are_refused(name):
    message = spec_error(f"apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: {{name: {json.dumps(name)}}}\n")
    assert message.startswith("jobs/x.yaml: metadata.name: ")


def test_several_problems_report_the_first_and_count_the_rest():
    assert spec_error(HEAD + "spec: {episodes: 0, steps: 0, seed: -1}") == (
        "jobs/x.yaml: spec.episodes: must be >= 1 (and 2 more problems)"
    )


def test_validate_name():
    assert validate_name("nightly-2024.06_01", "--run-name") == "nightly-2024.06_01"
    for bad in ("../x", "a/b", "UPPER", "a..b", "", "x" * 64):
        with pytest.raises(SpecError, match="^--run-name: "):
            validate_name(bad, "--run-name")
    with pytest.raises(SpecError, match="must be a string"):
        validate_name(5, "--run-name")


# --------------------------------------------------------------------------------------------- YAML safety


def test_yaml_syntax_error_gives_line_and_column():
    assert spec_error("apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: name: t\n") == (
        "jobs/x.yaml:3:15: mapping values are not allowed here"
    )
    assert spec_error(HEAD + "spec: {episodes: 5\n").startswith("jobs/x.yaml:5:1: while parsing a flow mapping")


def test_python_tags_are_refused_without_running_anything(tmp_path):
    marker = tmp_path / "pwned"
    message = spec_error(f"!!python/object/apply:os.system ['touch {marker}']\n")
    assert message.startswith("jobs/x.yaml:1:1: unsupported tag 'tag:yaml.org,2002:python/object/apply:os.system'")
    assert not marker.exists()


def test_billion_laughs_is_refused():
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    message = spec_error("\n".join(lines) + "\n")
    assert "more than 100 aliases" in message or "expands to more than 100000 nodes" in message


def test_alias_fan_out_under_the_alias_limit_is_still_bounded():
    lines = ["a: &a [" + ", ".join(["x"] * 2000) + "]", "b: &b [" + ", ".join(["*a"] * 60) + "]"]
    assert "expands to more than 100000 nodes" in spec_error("\n".join(lines) + "\n")


def test_recursive_alias_is_refused():
    assert "recursive alias" in spec_error("a: &a [*a]\n")


def test_deep_nesting_is_refused():
    assert "nested more than 32 levels deep" in spec_error("[" * 10_000 + "]" * 10_000)
    assert "nested more than 32 levels deep" in spec_error("a: " + "{b: " * 40 + "1" + "}" * 40)


def test_duplicate_keys_are_refused():
    assert spec_error(HEAD + "spec:\n  episodes: 5\n  episodes: 50\n") == "jobs/x.yaml:6:3: duplicate key 'episodes'"


def test_size_limit():
    assert spec_error(HEAD.encode() + b"#" * (1024 * 1024)) == "jobs/x.yaml: file is larger than 1024 KiB"


def test_not_utf8_and_several_documents():
    assert spec_error(b"kind: \xff\n") == "jobs/x.yaml: not UTF-8 text (byte 6)"
    assert spec_error(HEAD + "---\n" + HEAD).startswith(
        "jobs/x.yaml:4:1: expected a single document in the stream, but found another document"
    )


# --------------------------------------------------------------------------------------------- sources


def test_load_job_from_file_stdin_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "job.yaml"
    path.write_text(HEAD)
    assert load_job(str(path)).metadata.name == "t"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(DIAGNOSE_HEAD.encode())))
    assert isinstance(load_job("-"), DiagnoseJob)
    monkeypatch.setenv(JOB_ENV_VAR, str(path))
    assert load_job(None).kind == "TrainJob"


def test_load_job_errors_name_the_source(tmp_path, monkeypatch):
    monkeypatch.delenv(JOB_ENV_VAR, raising=False)
    with pytest.raises(SpecError, match=f"no job spec given: pass a file, '-' for stdin, or set {JOB_ENV_VAR}"):
        load_job(None)
    with pytest.raises(SpecError, match=r"^.*absent.yaml: cannot read: No such file or directory$"):
        load_job(str(tmp_path / "absent.yaml"))
    with pytest.raises(SpecError, match="cannot read: Is a directory"):
        load_job(str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"kind: [")))
    with pytest.raises(SpecError, match="^<stdin>:1:8: "):
        load_job("-")


# --------------------------------------------------------------------------------------------- JSON Schema


def test_json_schema_accepts_the_examples_and_rejects_unknown_fields():
    import jsonschema
    import yaml

    schema = job_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        validator.validate(yaml.safe_load(path.read_text()))
    bad = yaml.safe_load(HEAD + "spec: {episodez: 5}")
    assert not validator.is_valid(bad)
    assert not validator.is_valid(yaml.safe_load(HEAD + "spec: {training: {gamma: 2}}"))
    assert not validator.is_valid(yaml.safe_load(HEAD.replace("name: t", "name: ../t")))
    assert not validator.is_valid(yaml.safe_load(HEAD.replace("name: t", "name: a..b")))


# --------------------------------------------------------------------------------------------- commands


def cli(argv, capsys):
    from entrypoint.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_schema_command_prints_the_schema(capsys):
    code, out, err = cli(["schema"], capsys)
    assert (code, err) == (0, "")
    assert json.loads(out) == job_json_schema()


def test_run_check_validates_without_running(capsys, monkeypatch):
    code, out, _ = cli(["run", "--check", str(REPO / "jobs" / "train-sim.yaml")], capsys)
    assert (code, out) == (0, "TrainJob train-sim: valid (simulation)\n")
    monkeypatch.setenv(JOB_ENV_VAR, str(REPO / "jobs" / "diagnose-cluster.yaml"))
    code, out, _ = cli(["run", "--check"], capsys)
    assert (code, out) == (0, "DiagnoseJob diagnose-prod: valid (cluster)\n")


def test_run_with_a_bad_spec_exits_2_with_one_line_and_no_side_effect(tmp_path, capsys):
    output = tmp_path / "models"
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + f"spec: {{episodes: 0, output: {output}}}\n")
    code, out, err = cli(["run", str(path)], capsys)
    assert code == 2
    assert err == f"cluster-rl: {path}: spec.episodes: must be >= 1\n"
    assert out == "" and not output.exists()


def test_run_with_a_yaml_error_and_without_a_spec(tmp_path, capsys, monkeypatch):
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: name: t\n")
    assert cli(["run", str(path)], capsys)[::2] == (
        2,
        f"cluster-rl: {path}:3:15: mapping values are not allowed here\n",
    )
    monkeypatch.delenv(JOB_ENV_VAR, raising=False)
    code, _, err = cli(["run"], capsys)
    assert code == 2 and err.startswith("cluster-rl: no job spec given") and err.count("\n") == 1


def test_run_rejects_a_bad_spec_through_the_console_script(tmp_path):
    """The real process: stdin, exit status and stderr, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "entrypoint.cli", "run", "-"],
        input=HEAD + "spec: {seed: x}\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "cluster-rl: <stdin>: spec.seed: must be an integer, got a string\n"


def test_command_modules_import_nothing_heavy():
    code = (
        "import sys, entrypoint.commands.run, entrypoint.commands.schema, entrypoint.storage; "
        "print(sorted(m for m in ('pydantic', 'boto3', 'torch', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "[]"


# These two run real (tiny) jobs through the lead's `run_train_job` / `run_diagnose_job`.


def test_run_dispatches_a_train_job(tmp_path, capsys):
    output = tmp_path / "models"
    path = tmp_path / "train.yaml"
    path.write_text(
        HEAD
        + textwrap.dedent(f"""\
        spec:
          episodes: 2
          steps: 10
          seed: 1
          device: cpu
          resume: never
          output: {output}
          numEnvs: 4
          simulation: {{minNodes: 3, maxNodes: 4, maxDeployments: 4}}
        """)
    )
    code, _, err = cli(["run", str(path)], capsys)
    assert code == 0, err
    assert list(output.rglob("*.pt"))


def test_run_dispatches_a_diagnose_job(tmp_path, capsys):
    report = tmp_path / "report.json"
    path = tmp_path / "diagnose.yaml"
    path.write_text(DIAGNOSE_HEAD + f"spec: {{policy: expert, steps: 5, seed: 3, report: {report}}}\n")
    code, _, err = cli(["run", str(path)], capsys)
    assert code == 0, err
    assert json.loads(report.read_text())


# ---------------------------------------------------------------------------------------------
# One source per schema


def test_spec_sections_have_exactly_the_dataclasses_fields():
    from dataclasses import fields

    from entrypoint.jobspec import SimulationConfig, TrainingConfig
    from rl.sim.scenario import ScenarioConfig
    from rl.train import TRAINING_CONFIG_KEYS, TrainConfig

    assert set(SimulationConfig.model_fields) == {f.name for f in fields(ScenarioConfig)}
    settable = {f.name: f.metadata["key"] for f in fields(TrainConfig) if f.metadata.get("key")}
    assert {name: f.alias for name, f in TrainingConfig.model_fields.items()} == settable
    assert TRAINING_CONFIG_KEYS == {key: name for name, key in settable.items()}


@pytest.mark.parametrize(
    "key, value",
    [("numLayers", 33), ("hiddenSize", 8193), ("learningRate", 1.5), ("numEnvs", 0), ("gamma", 0.0)],
)
def test_spec_and_config_json_share_the_bounds_of_train_config(key, value):
    from entrypoint.config_file import check_training_config
    from entrypoint.errors import CliError

    with pytest.raises(SpecError, match=f"spec.training.{key}: must be"):
        parse_job((HEAD + f"spec: {{training: {{{key}: {value}}}}}\n").encode(), "job.yaml")
    with pytest.raises(CliError, match=f"trainingConfig.{key}: must be"):
        check_training_config({key: value})


def test_every_scenario_knob_is_settable_including_cascade_chance():
    job = parse_job((HEAD + "spec: {simulation: {cascadeChance: 0.4, newFaultRate: 0.1}}\n").encode(), "job.yaml")
    scenario = scenario_config(job.spec)
    assert (scenario.cascade_chance, scenario.new_fault_rate) == (0.4, 0.1)
    with pytest.raises(SpecError, match="spec.simulation.cascadeChance: must be between 0 and 1"):
        parse_job((HEAD + "spec: {simulation: {cascadeChance: 2.0}}\n").encode(), "job.yaml")


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_non_finite_numbers_in_a_spec_are_refused(value):
    with pytest.raises(SpecError, match="spec.training.learningRate"):
        parse_job((HEAD + f"spec: {{training: {{learningRate: {value}}}}}\n").encode(), "job.yaml")


def test_timeouts_in_a_spec_and_their_documented_defaults():
    from entrypoint import jobspec, storage
    from rl.kube.connection import DEFAULT_TIMEOUT_S

    assert jobspec.API_DEFAULT_TIMEOUT_S == DEFAULT_TIMEOUT_S
    job = parse_job((HEAD + "spec: {mode: cluster, s3Timeout: 5, cluster: {apiTimeout: 2.5}}\n").encode(), "job.yaml")
    assert job.spec.s3_timeout == 5 and job.spec.cluster.api_timeout == 2.5
    assert storage.DEFAULT_TIMEOUT_S == 60
    with pytest.raises(SpecError, match="spec.cluster.apiTimeout: must be <= 600"):
        parse_job((HEAD + "spec: {mode: cluster, cluster: {apiTimeout: 1000}}\n").encode(), "job.yaml")


@pytest.mark.parametrize("output", ["ftp://example.invalid/models", "http://x/y", "file:///tmp/x", "gs://b/p"])
def test_outputs_with_other_url_schemes_are_refused(output):
    with pytest.raises(SpecError, match="spec.output: unsupported scheme"):
        parse_job((HEAD + f"spec: {{output: '{output}'}}\n").encode(), "job.yaml")
