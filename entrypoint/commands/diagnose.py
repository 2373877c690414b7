"""`cluster-rl diagnose`: let an agent look at a cluster, act, and report what it found."""

import json
import time
from dataclasses import dataclass, field, replace
from typing import Annotated

import typer

from entrypoint.choices import OutputFormat, PolicyName
from entrypoint.errors import CliError, ExitCode, warn

DEFAULT_STEPS = 20
DEFAULT_DEADLINE_S = 300.0


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
    api_timeout: float | None = None  # seconds per API request; None: rl.kube's default
    s3_timeout: float | None = None  # seconds per S3 request, retries included; None: storage's default
    deadline: float = DEFAULT_DEADLINE_S  # seconds the whole diagnosis may take


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
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed of the simulated cluster, 0 to 2^32-1.")
    ] = None,
    policy: Annotated[
        PolicyName | None,
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
    api_timeout: Annotated[
        float | None,
        typer.Option(
            "--api-timeout",
            min=0.1,
            max=600,
            help="Connect and read timeout of each Kubernetes API request, in seconds.  [default: 10]",
            show_default=False,
        ),
    ] = None,
    s3_timeout: Annotated[
        float | None,
        typer.Option(
            "--s3-timeout",
            min=1,
            max=3600,
            help="Seconds one S3 request may take, retries included.  [default: 60]",
            show_default=False,
        ),
    ] = None,
    deadline: Annotated[
        float | None,
        typer.Option(
            "--deadline",
            min=1,
            max=86_400,
            help="Seconds the whole diagnosis may take; past it, the report of what was read so far and exit 5.  "
            "[default: 300]",
            show_default=False,
        ),
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
        from entrypoint.jobspec import load_job_for  # pydantic: half a second, only for job specs

        opts = options_from_job(load_job_for(job, "DiagnoseJob"))
    given = {
        "model": model,
        "steps": steps,
        "seed": seed,
        "policy": policy.value if policy is not None else None,
        "report": report,
        "context": context,
        "namespaces": namespace,
        "api_timeout": api_timeout,
        "s3_timeout": s3_timeout,
        "deadline": deadline,
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
        s3_timeout=spec.s3_timeout,
        deadline=float(spec.deadline) if spec.deadline is not None else DEFAULT_DEADLINE_S,
    )


# ---------------------------------------------------------------------------------------------


def execute_diagnosis(opts: DiagnoseOptions) -> int:

    from entrypoint import storage
    from entrypoint.output_file import check_output_path

    deadline = time.monotonic() + opts.deadline  # for the whole diagnosis, model loading included

    if opts.policy not in {p.value for p in PolicyName}:
        raise CliError(f"--policy: must be model, expert or random, got {opts.policy!r}", ExitCode.USAGE)
    from entrypoint.names import check_namespace

    try:
        for namespace in opts.namespaces or []:
            check_namespace(namespace, "--namespace")
        for namespace in opts.write_namespaces:
            check_namespace(namespace, "--write-namespace")
    except ValueError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if opts.allow_writes and not opts.write_namespaces:
        raise CliError("--allow-writes needs --write-namespace: the namespaces the agent may change", ExitCode.USAGE)
    try:
        storage.set_timeout(opts.s3_timeout)
    except storage.StorageError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if opts.report:
        check_output_path(opts.report, "--report")
    agent, model_ref = _make_agent(opts)
    report = diagnosis_report(opts, agent, model_ref, deadline)
    if opts.output == "json":
        print(json.dumps(report))
    else:
        _print_text(report)
    if opts.report:
        _write_report(opts.report, report)
    if report.get("stopped") == _deadline_note(opts):
        raise CliError(
            f"diagnose: the --deadline of {opts.deadline:g} s passed; the report holds what was read before it",
            ExitCode.CLUSTER,
        )
    return int(ExitCode.OK)


def diagnosis_report(opts: DiagnoseOptions, agent, model_ref: str | None, deadline: float | None = None) -> dict:
    """One diagnosis of the cluster `opts` names by `agent` (any policy of `rl.policies`, or a
    `rl.model.ModelPolicy`): the report `diagnose -o json` prints. Options are not checked here;
    `deadline` is a `time.monotonic()` instant (default: `opts.deadline` seconds from now)."""
    if deadline is None:
        deadline = time.monotonic() + opts.deadline
    env, server = _make_env(opts, deadline)
    try:
        return _run_episode(env, agent, opts, model_ref, server, deadline)
    finally:
        env.close()


def _deadline_note(opts: DiagnoseOptions) -> str:
    return f"the --deadline of {opts.deadline:g} s passed"


def _make_agent(opts: DiagnoseOptions):
    from entrypoint.policy_loader import load_policy

    return load_policy(opts.policy, opts.model, 1, seed=opts.seed or 0)


def _make_env(opts: DiagnoseOptions, deadline: float):
    from rl.env import ClusterEnv
    from rl.sim.scenario import ScenarioConfig

    if opts.simulation:
        scenario = opts.scenario or ScenarioConfig(max_steps=opts.steps)
        return ClusterEnv(max_steps=opts.steps, scenario=scenario, observation="full"), None
    from rl.kube import KubeBackend, KubeDeadlineError, KubeError

    timeout = {"request_timeout": opts.api_timeout} if opts.api_timeout is not None else {}
    try:
        backend = KubeBackend(
            context=opts.context,
            namespaces=opts.namespaces,
            kubeconfig=opts.kubeconfig,
            allow_writes=opts.allow_writes,
            write_namespaces=opts.write_namespaces or None,
            warn=warn,
            deadline=deadline,
            **timeout,
        )
    except KubeDeadlineError:
        raise CliError(
            f"diagnose: the --deadline of {opts.deadline:g} s passed before the cluster answered; nothing was read",
            ExitCode.CLUSTER,
        ) from None
    except KubeError as err:
        raise CliError(str(err), ExitCode.CLUSTER) from None
    except ValueError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    env = ClusterEnv(
        context=opts.context, simulation_mode=False, max_steps=opts.steps, backend=backend, observation="full"
    )
    return env, backend.api.host


def _run_episode(env, agent, opts: DiagnoseOptions, model_ref, server: str | None, deadline: float) -> dict:
    if server is None:
        return _episode(env, agent, opts, model_ref, deadline)
    from entrypoint.errors import unexpected_cluster_answer
    from rl.kube import KubeError

    try:
        return _episode(env, agent, opts, model_ref, deadline)
    except KubeError as err:  # the API server went away, stopped answering or started refusing
        raise CliError(str(err), ExitCode.CLUSTER) from None
    except (AttributeError, TypeError, KeyError, ValueError) as err:  # cluster data of a shape no server sends
        raise unexpected_cluster_answer(server, err) from None


# On a real cluster, when the agent's choice is unavailable (see KubeBackend.unavailable_actions),
# the first available action of this order is taken instead (scripted and random policies).
FALLBACK_ORDER = (0, 1, 3, 2, 5, 4, 11, 12, 13, 6, 7, 8, 9, 10)


def _choose(agent, batch, unavailable: set[int]):
    """The agent's action with its confidence and value, skipping unavailable actions; None when
    nothing but WAIT is left."""
    import numpy as np

    from rl.actions import NUM_ACTIONS, ClusterAction

    allowed = np.array([a not in unavailable for a in range(NUM_ACTIONS)])
    if unavailable and not allowed[[a for a in range(NUM_ACTIONS) if a != ClusterAction.WAIT]].any():
        return None, None, None
    if hasattr(agent, "evaluate"):  # a model: greedy action, its probability and the state value
        actions, confidences, values = agent.evaluate(batch, mask=allowed[None, :] if unavailable else None)
        return int(actions[0]), round(float(confidences[0]), 4), round(float(values[0]), 4)
    action = int(agent.act(batch)[0])
    if action in unavailable:
        action = next(a for a in FALLBACK_ORDER if a not in unavailable)
    return action, None, None


def _episode(env, agent, opts: DiagnoseOptions, model_ref, deadline: float) -> dict:

    import numpy as np

    from rl.actions import ClusterAction
    from rl.agent_input import shown_keys
    from rl.diagnosis import faults_to_mask, policy_beliefs, split_by_evidence
    from rl.faults import NUM_FAULTS, open_problems

    cut_short, deadline_degraded = (), None  # simulation: the kubernetes client is never imported
    if not env.simulation_mode:
        from rl.kube.errors import KubeDeadlineError
        from rl.kube.observe import DEADLINE_DEGRADED

        cut_short, deadline_degraded = (KubeDeadlineError,), DEADLINE_DEGRADED

    observation, info = env.reset(seed=opts.seed)  # on a real cluster, a reading cut at the deadline
    agent.reset(None)
    steps = []
    stopped = None
    beliefs = np.zeros(NUM_FAULTS, dtype=np.float32)  # what the agent believes, as of its last step
    named_row = observation  # its input when it last named
    terminated = truncated = False
    while not (terminated or truncated):
        if time.monotonic() >= deadline:
            stopped = _deadline_note(opts)
            break
        batch = observation[None, :]
        unavailable = set() if env.simulation_mode else {int(a) for a in info.get("unavailable_actions", {})}
        action, confidence, value = _choose(agent, batch, unavailable)
        if action is None:
            stopped = "nothing left the agent can read or change"
            break
        beliefs, named_row = policy_beliefs(agent, 1)[0].copy(), observation
        # It names only what a read of this run backs; the rest it merely suspects.
        named = faults_to_mask(split_by_evidence(beliefs, shown_keys(named_row))[0])
        try:
            observation, reward, terminated, truncated, info = env.step(action, named=named)
        except cut_short:  # a read of this step was cut by the deadline: the report is of the steps before it
            stopped = _deadline_note(opts)
            break
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
                "named": list(info["named_faults"]),
                "issues": list(info["issues"]),
            }
        )
    # The agent said it was done (WAIT) and, in simulation, nothing it could fix was left and every
    # human-only fault was named; on a real cluster, a fresh look found no open finding. An agent left
    # with nothing to read or change on a clean cluster is done too.
    if deadline_degraded and any(str(d).startswith(deadline_degraded) for d in info.get("degraded", ())):
        stopped = _deadline_note(opts)  # the last look at the cluster was cut short
    agent_done = info.get("outcome") == "resolved" and stopped != _deadline_note(opts)
    if info.get("outcome") == "stopped" and stopped is None:
        stopped = "the agent chose WAIT"
    elif stopped and stopped != _deadline_note(opts) and not env.simulation_mode:
        unknown = info.get("unknown", [])
        agent_done = not open_problems(info.get("findings", [])) and not [
            d for d in info.get("degraded", []) if d not in unknown
        ]
    report = {
        "mode": "simulation" if opts.simulation else "cluster",
        "policy": opts.policy,
        "model": model_ref,
        "diagnosis": _diagnosis(env, info, beliefs, named_row),
        "suspected": _suspected(beliefs, shown_keys(named_row)),
        "steps": steps,
        "findings": _findings(env, info),
        "actions_taken": _remedies(steps),
        "agent_done": agent_done,
        "total_reward": round(float(info["total_reward"]), 4),
    }
    if not env.simulation_mode:
        from entrypoint.cluster_report import cluster_sections

        report.update(cluster_sections(env, info, opts.allow_writes))
        report["stopped"] = stopped
    elif stopped == _deadline_note(opts):
        report["stopped"] = stopped
    # Resolved, and on a real cluster healthy, only when nothing is named and no finding is open (on
    # a real cluster: no finding but what healthy clusters show, `rl.faults.open_problems`).
    if env.simulation_mode:
        still_open = [f for f in report["findings"] if f["status"] != "fixed"]
    else:
        still_open = open_problems(info.get("findings", []))
    report["resolved"] = agent_done and not report["diagnosis"] and not still_open
    return report


def _diagnosis(env, info, beliefs, row) -> list[dict]:
    """The faults the agent names, most probable first, each with the reads of this run that back it:
    in simulation the reads that showed its symptoms (else the findings they showed), on a real
    cluster the findings of that fault (`rl.diagnosis.EVIDENCE_KEYS`) that its reads showed."""
    from rl.agent_input import shown_keys
    from rl.diagnosis import EVIDENCE_KEYS, split_by_evidence
    from rl.findings import SHOWN_BY, vector_key
    from rl.policies import finding_counts

    shown, counts = shown_keys(row), finding_counts(row)
    entries = []
    for fault in split_by_evidence(beliefs, shown)[0]:
        keys = EVIDENCE_KEYS[fault] & shown
        if env.simulation_mode:
            evidence = env.support(fault) or [
                {
                    "read": "/".join(a.name for a in SHOWN_BY[key]),
                    "reason": f"{key[0]} {key[1]}",
                    "showed": f"{counts.get(key, 1)} object(s)",
                }
                for key in sorted(keys)
            ]
        else:
            evidence = [
                {
                    "read": f"{finding.kind} {finding.object_name}",
                    "reason": finding.reason,
                    "showed": finding.message,
                    "details": list(finding.evidence),
                }
                for finding in info.get("findings", [])
                if vector_key(finding) in keys
            ]
        entries.append(
            {"fault": fault.name.lower(), "probability": round(float(beliefs[fault]), 4), "evidence": evidence}
        )
    return entries


def _suspected(beliefs, shown) -> list[dict]:
    """What the agent believes (0.5 or more) but no read of this run backs: listed, never named."""
    from rl.diagnosis import EVIDENCE_KEYS, split_by_evidence

    return [
        {
            "fault": fault.name.lower(),
            "probability": round(float(beliefs[fault]), 4),
            "missing": sorted(f"{kind} {reason}" for kind, reason in EVIDENCE_KEYS[fault]),
        }
        for fault in split_by_evidence(beliefs, shown)[1]
    ]


def _findings(env, info) -> list[dict]:
    from entrypoint.recommendations import FOR_FAULT
    from rl.faults import DESCRIPTIONS, HUMAN_ONLY

    if not env.simulation_mode:
        return []  # filled by entrypoint.cluster_report from the analyzers' findings
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
    _print_diagnosis(report)
    print()
    for s in report["steps"]:
        confidence = "" if s["confidence"] is None else f"  confidence {s['confidence']:.0%}"
        value = "" if s["value"] is None else f"  value {s['value']:+.2f}"
        print(
            f"step {s['step']:>3}  {s['action']:<22}{confidence}{value}  reward {s['reward']:+.2f}  "
            f"-> {s['result']}  ({len(s['issues'])} issue(s) left)"
        )
    named = len(report["diagnosis"])
    if report["mode"] == "cluster":
        open_count = len(report["findings"])
        if report["resolved"]:
            # Findings may remain that healthy clusters show (rl.faults.is_problem): listed, not problems.
            outcome = "No problem found" + (
                f" ({open_count} finding(s) of a healthy cluster's ordinary state, below)" if open_count else ""
            )
        elif open_count:
            outcome = f"{open_count} problem(s) open"
        elif named:
            outcome = f"Not resolved: the agent names {named} fault(s)"
        else:
            outcome = "Not resolved (parts of the cluster could not be read)"
        stopped = f"; stopped: {report['stopped']}" if report.get("stopped") else ""
        print(f"\n{outcome} after {len(report['steps'])} steps{stopped}, total reward {report['total_reward']:+.2f}")
    else:
        outcome = f"{'Resolved' if report['resolved'] else 'Not resolved'} in {len(report['steps'])} steps"
        if report["agent_done"] and not report["resolved"]:
            outcome += f": the agent is done, and names {named} fault(s) only a human can fix"
        print(f"\n{outcome}; total reward {report['total_reward']:+.2f}")
    blocking = [d for d in report.get("degraded", []) if d not in report.get("unknown", [])]
    if blocking:
        print("Could not read: " + "; ".join(blocking))
    if report.get("unknown"):
        print("Unknown (does not keep the cluster from counting as healthy): " + "; ".join(report["unknown"]))
    if report["mode"] == "cluster":
        from entrypoint.cluster_report import print_cluster_text

        print_cluster_text(report)  # the findings, grouped under their root causes
    else:
        print("\nFindings:")
        if not report["findings"] and report["resolved"]:
            print("  nothing wrong found")
        elif not report["findings"]:
            print("  none from what could be read")
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


MAX_EVIDENCE_LINES = 3


def _print_diagnosis(report: dict) -> None:
    print("\nThe agent names:")
    if not report["diagnosis"]:
        print("  no fault")
    for entry in report["diagnosis"]:
        print(f"  - {entry['fault']} ({entry['probability']:.0%})")
        evidence = entry["evidence"]
        for e in evidence[:MAX_EVIDENCE_LINES]:
            where = f"step {e['step']} {e['read']}" if "step" in e else f"{e['read']} {e['reason']}"
            print(f"      {where}: {e['showed']}")
        if len(evidence) > MAX_EVIDENCE_LINES:
            print(f"      and {len(evidence) - MAX_EVIDENCE_LINES} more")
    if report.get("suspected"):
        print("\nSuspected, not named (no read of this run showed evidence of it):")
        for entry in report["suspected"]:
            print(
                f"  - {entry['fault']} ({entry['probability']:.0%}): would need {', '.join(entry['missing']) or 'a read'}"
            )


def _write_report(target: str, report: dict) -> None:
    from entrypoint.output_file import write_output

    write_output(target, json.dumps(report, indent=2).encode(), "--report")
