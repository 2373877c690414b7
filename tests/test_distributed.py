"""Training over several processes: `cluster-rl train --nproc-per-node 2` and plain torchrun, on CPU (gloo).

Every test starts real worker processes through torchrun's launcher; nothing distributed is mocked.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from conftest import ROOT, run_cli

from rl.model import read_model_file
from rl.train import read_checkpoint

VENV_BIN = Path(sys.executable).parent
SMALL = ["--num-envs", "64", "--steps", "30"]


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_nproc_per_node_trains_and_rank_0_alone_publishes(home):
    result = run_cli(
        "train", "--nproc-per-node", "2", "--total-steps", "262144", "--run-name", "two", timeout=600,
        env={"CLUSTER_CODE_HOME": str(home)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    log = events(result.stdout)  # every stdout line is one JSON event: the other rank printed nothing
    kinds = [e["event"] for e in log]
    assert kinds.count("start") == 1 and kinds.count("done") == 1 and kinds[-1] == "done"
    done = log[-1]
    assert done["global_step"] == 262144  # both ranks' steps: each of them took 131072
    assert [p.name for p in (home / "models").iterdir()] == ["cluster_agent.pt"]
    meta = read_model_file(home / "models" / "cluster_agent.pt")["metadata"]
    assert meta["global_step"] == 262144 and "resolution_rate" in done["evaluation"]
    assert len(list((home / "runs" / "two").glob("events.out.tfevents.*"))) == 1
    assert not list((home / "checkpoints").glob("two/checkpoint_*.pt"))  # finished: nothing to resume
    diagnosed = run_cli("diagnose", "--model", home / "models" / "cluster_agent.pt", "--seed", "3", "-o", "json")
    assert diagnosed.returncode == 0, diagnosed.stderr
    assert "Traceback" not in result.stderr


def test_plain_torchrun_over_the_cli(home, tmp_path, good_model):
    """Rank 0 alone goes through the promotion gate: a short run does not replace a good default."""
    output = tmp_path / "out"
    output.mkdir()
    shutil.copy(good_model, output / "cluster_agent.pt")
    before = (output / "cluster_agent.pt").read_bytes()
    command = [
        str(VENV_BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", str(VENV_BIN / "cluster-rl"),
        "train", "--total-steps", "262144", "--output", str(output), "--run-name", "plain",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "CLUSTER_CODE_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    log = events(result.stdout)
    assert [e["event"] for e in log].count("done") == 1 and log[-1]["global_step"] == 262144
    (refused,) = [e for e in log if e["event"] == "not_promoted"]
    assert refused["reason"] == "worse" and refused["current"]["resolution_rate"] > refused["new"]["resolution_rate"]
    assert sorted(p.name for p in output.iterdir()) == ["cluster_agent.pt", "plain"]
    assert (output / "cluster_agent.pt").read_bytes() == before
    state = read_model_file(output / "plain" / "cluster_agent.pt")["state_dict"]
    assert not any(key.startswith("module.") for key in state)  # DDP's wrapper is not in the file


def probe(mode: str, out: Path, nproc: int | None) -> None:
    script = [str(ROOT / "tests" / "ddp_probe.py"), mode, str(out)]
    if nproc is None:
        command = [sys.executable, *script]
    else:
        command = [str(VENV_BIN / "torchrun"), "--standalone", f"--nproc-per-node={nproc}", *script]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]


def test_same_seeds_on_every_rank_give_the_one_process_weights_bitwise(tmp_path):
    """The wiring check: sharded envs, batch, minibatch, budget and schedule, and DDP's mean gradient."""
    probe("same-seeds", tmp_path, 2)
    probe("reference", tmp_path, None)
    distributed = torch.load(tmp_path / "distributed.pt")
    reference = torch.load(tmp_path / "reference.pt")
    assert distributed.keys() == reference.keys()
    assert all(torch.equal(distributed[k], reference[k]) for k in reference)


def test_ranks_simulate_their_share_of_the_clusters_and_stay_in_sync(tmp_path):
    from rl.puffer_env import ClusterPufferEnv
    from rl.sim.scenario import ScenarioConfig

    probe("normal-seeds", tmp_path, 2)
    first = [np.load(tmp_path / f"rank{r}.npy") for r in range(2)]
    assert not np.array_equal(first[0], first[1])
    whole = ClusterPufferEnv(num_envs=64, scenario=ScenarioConfig(max_steps=30))
    whole.reset(seed=0)
    assert np.array_equal(first[0], whole.observations[:32]) and np.array_equal(first[1], whole.observations[32:])
    weights = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]  # different data, one network
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def start(home, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "entrypoint.cli", "train", "--nproc-per-node", "2", *SMALL, *args],
        env={**os.environ, "CLUSTER_CODE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def first_progress(proc) -> list[dict]:
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "progress":
            return seen
    raise AssertionError(f"training ended early: {seen} {proc.stderr.read()}")


def test_sigterm_stops_every_rank_with_one_checkpoint_then_resume_continues(home):
    proc = start(home, "--total-steps", "100000000", "--run-name", "evicted", "--checkpoint-interval", "3600")
    try:
        first_progress(proc)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 75, err
    stopped = events(out)[-1]
    assert stopped["event"] == "stopped" and stopped["signal"] == "SIGTERM"
    (checkpoint,) = (home / "checkpoints" / "evicted").glob("checkpoint_*.pt")
    assert stopped["checkpoint"] == str(checkpoint)
    payload = read_checkpoint(checkpoint)
    assert payload["world_size"] == 2 and len(payload["rank_torch_rng"]) == 2
    assert payload["global_step"] == stopped["global_step"] and payload["global_step"] % (64 * 32) == 0
    assert not any(key.startswith("module.") for key in payload["policy"])
    assert not (home / "models").exists() or not list((home / "models").iterdir())

    resharded = home / "checkpoints" / "resharded"
    resharded.mkdir()
    (resharded / checkpoint.name).write_bytes(checkpoint.read_bytes())

    target = payload["global_step"] + 2 * 64 * 32
    result = run_cli(
        "train", "--nproc-per-node", "2", *SMALL, "--resume", "--run-name", "evicted", "--total-steps", target,
        env={"CLUSTER_CODE_HOME": str(home)}, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    log = events(result.stdout)
    resumed = next(e for e in log if e["event"] == "resumed")
    assert resumed["global_step"] == payload["global_step"]
    assert log[-1]["event"] == "done" and log[-1]["global_step"] == target

    # at another world size: the simulator streams are resharded, the run goes on in one process
    result = run_cli(
        "train", *SMALL, "--resume", "--run-name", "resharded", "--total-steps", target,
        env={"CLUSTER_CODE_HOME": str(home)}, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    log = events(result.stdout)
    assert next(e for e in log if e["event"] == "resumed")["global_step"] == payload["global_step"]
    assert log[-1]["global_step"] == target


def test_a_rank_that_dies_fails_the_run(home):
    proc = start(home, "--total-steps", "100000000", "--run-name", "lost")
    try:
        first_progress(proc)
        workers = psutil.Process(proc.pid).children()
        (rank_1,) = [w for w in workers if w.environ().get("RANK") == "1"]
        rank_1.kill()
        out, err = proc.communicate(timeout=180)  # a generous outer limit: it ends within seconds
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("cluster-rl: ")


def test_workers_die_with_a_launcher_killed_outright_and_publish_nothing(home):
    """SIGKILL to the launcher cannot be passed on: the workers must die with it (the kernel's
    parent-death signal), not train on and publish a model nobody asked for any more."""
    proc = start(home, "--total-steps", "131072", "--run-name", "orphans")
    workers = []
    try:
        first_progress(proc)
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len([w for w in workers if w.environ().get("RANK") in ("0", "1")]) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        gone, alive = psutil.wait_procs(workers, timeout=60)  # a generous outer limit: they die at once
    finally:
        proc.kill()
        for worker in workers:  # orphans are no longer our children: kill them by what was recorded
            try:
                worker.kill()
            except psutil.NoSuchProcess:
                pass
    assert alive == [], [w.cmdline() for w in alive]
    assert not (home / "models" / "cluster_agent.pt").exists()


@pytest.mark.parametrize(
    "args, training, text",
    [
        (["--nproc-per-node", "3"], {}, "num_envs (64) must divide evenly by the world size (3)"),
        (
            ["--nproc-per-node", "2"],
            {"batchSize": 32},
            "minibatch_size (32) must divide evenly by the world size (2) into multiples of num_steps (32)",
        ),
    ],
)
def test_settings_that_do_not_divide_fail_before_training(home, args, training, text):
    home.mkdir(parents=True)
    (home / "config.json").write_text(json.dumps({"pufferlib": {"trainingConfig": training}}))
    result = run_cli("train", *args, "--num-envs", "64", env={"CLUSTER_CODE_HOME": str(home)}, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"cluster-rl: training settings: {text}"]
    assert result.stdout == ""  # no worker started: not even a start event


def test_a_torchrun_worker_checks_the_world_size_before_training(home):
    """What every rank does under plain torchrun: the check comes before joining the others."""
    env = {"CLUSTER_CODE_HOME": str(home), "WORLD_SIZE": "3", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "3"}
    result = run_cli("train", "--num-envs", "64", env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "cluster-rl: training settings: num_envs (64) must divide evenly by the world size (3)"
    ]
    assert not (home / "checkpoints").exists() or not list((home / "checkpoints").rglob("*.pt"))


def test_two_nodes_configured_by_pet_variables_run_a_job_spec(home, tmp_path):
    """What each pod of jobs/k8s/overlays/distributed runs: `torchrun --no-python cluster-rl run SPEC`,
    one torchrun per node, set up only by PET_* variables (here two nodes on this host)."""
    import socket

    spec = tmp_path / "train.yaml"
    spec.write_text(
        "apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata:\n  name: pods\nspec:\n  mode: simulation\n"
        f"  steps: 30\n  totalSteps: 8192\n  output: {tmp_path / 'out'}\n  training:\n    numEnvs: 64\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pet = {"PET_NNODES": "2", "PET_NPROC_PER_NODE": "1", "PET_MASTER_ADDR": "127.0.0.1", "PET_MASTER_PORT": str(port)}
    env = {**os.environ, **pet, "CLUSTER_CODE_HOME": str(home), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    nodes = [
        subprocess.Popen(
            [str(VENV_BIN / "torchrun"), "--no-python", "cluster-rl", "run", str(spec)],
            env={**env, "PET_NODE_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for rank in range(2)
    ]
    try:
        outputs = [node.communicate(timeout=600) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], [err[-2000:] for _, err in outputs]
    assert outputs[1][0] == ""  # the second node's rank reports nothing
    done = events(outputs[0][0])[-1]
    assert done["event"] == "done" and done["global_step"] == 8192
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cluster_agent.pt"]


def test_world_and_shares_from_the_environment(monkeypatch):
    from rl.distributed import DistributedError, World, shard_sizes

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert World.from_env() == World() and not World().distributed
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    world = World.from_env()
    assert (world.rank, world.size, world.is_main, world.sim_seed(7, 256), world.torch_seed(7)) == (
        3,
        4,
        False,
        775,
        10,
    )
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(DistributedError, match="RANK=4 WORLD_SIZE=4"):
        World.from_env()
    assert shard_sizes(1024, 8192, 32768 * 8, 32, 4) == (256, 2048, 65536)
    with pytest.raises(ValueError, match="num_envs"):
        shard_sizes(1000, 8000, 32000, 32, 3)


def test_the_launcher_exit_code_is_rank_0s_or_names_the_failed_rank(capsys):
    from types import SimpleNamespace

    from entrypoint.torchrun import _exit_code

    def failure(code, at):
        return SimpleNamespace(exitcode=code, timestamp=at, signal_name=lambda: "SIGKILL")

    assert _exit_code(SimpleNamespace(failures={0: failure(3, 2), 1: failure(-15, 3)})) == 3
    assert _exit_code(SimpleNamespace(failures={1: failure(75, 1)})) == 75  # a stop that rank 1 reported first
    assert _exit_code(SimpleNamespace(failures={0: failure(-15, 2), 1: failure(-9, 1)})) == 1
    assert capsys.readouterr().err == "cluster-rl: training failed: rank 1 ended with signal SIGKILL\n"


@pytest.mark.slow
def test_two_ranks_learn_as_well_as_one(home, tmp_path):
    """2 ranks x N/2 clusters reach the greedy resolution of 1 x N (within 3 points, over 2 seeds)."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    for seed in (1, 2):
        for nproc in (1, 2):
            output = tmp_path / f"seed{seed}-nproc{nproc}"
            train = ["train", "--total-steps", "4194304", "--seed", str(seed), "--output", str(output)]
            result = run_cli(
                *train, "--nproc-per-node", str(nproc), "--run-name", f"parity-{seed}-{nproc}",
                timeout=900, env={"CLUSTER_CODE_HOME": str(home)},
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            evaluated = run_cli(
                "evaluate", "--policy", "model", "--model", output / "cluster_agent.pt", "--episodes", "2000",
                "-o", "json", timeout=600,
            )  # fmt: skip
            assert evaluated.returncode == 0, evaluated.stderr
            rates[nproc].append(json.loads(evaluated.stdout)["policies"][0]["resolution_rate"])
    one, two = np.mean(rates[1]), np.mean(rates[2])
    assert one > 0.5 and two > 0.5, rates  # both learned: the comparison means something
    assert abs(one - two) <= 0.03, rates
