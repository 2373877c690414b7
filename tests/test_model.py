import math
import pickle
import zipfile

import numpy as np
import pytest
import torch

from rl.agent_input import INPUT_FIELDS, INPUT_SIZE
from rl.faults import NUM_FAULTS
from rl.model import (
    FORMAT_NAME,
    FORMAT_VERSION,
    TRAINING_ROW_SIZE,
    ModelError,
    ModelPolicy,
    build_policy,
    load_model,
    read_model_file,
    save_model,
)
from rl.train import read_checkpoint


@pytest.mark.parametrize("lstm", [True, False])
def test_save_and_load_round_trip(tmp_path, lstm):
    policy = build_policy(hidden_size=16, num_layers=1, lstm=lstm)
    path = save_model(tmp_path / "m.pt", policy, {"global_step": 42, "seed": 3, "metrics": {"resolution_rate": 0.9}})
    loaded, meta = load_model(path)
    assert meta["global_step"] == 42 and meta["network"] == {"hidden_size": 16, "num_layers": 1, "lstm": lstm}
    assert meta["action_names"][0] == "GET_NODES" and len(meta["observation_fields"]) == 18
    assert meta["input_fields"] == list(INPUT_FIELDS) and len(meta["fault_names"]) == NUM_FAULTS
    for key, value in policy.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    obs = np.random.default_rng(0).random((5, INPUT_SIZE), dtype=np.float32)
    a, _, _ = ModelPolicy(policy).evaluate(obs)
    b, _, _ = ModelPolicy(loaded).evaluate(obs)
    assert np.array_equal(a, b)
    assert list(tmp_path.iterdir()) == [tmp_path / "m.pt"]  # no temp files left behind


def test_model_file_loads_with_weights_only(tmp_path):
    path = save_model(tmp_path / "m.pt", build_policy(8, 1), {"global_step": 1})
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT_NAME and payload["format_version"] == FORMAT_VERSION == 3


class Exploit:
    def __reduce__(self):
        return (open, ("/tmp/cluster-rl-test-pwned", "w"))


def test_a_file_carrying_code_is_refused_without_running_it(tmp_path):
    target = tmp_path / "evil.pt"
    torch.save({"format": FORMAT_NAME, "payload": Exploit()}, target)
    with pytest.raises(ModelError, match="refused: the model file holds Python objects other than plain data"):
        load_model(target)
    import os

    assert not os.path.exists("/tmp/cluster-rl-test-pwned")
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ModelError):
        load_model(plain)


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    good = save_model(tmp_path / "good.pt", build_policy(8, 1), {"global_step": 1})
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bomb, "w") as target:
        for entry in source.infolist():
            target.writestr(entry, source.read(entry))
        # 64 MiB of zeros in a few kilobytes: torch.load would inflate it, though no weight uses it.
        target.writestr("archive/data/padding", bytes(64 << 20), compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ModelError, match="unpack to 67"):
        load_model(bomb)
    with pytest.raises(ModelError, match="unpack to 67"):  # a checkpoint to resume from, the same
        read_checkpoint(bomb)
    assert load_model(good)[0] is not None  # torch.save's own files pass the check


@pytest.mark.parametrize(
    "case",
    ["missing", "directory", "truncated", "garbage", "foreign", "newer", "older", "other-obs", "shape", "faults"],
)
def test_bad_model_files_give_one_line_model_errors(tmp_path, case):
    good = save_model(tmp_path / "good.pt", build_policy(8, 1), {"global_step": 1})
    path = tmp_path / "bad.pt"
    payload = torch.load(good, weights_only=True)
    if case == "missing":
        path = tmp_path / "nope.pt"
    elif case == "directory":
        path = tmp_path
    elif case == "truncated":
        path.write_bytes(good.read_bytes()[:300])
    elif case == "garbage":
        path.write_bytes(b"\x00not a model at all" * 10)
    elif case == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    elif case == "newer":
        torch.save({**payload, "format_version": 99}, path)
    elif case == "older":  # a format-2 file: the 18 counts only
        torch.save({**payload, "format_version": 2}, path)
    elif case == "faults":
        torch.save({**payload, "metadata": {**payload["metadata"], "fault_names": ["crashed_pods"]}}, path)
    elif case == "other-obs":
        torch.save({**payload, "metadata": {**payload["metadata"], "input_fields": ["a", "b"]}}, path)
    elif case == "shape":
        torch.save(
            {
                **payload,
                "metadata": {**payload["metadata"], "network": {"hidden_size": 32, "num_layers": 1, "lstm": True}},
            },
            path,
        )
    with pytest.raises(ModelError) as err:
        load_model(path)
    message = str(err.value)
    assert "\n" not in message and str(path.name) in message


def test_recurrent_policy_memory_is_per_cluster_and_resets(tmp_path):
    torch.manual_seed(0)
    policy = ModelPolicy(build_policy(16, 1, lstm=True))
    obs = np.random.default_rng(1).random((3, INPUT_SIZE), dtype=np.float32)
    first = policy.evaluate(obs)[2]
    second = policy.evaluate(obs)[2]
    assert not np.allclose(first, second)  # same input, different memory
    policy.reset(np.array([True, False, False]))
    third = policy.evaluate(obs)[2]
    assert third[0] == pytest.approx(first[0], abs=1e-6) and third[1] != pytest.approx(first[1], abs=1e-6)


def test_read_model_file_returns_metadata(tmp_path):
    path = save_model(tmp_path / "m.pt", build_policy(8, 1), {"global_step": 7, "run_id": "r1"})
    assert read_model_file(path)["metadata"]["run_id"] == "r1"


def test_an_old_model_file_names_its_format_version(tmp_path):
    good = save_model(tmp_path / "good.pt", build_policy(8, 1), {"global_step": 1})
    payload = torch.load(good, weights_only=True)
    for version in (1, 2):
        torch.save({**payload, "format_version": version}, tmp_path / "old.pt")
        with pytest.raises(ModelError, match=rf"model format version {version} .*retrain"):
            read_model_file(tmp_path / "old.pt")


@pytest.mark.parametrize("lstm", [True, False])
def test_the_diagnosis_head_names_faults_and_learns_from_the_true_faults(lstm):
    torch.manual_seed(0)
    policy = build_policy(hidden_size=16, num_layers=1, lstm=lstm)
    obs = np.random.default_rng(0).random((6, INPUT_SIZE), dtype=np.float32)
    model = ModelPolicy(policy)
    model.act(obs)
    assert model.beliefs.shape == (6, NUM_FAULTS) and ((model.beliefs > 0) & (model.beliefs < 1)).all()
    named = policy.named_faults()
    assert named.shape == (6,) and named.dtype == np.int64
    expected = ((model.beliefs >= 0.5).astype(np.int64) << np.arange(NUM_FAULTS)).sum(-1)
    assert np.array_equal(named, expected)

    # Training rows carry the true faults after the observation: the loss reaches the head only
    # through them, and only when the diagnosis weight is set.
    rows = torch.zeros(4, 8, TRAINING_ROW_SIZE)
    rows[..., :INPUT_SIZE] = torch.rand(4, 8, INPUT_SIZE)
    rows[..., INPUT_SIZE + 3] = 1.0  # NODE_NOT_READY active everywhere
    state = {"lstm_h": None, "lstm_c": None}
    head = policy.mlp.diagnosis if lstm else policy.diagnosis
    for weight, expect_grad in ((0.0, False), (1.0, True)):
        policy.zero_grad()
        policy.diagnosis_weight = weight
        logits, values = policy(rows if lstm else rows.reshape(-1, TRAINING_ROW_SIZE), dict(state))
        logits.logsumexp(-1).sum().backward()
        has = head.weight.grad is not None and bool(head.weight.grad.abs().sum() > 0)
        assert has == expect_grad
    assert 0 < policy.take_diagnosis_loss() < NUM_FAULTS  # the one forward that had the loss (summed over faults)
    assert math.isnan(policy.take_diagnosis_loss())  # taken: nothing since
    # Fitting the head to the labels makes it name the fault.
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        logits, _ = policy(rows if lstm else rows.reshape(-1, TRAINING_ROW_SIZE), dict(state))
        (0 * logits.sum()).backward()
        optimizer.step()
    model = ModelPolicy(policy)
    model.act(rows[:, 0, :INPUT_SIZE].numpy())
    assert (model.beliefs[:, 3] > 0.9).all() and (np.delete(model.beliefs, 3, axis=1) < 0.1).all()
