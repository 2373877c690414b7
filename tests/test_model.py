import pickle

import numpy as np
import pytest
import torch

from rl.model import FORMAT_NAME, ModelError, ModelPolicy, build_policy, load_model, read_model_file, save_model


@pytest.mark.parametrize("lstm", [True, False])
def test_save_and_load_round_trip(tmp_path, lstm):
    policy = build_policy(hidden_size=16, num_layers=1, lstm=lstm)
    path = save_model(tmp_path / "m.pt", policy, {"global_step": 42, "seed": 3, "metrics": {"resolution_rate": 0.9}})
    loaded, meta = load_model(path)
    assert meta["global_step"] == 42 and meta["network"] == {"hidden_size": 16, "num_layers": 1, "lstm": lstm}
    assert meta["action_names"][0] == "GET_NODES" and len(meta["observation_fields"]) == 18
    for key, value in policy.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    obs = np.random.default_rng(0).random((5, 18), dtype=np.float32)
    a, _, _ = ModelPolicy(policy).evaluate(obs)
    b, _, _ = ModelPolicy(loaded).evaluate(obs)
    assert np.array_equal(a, b)
    assert list(tmp_path.iterdir()) == [tmp_path / "m.pt"]  # no temp files left behind


def test_model_file_loads_with_weights_only(tmp_path):
    path = save_model(tmp_path / "m.pt", build_policy(8, 1), {"global_step": 1})
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT_NAME and payload["format_version"] == 1


class Exploit:
    def __reduce__(self):
        return (open, ("/tmp/cluster-rl-test-pwned", "w"))


def test_a_file_carrying_code_is_refused_without_running_it(tmp_path):
    target = tmp_path / "evil.pt"
    torch.save({"format": FORMAT_NAME, "payload": Exploit()}, target)
    with pytest.raises(ModelError, match="not a readable model file"):
        load_model(target)
    import os

    assert not os.path.exists("/tmp/cluster-rl-test-pwned")
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ModelError):
        load_model(plain)


@pytest.mark.parametrize(
    "case", ["missing", "directory", "truncated", "garbage", "foreign", "newer", "other-obs", "shape"]
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
    elif case == "other-obs":
        torch.save({**payload, "metadata": {**payload["metadata"], "observation_fields": ["a", "b"]}}, path)
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
    obs = np.random.default_rng(1).random((3, 18), dtype=np.float32)
    first = policy.evaluate(obs)[2]
    second = policy.evaluate(obs)[2]
    assert not np.allclose(first, second)  # same input, different memory
    policy.reset(np.array([True, False, False]))
    third = policy.evaluate(obs)[2]
    assert third[0] == pytest.approx(first[0], abs=1e-6) and third[1] != pytest.approx(first[1], abs=1e-6)


def test_read_model_file_returns_metadata(tmp_path):
    path = save_model(tmp_path / "m.pt", build_policy(8, 1), {"global_step": 7, "run_id": "r1"})
    assert read_model_file(path)["metadata"]["run_id"] == "r1"
