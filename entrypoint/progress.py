"""How a long-running command reports progress: JSON lines in logs, a live view on a terminal.

Not on a TTY (docker logs, kubectl logs, CI) every line on stdout is one JSON object with an
`event` key, flushed at once. On a TTY a rich live panel shows the same numbers; events other
than progress are printed above it as plain lines. Nothing ever clears the screen.
"""

import json
import sys
import time

from entrypoint.prog import prog


class JsonLinesReporter:
    def __init__(self, stream=None, progress_interval: float = 10.0, verbose: bool = False):
        self.stream = stream or sys.stdout
        self.progress_interval = progress_interval
        self.verbose = verbose
        self._last_progress = float("-inf")

    def event(self, name: str, **fields) -> None:
        record = {"event": name, "time": round(time.time(), 3), **fields}
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def progress(self, metrics: dict, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= self.progress_interval:
            self._last_progress = now
            self.event("progress", **(metrics if self.verbose else _brief(metrics)))

    def close(self) -> None:
        pass


class RichReporter:
    """A live panel on a terminal (rich), refreshed in place without clearing the screen."""

    def __init__(self, total_steps: int, verbose: bool = False):
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.total_steps = total_steps
        self.verbose = verbose
        self.live = Live(self._render({}), console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def event(self, name: str, **fields) -> None:
        if name == "progress":
            return self.progress(fields)
        if name == "done":
            return self.console.print(done_summary(fields))
        if name in ("warning", "not_promoted") and "message" in fields:
            # One line for a person; the JSON event carries the figures.
            style = "bold yellow" if name == "warning" else "yellow"
            label = "warning: " if name == "warning" else ""
            return self.console.print(f"{label}{fields['message']}", style=style, highlight=False, markup=False)
        text = ", ".join(f"{k}={v}" for k, v in fields.items())
        self.console.print(f"[bold cyan]{name}[/] {text}", highlight=False)

    def progress(self, metrics: dict, force: bool = False) -> None:
        self.live.update(self._render(metrics))

    def _render(self, m: dict):
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        step = m.get("global_step", 0)
        table.add_row("steps", f"{step:,} / {self.total_steps:,}", ProgressBar(total=self.total_steps, completed=step))
        table.add_row("steps/s", f"{m.get('sps', 0):,.0f}", "")
        table.add_row("episodes", f"{m.get('episodes', 0):,}", "")
        for key, label in (
            ("resolution_rate", "resolved"),
            ("mean_return", "mean return"),
            ("mean_episode_length", "mean length"),
            ("harmful_actions", "harmful/episode"),
        ):
            value = m.get(key)
            table.add_row(
                label, "-" if value is None else (f"{value:.1%}" if key == "resolution_rate" else f"{value:.2f}"), ""
            )
        if self.verbose:
            for key in ("policy_loss", "value_loss", "entropy"):
                if m.get(key) is not None:
                    table.add_row(key.replace("_", " "), f"{m[key]:.4f}", "")
        table.add_row("elapsed", f"{m.get('elapsed', 0):.0f} s", "")
        return table

    def close(self) -> None:
        self.live.stop()


# The greedy evaluation counts as far below the rollouts when it resolves less than this share of
# what they resolve, and at least GAP_POINTS fewer clusters in absolute terms.
GAP_RATIO = 0.5
GAP_POINTS = 0.10


def greedy_gap_warning(metrics: dict, evaluation: dict | None) -> str | None:
    """A warning when the model resolves far fewer clusters greedily than while sampling in training."""
    from rl.promotion import below_floor

    rollouts = (metrics or {}).get("resolution_rate")
    greedy = (evaluation or {}).get("resolution_rate")
    if rollouts is None or greedy is None or below_floor(evaluation):
        return None  # below the floor, the run was too short to learn: that warning says more
    if greedy < GAP_RATIO * rollouts and rollouts - greedy >= GAP_POINTS:
        return (
            f"the greedy evaluation resolves {greedy:.1%} of unseen clusters, far below the {rollouts:.1%} "
            "of the training rollouts: the model is not yet useful for `diagnose` (which acts greedily). "
            f"Train longer (more --episodes or --total-steps) and check with `{prog()} evaluate -p model`."
        )
    return None


def done_summary(fields: dict):
    """The end of `train` for a person: where the model is, whether it is the default now, and the
    training rollouts beside the greedy evaluation of the model, the current default (when it was
    compared) and the expert runbook on the same unseen clusters."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    metrics, evaluation = fields.get("metrics") or {}, fields.get("evaluation")
    current = fields.get("default_evaluation")
    if fields.get("promoted", True):
        standing = ("the default model now", "green")
    else:
        standing = (f"not promoted: the default model is still {fields.get('default')}", "yellow")
    head = Text.assemble(
        ("done ", "bold green"),
        f"model saved to {fields.get('model')}\n",
        standing,
        f"\nrun {fields.get('run_id')}: {fields.get('global_step', 0):,} steps in {fields.get('elapsed', 0):.0f} s",
    )
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("")
    table.add_column("training rollouts", justify="right")
    episodes = (evaluation or {}).get("episodes", 0)
    sources = [("greedy", evaluation)]
    if current is not None:
        sources.append(("current default", current))
    if evaluation and evaluation.get("expert"):
        sources.append(("expert runbook", evaluation["expert"]))
    for title, _ in sources:
        table.add_column(title, justify="right")
    others = " and ".join(title for title, _ in sources[1:])
    table.caption = f"greedy: {episodes} unseen clusters" + (f", the same for the {others}" if others else "")

    def cell(source: dict | None, key: str | None, style: str) -> str:
        value = (source or {}).get(key) if key else None
        if value is None:
            return "-"
        return {"%": f"{value:.1%}", "f": f"{value:.2f}", "3": f"{value:.3f}"}[style]

    for label, train_key, eval_key, style in (
        ("resolved", "resolution_rate", "resolution_rate", "%"),
        ("diagnosis F1", None, "diagnosis_f1", "3"),
        ("mean return", "mean_return", "mean_return", "f"),
        ("harmful actions / episode", "harmful_actions", "harmful_actions_per_episode", "f"),
    ):
        table.add_row(label, cell(metrics, train_key, style), *(cell(source, eval_key, style) for _, source in sources))
    parts = [head, table]
    if evaluation is None:
        parts.append(Text(f"evaluation skipped: {fields.get('evaluation_skipped', 'not run')}", style="yellow"))
    warning = greedy_gap_warning(metrics, evaluation)
    if warning:
        parts.append(Text(f"warning: {warning}", style="bold yellow"))
    return Group(*parts)


def _brief(metrics: dict) -> dict:
    keys = ("global_step", "sps", "episodes", "mean_return", "resolution_rate", "elapsed")
    return {k: metrics.get(k) for k in keys}


def make_reporter(total_steps: int, verbose: bool = False, stream=None):
    stream = stream or sys.stdout
    if stream.isatty():
        return RichReporter(total_steps, verbose=verbose)
    return JsonLinesReporter(stream, verbose=verbose)
