"""`cluster-rl diagnose`: let an agent look at a cluster, act, and report what it found."""

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import typer

from entrypoint.commands.evaluate import OutputFormat
from entrypoint.errors import CliError, ExitCode

DEFAULT_STEPS = 20


@dataclass
class DiagnoseOptions:
    model: str | None = None  # local path, s3:// object or prefix; None: the default model
    steps: int = DEFAULT_STEPS
    seed: int | None = None
    policy: str = "model"
    output: str = "text"
    report: str | None = None  # also write the JSON report here (path or s3:// URI)
    simulation: bool = True
    scenario: object | None = None
    context: str | None = None
    namespaces: list[str] | None = None
    kubeconfig: str | None = None
    allow_writes: bool = False
    write_namespaces: list[str] = field(default_factory=list)


def diagnose(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model file, or an s3:// object or prefix (its latest model).  [default: $CLUSTER_CODE_HOME/models/cluster_agent.pt]",
            show_default=False,
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            "-s",
            min=1,
            max=10_000,
            help="Most actions the agent may take.  [default: 20]",
            show_default=False,
        ),
    ] = None,
    no_simulation: Annotated[
        bool,
        typer.Option(
            "--no-simulation", help="Diagnose the real cluster of your kubeconfig (read-only unless --allow-writes)."
        ),
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Seed of the simulated cluster.")] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="model (the trained agent), expert (a scripted runbook) or random.  [default: model]",
            show_default=False,
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o", help="text or json.")] = OutputFormat.text,
    report: Annotated[
        str | None, typer.Option("--report", help="Also write the JSON report to this file or s3:// URI.")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context (with --no-simulation).")] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Namespace to look at; repeatable.  [default: all]", show_default=False),
    ] = None,
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes",
            help="Let remedies change the cluster, only in --write-namespace namespaces. Without it they are server-side dry runs.",
        ),
    ] = False,
    write_namespace: Annotated[
        list[str] | None,
        typer.Option("--write-namespace", help="Namespace where --allow-writes may change things; repeatable."),
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="A DiagnoseJob spec file; flags given here override it.")
    ] = None,
) -> int:
    """Let the agent diagnose a cluster step by step, then summarise what it found and what to do.

    The agent acts greedily. Each step shows the action, the agent's confidence in it, its
    estimate of the state's value, the reward, the result and the issues left. The summary lists
    findings with evidence, what was done, and the kubectl commands a human would run next.
    """
    opts = DiagnoseOptions()
    if job is not None:
        from entrypoint.commands.train import _load_job

        opts = options_from_job(_load_job(job, "DiagnoseJob"))
    given = {
        "model": model,
        "steps": steps,
        "seed": seed,
        "policy": policy,
        "report": report,
        "context": context,
        "namespaces": namespace,
    }
    opts = replace(opts, **{k: v for k, v in given.items() if v is not None})
    opts.output = output.value
    if no_simulation:
        opts.simulation = False
    if allow_writes:
        opts.allow_writes = True
    if write_namespace:
        opts.write_namespaces = list(write_namespace)
    if steps is not None and opts.scenario is not None:
        opts.scenario = replace(opts.scenario, max_steps=steps)
    return execute_diagnosis(opts)


def run_diagnose_job(job) -> int:
    """Run a validated DiagnoseJob (from `cluster-rl run`): the JSON report goes to stdout."""
    opts = options_from_job(job)
    opts.output = "json"
    return execute_diagnosis(opts)


def options_from_job(job) -> DiagnoseOptions:
    from entrypoint.jobspec import SpecError, cluster_target, scenario_config

    spec = job.spec
    try:
        scenario = scenario_config(spec)
    except SpecError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    cluster = spec.cluster
    return DiagnoseOptions(
        model=str(spec.model) if spec.model else None,
        steps=spec.steps,
        seed=spec.seed,
        policy=spec.policy,
        report=str(spec.report) if spec.report else None,
        simulation=spec.mode == "simulation",
        scenario=scenario,
        **cluster_target(spec),
        allow_writes=bool(cluster and cluster.allow_writes),
        write_namespaces=list(cluster.write_namespaces) if cluster else [],
    )


# ---------------------------------------------------------------------------------------------


def execute_diagnosis(opts: DiagnoseOptions) -> int:
    if opts.policy not in ("model", "expert", "random"):
        raise CliError(f"--policy: must be model, expert or random, got {opts.policy!r}", ExitCode.USAGE)
    if opts.allow_writes and not opts.write_namespaces:
        raise CliError("--allow-writes needs --write-namespace: the namespaces the agent may change", ExitCode.USAGE)
    agent, model_ref = _make_agent(opts)
    env = _make_env(opts)
    try:
        report = _run_episode(env, agent, opts, model_ref)
    finally:
        env.close()
    if opts.output == "json":
        print(json.dumps(report))
    else:
        _print_text(report)
    if opts.report:
        _write_report(opts.report, report)
    return int(ExitCode.OK)


def _make_agent(opts: DiagnoseOptions):
    from rl.policies import ExpertPolicy, RandomPolicy

    if opts.policy == "expert":
        return ExpertPolicy(1), None
    if opts.policy == "random":
        return RandomPolicy(1, seed=opts.seed or 0), None

    from entrypoint import home
    from entrypoint.storage import StorageError, is_s3_uri, resolve_model
    from rl.model import ModelError, ModelPolicy, load_model

    ref = opts.model or str(home.default_model_path())
    if is_s3_uri(ref):
        try:
            path = resolve_model(ref, home.cluster_code_home())
        except StorageError as err:
            raise CliError(str(err), ExitCode.STORAGE) from None
    else:
        path = Path(ref)
        if not path.exists():
            hint = "run `cluster-rl train` first" if opts.model is None else "check the path"
            raise CliError(f"no model at {path}: {hint}, or use --policy expert", ExitCode.MODEL)
    try:
        network, _ = load_model(path)
    except ModelError as err:
        raise CliError(str(err), ExitCode.MODEL) from None
    return ModelPolicy(network), str(ref)


def _make_env(opts: DiagnoseOptions):
    from rl.env import ClusterEnv
    from rl.sim.scenario import ScenarioConfig

    if opts.simulation:
        scenario = opts.scenario or ScenarioConfig(max_steps=opts.steps)
        return ClusterEnv(max_steps=opts.steps, scenario=scenario)
    from rl.kube import KubeBackend, KubeError

    try:
        backend = KubeBackend(
            context=opts.context,
            namespaces=opts.namespaces,
            kubeconfig=opts.kubeconfig,
            allow_writes=opts.allow_writes,
            write_namespaces=opts.write_namespaces or None,
        )
    except KubeError as err:
        raise CliError(str(err), ExitCode.CLUSTER) from None
    except ValueError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    return ClusterEnv(context=opts.context, simulation_mode=False, max_steps=opts.steps, backend=backend)


def _run_episode(env, agent, opts: DiagnoseOptions, model_ref) -> dict:
    from rl.kube import KubeError

    try:
        return _episode(env, agent, opts, model_ref)
    except KubeError as err:  # the API server went away or started refusing mid-episode
        raise CliError(str(err), ExitCode.CLUSTER) from None


def _episode(env, agent, opts: DiagnoseOptions, model_ref) -> dict:
    from rl.actions import ClusterAction

    observation, info = env.reset(seed=opts.seed)
    agent.reset(None)
    steps = []
    terminated = truncated = False
    while not (terminated or truncated):
        batch = observation[None, :]
        confidence = value = None
        if hasattr(agent, "evaluate"):  # a model: greedy action, its probability and the state value
            actions, confidences, values = agent.evaluate(batch)
            action = int(actions[0])
            confidence, value = round(float(confidences[0]), 4), round(float(values[0]), 4)
        else:
            action = int(agent.act(batch)[0])
        observation, reward, terminated, truncated, info = env.step(action)
        result = info["action_result"]
        steps.append(
            {
                "step": info["step"],
                "action": ClusterAction(action).name,
                "confidence": confidence,
                "value": value,
                "reward": round(reward, 4),
                "result": result["message"],
                "success": result["success"],
                "issues": list(info["issues"]),
            }
        )
    resolved = info.get("outcome") == "resolved"  # the agent said it was done (WAIT), and it was
    report = {
        "mode": "simulation" if opts.simulation else "cluster",
        "policy": opts.policy,
        "model": model_ref,
        "steps": steps,
        "findings": _findings(env, info),
        "actions_taken": _remedies(steps),
        "resolved": resolved,
        "total_reward": round(float(info["total_reward"]), 4),
    }
    if not env.simulation_mode:
        report["degraded"] = info.get("degraded", [])
        report["writes_allowed"] = opts.allow_writes
    return report


def _findings(env, info) -> list[dict]:
    from entrypoint.recommendations import FOR_FAULT, for_finding
    from rl.sim.faults import DESCRIPTIONS, HUMAN_ONLY

    if not env.simulation_mode:
        return [{"issue": issue, "status": "open", "recommended": for_finding(issue)} for issue in info["issues"]]
    findings = []
    diagnosed = set(env.diagnosed_faults())
    active = set(env.active_faults())
    for fault in sorted(set(env.seen_faults) | active):
        if fault not in active:
            status = "fixed"
        elif fault in HUMAN_ONLY and fault in diagnosed:
            status = "diagnosed: needs a human"
        elif fault in diagnosed:
            status = "diagnosed, not yet fixed"
        else:
            status = "not found by the agent"
        findings.append(
            {
                "issue": DESCRIPTIONS[fault],
                "fault": fault.name.lower(),
                "status": status,
                "evidence": env.evidence(fault),
                "recommended": FOR_FAULT[fault] if status != "fixed" else [],
            }
        )
    return findings


def _remedies(steps) -> list[str]:
    from rl.actions import REMEDIATION_ACTIONS

    names = {a.name for a in REMEDIATION_ACTIONS}
    return [f"step {s['step']}: {s['result']}" for s in steps if s["action"] in names]


def _print_text(report: dict) -> None:
    """Plain lines, readable in a terminal and in `kubectl logs` alike."""
    model = f", model {report['model']}" if report["model"] else ""
    print(f"diagnose: {report['mode']}, policy {report['policy']}{model}")
    for s in report["steps"]:
        confidence = "" if s["confidence"] is None else f"  confidence {s['confidence']:.0%}"
        value = "" if s["value"] is None else f"  value {s['value']:+.2f}"
        print(
            f"step {s['step']:>3}  {s['action']:<22}{confidence}{value}  reward {s['reward']:+.2f}  "
            f"-> {s['result']}  ({len(s['issues'])} issue(s) left)"
        )
    print(
        f"\n{'Resolved' if report['resolved'] else 'Not resolved'} in {len(report['steps'])} steps, "
        f"total reward {report['total_reward']:+.2f}"
    )
    if report.get("degraded"):
        print("Could not read: " + "; ".join(report["degraded"]))
    print("\nFindings:")
    if not report["findings"]:
        print("  nothing wrong found")
    for f in report["findings"]:
        print(f"  - {f['issue']} [{f['status']}]")
        if f.get("evidence"):
            print(f"    evidence: {f['evidence']}")
    if report["actions_taken"]:
        print("\nWhat was done:")
        for line in report["actions_taken"]:
            print(f"  - {line}")
    commands = [c for f in report["findings"] for c in f.get("recommended", [])]
    if commands:
        print("\nNext steps:")
        for command in dict.fromkeys(commands):
            print(f"  $ {command}")


def _write_report(target: str, report: dict) -> None:
    import os
    import tempfile

    from entrypoint.storage import is_s3_uri

    data = json.dumps(report, indent=2).encode()
    if is_s3_uri(target):
        from entrypoint.storage import StorageError, upload_report

        try:
            upload_report(data, target)
        except StorageError as err:
            raise CliError(str(err), ExitCode.STORAGE) from None
        return
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as err:
        raise CliError(f"--report: cannot write {path}: {err.strerror or err}", ExitCode.USAGE) from None
