"""Diagnosis of labelled realistic clusters: a model, the expert runbook and the lookup baseline.

    python benchmarks/real_diagnosis.py --model ~/.cluster-code/models/cluster_agent.pt --json
    {"model": {"root_f1": ..., "precision": ..., "recall": ..., "top1": ..., "healthy_false_names": ...,
     "named_without_evidence": ..., "sim_f1": ...}, "expert": {...}, "lookup": {...}, "clusters": 60, ...}

The clusters (`tests/kube_server/realistic.py`, `benchmark_specs`): generated from `--seed`, served
one at a time by the project's test API server and read through the real client, 3 to 200 nodes of
10 to 110 pods each, with and without metrics-server, with the benign findings healthy clusters
show. About a fifth are healthy (noise only); every fault type of the catalogue is the root fault of
at least three; some have two at once. Each cluster's root faults are the faults it was built with.

Each policy diagnoses each cluster exactly as `cluster-rl diagnose --no-simulation --policy ...`
(read-only, `--steps` actions; `entrypoint.commands.diagnose.diagnosis_report`): what its report
names (`diagnosis`: faults a read of the run backs) is scored against the labels, micro-averaged:
`precision`, `recall`, `root_f1`; `top1` is the share of faulty clusters whose first named fault (the
most probable) is one of their root faults; `healthy_false_names` counts the faults named on healthy
clusters; `named_without_evidence` the beliefs of 0.5 or more that no read backed (the report's
`suspected`: never named, counted here). `unbacked_names` checks the report itself: faults named
whose evidence no read of the run showed (must be 0). `sim_f1` is the same policy's F1 in the
simulator on matching episodes: per cluster, `--sim-episodes` read-only episodes of the same size,
density, metrics-server and root faults (no new faults, no cascades), named by the same evidence
rule, against the faults active at the end.

The lookup baseline is `rl.policies.LookupPolicy`: every read once, then the catalogue's
finding-to-fault map applied to the findings they showed. Without `--model` only the expert and the
lookup are measured ("model": null). `--limit K` runs the first K clusters of the set (a quick check).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from kube_server import FakeKubeServer, write_kubeconfig  # noqa: E402
from kube_server.realistic import benchmark_specs, build_cluster, serve  # noqa: E402

from entrypoint.commands.diagnose import DEFAULT_STEPS, DiagnoseOptions, diagnosis_report  # noqa: E402
from rl.actions import ClusterAction  # noqa: E402
from rl.agent_input import shown_keys  # noqa: E402
from rl.diagnosis import DiagnosisCounts, faults_to_mask, policy_beliefs, split_by_evidence  # noqa: E402
from rl.findings import EVENT_REASONS, SHOWN_BY  # noqa: E402
from rl.policies import ExpertPolicy, LookupPolicy  # noqa: E402
from rl.sim import layout  # noqa: E402
from rl.sim.batch import started_batch  # noqa: E402
from rl.sim.scenario import ScenarioConfig  # noqa: E402

POLICIES = ("model", "expert", "lookup")


def make_policy(name: str, network, episodes: int = 1):
    if name == "model":
        from rl.model import ModelPolicy

        return ModelPolicy(network)
    return ExpertPolicy(episodes) if name == "expert" else LookupPolicy(episodes)


def unbacked(report: dict) -> int:
    """Faults the report names whose evidence no read of the run showed."""
    reads = {ClusterAction[s["action"]] for s in report["steps"]}
    count = 0
    for entry in report["diagnosis"]:
        backed = [e for e in entry["evidence"] if _shown_by_a_read(e, reads)]
        count += not backed
    return count


def _shown_by_a_read(evidence: dict, reads) -> bool:
    kind, reason = evidence["read"].split(" ", 1)[0], evidence["reason"]
    key = ("Event", reason) if reason in EVENT_REASONS and kind != "Log" else (kind, reason)
    return bool(set(SHOWN_BY.get(key, ())) & reads)


def diagnose_real(kubeconfig: Path, name: str, network, steps: int) -> dict:
    opts = DiagnoseOptions(simulation=False, kubeconfig=str(kubeconfig), steps=steps, policy=name)
    report = diagnosis_report(opts, make_policy(name, network), None)
    return {
        "named": [d["fault"] for d in report["diagnosis"]],
        "suspected": [d["fault"] for d in report["suspected"]],
        "unbacked": unbacked(report),
        "steps": len(report["steps"]),
    }


def matching_scenario(spec, steps: int) -> ScenarioConfig:
    faults = {name: 1.0 for name in spec.faults}
    return ScenarioConfig(
        min_nodes=spec.nodes,
        max_nodes=spec.nodes,
        min_pods_per_node=spec.pods_per_node,
        max_pods_per_node=spec.pods_per_node,
        min_faults=len(spec.faults),
        max_faults=len(spec.faults),
        new_fault_rate=0.0,
        cascade_chance=0.0,
        read_only_share=1.0,
        metrics_share=1.0 if spec.metrics else 0.0,
        max_steps=steps,
        **({"fault_weights": faults} if faults else {}),
    )


def diagnose_simulated(spec, name: str, network, episodes: int, steps: int) -> DiagnosisCounts:
    """The policy's named faults (by the evidence rule) on simulated clusters matching `spec`,
    against the faults active when each episode ended."""
    batch, (rows, rewards, terminals, truncations) = started_batch(episodes, matching_scenario(spec, steps), spec.seed)
    policy = make_policy(name, network, episodes)
    policy.reset(None)
    st = batch.state
    running = np.ones(episodes, dtype=bool)
    named_at_end = np.zeros(episodes, dtype=np.int64)
    active_at_end = np.zeros(episodes, dtype=np.int64)
    for _ in range(steps):
        actions = np.asarray(policy.act(rows), dtype=np.int32)
        beliefs = policy_beliefs(policy, episodes)
        named = np.array(
            [faults_to_mask(split_by_evidence(b, shown_keys(r))[0]) for b, r in zip(beliefs, rows, strict=True)]
        )
        named_at_end[running] = named[running]
        batch.step(actions, rows, rewards, terminals, truncations, auto_reset=False, named=named)
        ended = running & (st.outcome != layout.OUTCOME_RUNNING)
        active_at_end[ended] = st.final_active[ended]
        running &= ~ended
        if not running.any():
            break
    active_at_end[running] = st.active[running]
    return DiagnosisCounts.of(named_at_end, active_at_end)


def score(runs: list[dict], sim: DiagnosisCounts) -> dict:
    counts = DiagnosisCounts()
    faulty = [r for r in runs if r["labels"]]
    for r in runs:
        named, labels = set(r["named"]), set(r["labels"])
        counts.true_positives += len(named & labels)
        counts.false_positives += len(named - labels)
        counts.false_negatives += len(labels - named)
    top1 = np.mean([bool(r["named"]) and r["named"][0] in r["labels"] for r in faulty]) if faulty else float("nan")
    return {
        "root_f1": round(counts.f1, 4),
        "precision": round(counts.precision, 4),
        "recall": round(counts.recall, 4),
        "top1": round(float(top1), 4),
        "healthy_false_names": sum(len(r["named"]) for r in runs if not r["labels"]),
        "named_without_evidence": sum(len(r["suspected"]) for r in runs),
        "sim_f1": round(sim.f1, 4),
        "unbacked_names": sum(r["unbacked"] for r in runs),
    }


def measure(
    model_path, clusters: int, seed: int, limit: int | None, steps: int, sim_episodes: int, details: bool
) -> dict:
    network = _load(model_path) if model_path else None
    names = [n for n in POLICIES if n != "model" or network is not None]
    specs = benchmark_specs(clusters, seed)[:limit]
    runs = {name: [] for name in names}
    sims = {name: DiagnosisCounts() for name in names}
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, FakeKubeServer() as server:
        kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", server.url)
        for spec in specs:
            cluster = build_cluster(spec)
            serve(server, cluster)
            row = {
                "seed": spec.seed,
                "nodes": spec.nodes,
                "pods": cluster.pods,
                "metrics": spec.metrics,
                "labels": list(spec.faults),
            }
            for name in names:
                run = diagnose_real(kubeconfig, name, network, steps)
                run["labels"] = list(spec.faults)
                runs[name].append(run)
                row[name] = {k: run[k] for k in ("named", "suspected", "steps")}
                sim = diagnose_simulated(spec, name, network, sim_episodes, steps)
                total = sims[name]
                total.true_positives += sim.true_positives
                total.false_positives += sim.false_positives
                total.false_negatives += sim.false_negatives
            rows.append(row)
    result = {name: (score(runs[name], sims[name]) if name in runs else None) for name in POLICIES}
    result.update(
        clusters=len(specs),
        healthy=sum(1 for s in specs if not s.faults),
        two_faults=sum(1 for s in specs if len(s.faults) == 2),
        seed=seed,
        steps=steps,
        seconds=round(time.perf_counter() - started, 1),
    )
    if details:
        result["details"] = rows
    return result


def _load(path):
    from rl.model import ModelError, load_model

    try:
        network, _ = load_model(path)
    except ModelError as err:
        print(f"real_diagnosis: {err}", file=sys.stderr)
        sys.exit(3)
    return network


def print_table(result: dict) -> None:
    print(
        f"{result['clusters']} labelled clusters ({result['healthy']} healthy, {result['two_faults']} with two faults), "
        f"seed {result['seed']}, {result['steps']} steps"
    )
    columns = ("policy", "root F1", "precision", "recall", "top-1", "healthy FP", "no evidence", "sim F1")
    print("".join(f"{c:>12}" if i else f"{c:<8}" for i, c in enumerate(columns)))
    for name in POLICIES:
        r = result[name]
        if r is None:
            continue
        cells = (
            name,
            r["root_f1"],
            r["precision"],
            r["recall"],
            r["top1"],
            r["healthy_false_names"],
            r["named_without_evidence"],
            r["sim_f1"],
        )
        print("".join(f"{c:>12}" if i else f"{c:<8}" for i, c in enumerate(cells)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (without it: expert and lookup only)")
    parser.add_argument("--clusters", type=int, default=60, help="size of the labelled set")
    parser.add_argument("--seed", type=int, default=22, help="seed of the labelled set")
    parser.add_argument("--limit", type=int, help="run only the first LIMIT clusters of the set")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="most actions per diagnosis")
    parser.add_argument("--sim-episodes", type=int, default=4, help="simulated episodes per cluster for sim_f1")
    parser.add_argument("--details", action="store_true", help="add each cluster's labels and what each policy named")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    if args.clusters < 1:
        parser.error("--clusters: must be at least 1")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit: must be at least 1")
    if not 1 <= args.steps <= 10_000:
        parser.error("--steps: must be from 1 to 10000")
    if args.sim_episodes < 1:
        parser.error("--sim-episodes: must be at least 1")
    if not 0 <= args.seed <= 2**31:
        parser.error("--seed: must be from 0 to 2^31")
    result = measure(args.model, args.clusters, args.seed, args.limit, args.steps, args.sim_episodes, args.details)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
