"""`cluster-rl evaluate`: compare policies on the same seeded simulated clusters."""

import json
from pathlib import Path
from typing import Annotated

import typer

from entrypoint.choices import OutputFormat, PolicyName
from entrypoint.errors import CliError, ExitCode


def evaluate(
    policy: Annotated[
        list[PolicyName], typer.Option("--policy", "-p", help="Policy to evaluate; repeat to compare several.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model file, or an s3:// object or prefix (its latest model), for the 'model' policy "
            "[default: $CLUSTER_CODE_HOME/models/cluster_agent.pt].",
        ),
    ] = None,
    episodes: Annotated[
        int, typer.Option("--episodes", "-n", min=1, max=1_000_000, help="Episodes per policy.")
    ] = 1000,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, max=2**32 - 1, help="Seed of the first scenario (0 to 2^32-1); episode i uses seed + i."
        ),
    ] = 1_000_000,
    steps: Annotated[int, typer.Option("--steps", "-s", min=1, max=10_000, help="Step budget per episode.")] = 100,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="text (a table) or json (one object).")
    ] = OutputFormat.text,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a bar chart comparing the policies to this PNG file.")
    ] = None,
    per_fault: Annotated[
        bool,
        typer.Option(
            "--per-fault",
            help="Add a table per fault type: episodes it occurred in, share resolved, mean steps, recall "
            "(JSON: each policy's per_fault).",
        ),
    ] = False,
    s3_timeout: Annotated[
        float | None,
        typer.Option(
            "--s3-timeout",
            min=1,
            max=3600,
            help="Seconds one S3 request may take, retries included (an s3:// --model).  [default: 60]",
            show_default=False,
        ),
    ] = None,
):
    """Run each policy on the same seeded simulated clusters and report how often it resolves them.

    Every policy faces exactly the same clusters and faults. The default seed is far from the
    seeds `train` uses, so a trained model is judged on clusters it never trained on. An episode is
    resolved only when the agent WAITs with nothing left it can fix and every human-only fault
    named. Diagnosis precision, recall and F1 compare the faults the agent named at the episode's
    last step with those truly active then, summed over episodes.
    """
    from entrypoint import storage
    from entrypoint.output_file import check_output_path
    from entrypoint.policy_loader import load_policy
    from rl.evaluate import evaluate_policy
    from rl.sim.scenario import ScenarioConfig

    names = list(dict.fromkeys(p.value for p in (policy or [PolicyName.random, PolicyName.expert])))
    if plot is not None and plot.suffix.lower() != ".png":
        raise CliError(f"--plot: must name a .png file, got {plot}", ExitCode.USAGE)
    if plot is not None:
        check_output_path(str(plot), "--plot")
    storage.set_timeout(s3_timeout)
    scenario = ScenarioConfig(max_steps=steps)
    chosen = [load_policy(name, model, episodes, seed=seed)[0] for name in names]  # every model problem first
    results = [evaluate_policy(policy, episodes, seed, scenario) for policy in chosen]

    if output == OutputFormat.json:
        policies = [r.to_dict(per_fault=per_fault) for r in results]
        print(json.dumps({"episodes": episodes, "seed": seed, "policies": policies}))
    else:
        _print_table(results, episodes, seed)
        if per_fault:
            _print_per_fault(results)
    if plot is not None:
        write_plot(plot, results)


def _print_table(results, episodes: int, seed: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{episodes} episodes per policy, seeds {seed}..{seed + episodes - 1}")
    columns = (
        "policy",
        "resolved",
        "mean steps to resolve",
        "mean return",
        "harmful actions / episode",
        "true health at end",
        "human-only faults left",
        "catastrophes",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "policy" else "right")
    for r in results:
        steps = "-" if r.mean_steps_to_resolve != r.mean_steps_to_resolve else f"{r.mean_steps_to_resolve:.1f}"
        table.add_row(
            r.policy,
            f"{r.resolution_rate:.1%}",
            steps,
            f"{r.mean_return:+.2f}",
            f"{r.harmful_actions_per_episode:.2f}",
            f"{r.true_health_at_end:.3f}",
            f"{r.unresolved_human_faults_at_end:.2f}",
            f"{r.catastrophe_rate:.1%}",
        )
    console = Console()
    console.print(table)
    diagnosis = Table(title="diagnosis: faults named vs truly active at each episode's end (micro-averaged)")
    for column in ("policy", "precision", "recall", "F1"):
        diagnosis.add_column(column, justify="left" if column == "policy" else "right")
    for r in results:
        diagnosis.add_row(
            r.policy, f"{r.diagnosis_precision:.3f}", f"{r.diagnosis_recall:.3f}", f"{r.diagnosis_f1:.3f}"
        )
    console.print(diagnosis)


def _print_per_fault(results) -> None:
    """One table per policy: for each fault type, the episodes it occurred in and how they went."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for r in results:
        table = Table(title=f"{r.policy}: per fault type")
        for column in ("fault", "episodes", "resolved", "mean steps to resolve", "recall at end"):
            table.add_column(column, justify="left" if column == "fault" else "right")
        for name, f in r.per_fault.items():
            table.add_row(
                name,
                str(f.episodes),
                _share(f.resolution_rate),
                "-" if f.mean_steps_to_resolve != f.mean_steps_to_resolve else f"{f.mean_steps_to_resolve:.1f}",
                "-" if f.recall != f.recall else f"{f.recall:.3f} of {f.active_at_end}",
            )
        console.print(table)


def _share(value: float) -> str:
    return "-" if value != value else f"{value:.1%}"


def write_plot(path: Path, results) -> None:
    """A bar chart of resolution rate and mean steps to resolve, written atomically."""
    import io

    import matplotlib

    from entrypoint.output_file import write_output

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.policy for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.bar(names, [100 * r.resolution_rate for r in results], color="#3b7dd8")
    left.set_ylabel("episodes resolved (%)")
    left.set_ylim(0, 100)
    right.bar(
        names,
        [0 if r.mean_steps_to_resolve != r.mean_steps_to_resolve else r.mean_steps_to_resolve for r in results],
        color="#d8823b",
    )
    right.set_ylabel("mean steps to resolve")
    fig.suptitle("cluster-rl evaluate")
    fig.tight_layout()
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    write_output(str(path), buffer.getvalue(), "--plot", content_type="image/png")
