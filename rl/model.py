"""The agent's policy network and its model file.

A model file is a `torch.save` of plain data only (tensors, numbers, strings, lists, dicts), so
`torch.load(..., weights_only=True)` reads it without unpickling code:
`{"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "state_dict": {...}, "metadata": {...}}`.
The metadata names the observation fields, the action names, the fault types the diagnosis head
names and the network shape, so a file from another project or an incompatible version is refused
with a clear message. Format 2 added the diagnosis head; format 3 reads the full input of
`rl.agent_input` (the counts, the findings the reads showed, the agent's own history). Older files
are refused (retrain).
"""

import io
import os
import pickle
import re
import warnings
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from rl.actions import ACTION_NAMES, NUM_ACTIONS, ClusterAction
from rl.agent_input import INPUT_FIELDS, INPUT_SIZE, LAST_ACTION_AT, READS, RESULT_APPLIED, RESULT_AT, WRITES_AT
from rl.diagnosis import named_masks
from rl.faults import FAULT_NAMES, HUMAN_ONLY, NUM_FAULTS
from rl.files import atomic_write
from rl.state import OBS_FIELDS
from rl.train_config import MAX_HIDDEN_SIZE, MAX_NUM_LAYERS

FORMAT_NAME = "cluster-code-rl/policy"
FORMAT_VERSION = 3

# Training rows carry, after the input, the simulator's true active faults (one 0/1 column per fault
# type) so that the labels travel with their input through PuffeRL's rollout buffers and minibatch
# sampling. The network reads only the input; the labels feed the diagnosis loss.
TRAINING_ROW_SIZE = INPUT_SIZE + NUM_FAULTS


class ModelError(Exception):
    """A model file that is missing, truncated, foreign or incompatible; the message is one line."""


class ClusterPolicy(nn.Module):
    """An MLP actor-critic over the agent's input (`rl.agent_input`), in PufferLib's encode/decode shape, with a
    diagnosis head: one logit per fault type in `rl.faults`, the agent's belief that the fault
    is active now (what it would report at this step).

    `diagnosis_weight` > 0 (set by training) adds a supervised loss on that head, binary
    cross-entropy against the true active faults that training rows carry after the observation.
    """

    def __init__(self, hidden_size: int = 64, num_layers: int = 2):
        super().__init__()
        check_architecture(hidden_size, num_layers)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.is_continuous = False
        layers: list[nn.Module] = []
        width = INPUT_SIZE
        for _ in range(num_layers):
            layers += [_init(nn.Linear(width, hidden_size)), nn.ReLU()]
            width = hidden_size
        self.encoder = nn.Sequential(*layers)
        # The heads read the memory (the LSTM's output, when there is one) beside what this step's
        # input shows: what a read just showed decides the next move without passing through memory.
        self.actor = _init(nn.Linear(2 * hidden_size, NUM_ACTIONS), std=0.01)
        self.critic = _init(nn.Linear(2 * hidden_size, 1), std=1.0)
        self.diagnosis = _init(nn.Linear(2 * hidden_size, NUM_FAULTS), std=0.01)
        self.diagnosis_weight = 0.0
        self.diagnosis_logits = None  # the head's output at the last acting step (no gradient)
        self._diagnosis_losses = []  # the supervised loss of each training forward since the last take
        self._features = None  # the encoder's output for the batch being decoded

    def encode_observations(self, observations, state=None):
        self._features = self.encoder(observations[..., :INPUT_SIZE].reshape(-1, INPUT_SIZE).float())
        return self._features

    def joined(self, hidden):
        """The heads' input: `hidden` (rows in the order the encoder saw them) beside the encoder's
        features of the same rows."""
        hidden = hidden.reshape(-1, self.hidden_size)
        return torch.cat([hidden, self._features], dim=-1)

    def decode_actions(self, hidden):
        joined = self.joined(hidden)
        return self.actor(joined), self.critic(joined)

    def forward_eval(self, observations, state=None):
        hidden = self.encode_observations(observations, state)
        self.diagnosis_logits = self.diagnosis(self.joined(hidden)).detach()
        return self.decode_actions(hidden)

    def forward(self, observations, state=None):
        hidden = self.encode_observations(observations, state)
        logits, values = self.decode_actions(hidden)
        return self.with_diagnosis_loss(logits, hidden, observations), values

    def with_diagnosis_loss(self, logits, hidden, rows):
        """`logits`, carrying the diagnosis loss for rows that hold their true faults (training)."""
        if self.diagnosis_weight <= 0 or rows.shape[-1] != TRAINING_ROW_SIZE:
            return logits
        truth = rows[..., INPUT_SIZE:].reshape(-1, NUM_FAULTS).float()
        predicted = self.diagnosis(self.joined(hidden))
        # Summed over the fault types (a mean over them would give each a 1/18 share of the gradient).
        loss = nn.functional.binary_cross_entropy_with_logits(predicted, truth, reduction="sum") / truth.shape[0]
        self._diagnosis_losses.append(float(loss.detach()))
        return _CarryLoss.apply(logits, self.diagnosis_weight * loss)

    def take_diagnosis_loss(self) -> float:
        """The mean supervised loss of the training forwards since the last call (NaN if none)."""
        losses, self._diagnosis_losses = self._diagnosis_losses, []
        return sum(losses) / len(losses) if losses else float("nan")

    def named_faults(self):
        """What the agent names at the last acting step: an int64 bitmask per row (bit = Fault)."""
        if self.diagnosis_logits is None:
            return None
        return named_masks(torch.sigmoid(self.diagnosis_logits.detach()).cpu().numpy())

    def shape(self) -> dict:
        return {"hidden_size": self.hidden_size, "num_layers": self.num_layers, "lstm": False}


class _CarryLoss(torch.autograd.Function):
    """Identity on `logits` whose backward also sends gradient 1 into `loss`: PuffeRL's own loss
    reaches the policy through the logits, so an auxiliary loss attached here is added to it
    without changing PuffeRL's training step."""

    @staticmethod
    def forward(ctx, logits, loss):
        return logits.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, torch.ones((), dtype=grad.dtype, device=grad.device)


def check_architecture(hidden_size, num_layers) -> None:
    """Raise ValueError unless the network shape is within the bounds above."""
    for name, value, bound in (
        ("hidden_size", hidden_size, MAX_HIDDEN_SIZE),
        ("num_layers", num_layers, MAX_NUM_LAYERS),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
            raise ValueError(f"{name}: must be an integer from 1 to {bound}, got {value!r}")


def all_finite(policy_or_state: nn.Module | dict) -> bool:
    """True when every weight is a finite number (a diverged run leaves NaN or infinity)."""
    state = policy_or_state.state_dict() if isinstance(policy_or_state, nn.Module) else policy_or_state
    return all(
        not torch.is_tensor(v) or not torch.is_floating_point(v) or bool(torch.isfinite(v).all())
        for v in state.values()
    )


def build_policy(hidden_size: int = 64, num_layers: int = 2, lstm: bool = True) -> nn.Module:
    """The network a model file describes: the MLP, optionally with an LSTM between encoder and heads.

    The LSTM lets the agent remember what it already checked: the observation alone does not
    say whether the logs were read a step ago.
    """
    mlp = ClusterPolicy(hidden_size, num_layers)
    if not lstm:
        return mlp
    return RecurrentClusterPolicy(mlp)


class RecurrentClusterPolicy(nn.Module):
    """PufferLib's LSTMWrapper around `ClusterPolicy` (PuffeRL's recurrent training path)."""

    def __init__(self, mlp: ClusterPolicy):
        super().__init__()
        from types import SimpleNamespace

        import gymnasium
        import numpy as np
        from pufferlib.models import LSTMWrapper

        space = SimpleNamespace(single_observation_space=gymnasium.spaces.Box(0, 1, (INPUT_SIZE,), np.float32))
        self.wrapped = LSTMWrapper(space, mlp, input_size=mlp.hidden_size, hidden_size=mlp.hidden_size)
        self.hidden_size = mlp.hidden_size
        self.is_continuous = False
        self.mlp = mlp

    @property
    def diagnosis_weight(self):
        return self.mlp.diagnosis_weight

    @diagnosis_weight.setter
    def diagnosis_weight(self, value):
        self.mlp.diagnosis_weight = value

    def take_diagnosis_loss(self) -> float:
        return self.mlp.take_diagnosis_loss()

    @property
    def diagnosis_logits(self):
        return self.mlp.diagnosis_logits

    def forward_eval(self, observations, state):
        logits, values = self.wrapped.forward_eval(observations[..., :INPUT_SIZE], state)
        self.mlp.diagnosis_logits = self.mlp.diagnosis(self.mlp.joined(state["hidden"])).detach()
        return logits, values

    def forward(self, observations, state):
        logits, values = self.wrapped.forward(observations[..., :INPUT_SIZE], state)
        return self.mlp.with_diagnosis_loss(logits, state["hidden"], observations), values

    def named_faults(self):
        return self.mlp.named_faults()

    def shape(self) -> dict:
        return {**self.mlp.shape(), "lstm": True}


def _init(layer: nn.Linear, std: float = 2**0.5) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, 0.0)
    return layer


def save_model(path: str | os.PathLike, policy: nn.Module, metadata: dict) -> Path:
    """Write the model file atomically (temp file in the same directory, then rename)."""
    from rl import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "observation_fields": list(OBS_FIELDS),
        "input_fields": list(INPUT_FIELDS),
        "action_names": list(ACTION_NAMES),
        "fault_names": list(FAULT_NAMES),
        "network": policy.shape(),
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **metadata,
    }
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
        "metadata": meta,
    }
    return atomic_torch_save(payload, path)


def atomic_torch_save(payload: dict, path: Path) -> Path:
    """`torch.save` into memory, then `atomic_write`: never half a file, and a full disk is an
    OSError with its errno (ENOSPC), not torch's opaque "file write failed"."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write(path, buffer.getvalue())


def check_unpacked_size(path: Path) -> None:
    """torch.save stores its entries uncompressed: a model or checkpoint file whose entries would unpack to more
    than its own size was made to exhaust memory (a zip bomb), and is refused before it is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip archive: torch.load tells what it is
    size = path.stat().st_size
    if unpacked > size:
        raise ModelError(
            f"{path}: refused: its entries unpack to {unpacked} bytes, more than the file's {size} "
            "(compressed entries; torch.save writes none)"
        )


def load_plain_data(path: Path, what: str):
    """`torch.load` of a file that must hold plain data only (tensors, numbers, strings, lists,
    dicts), never unpickling code. A file that names other Python objects (a pickle exploit's
    `os.system`, a class of another program) is refused in our own words: torch's own message
    suggests `weights_only=False`, which would run the file's code, and carries terminal escapes."""
    check_unpacked_size(path)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not re.search(r"global", str(err), re.IGNORECASE):  # e.g. "Unsupported operand": not a pickle
            raise ModelError(f"{path}: not a readable {what} (truncated or corrupt): not a torch.save file") from None
        named = re.search(r"GLOBAL ([\w.]+)", str(err))
        imports = f" (it imports {named.group(1)})" if named else ""
        raise ModelError(
            f"{path}: refused: the {what} holds Python objects other than plain data{imports}; it is "
            "never unpickled, since that could run code from the file"
        ) from None
    except Exception as err:  # torch raises many types for corrupt or truncated files
        lines = _printable(str(err)).strip().splitlines()
        reason = lines[0].strip() if lines else type(err).__name__
        raise ModelError(f"{path}: not a readable {what} (truncated or corrupt): {reason[:200]}") from None


def _printable(text: str) -> str:
    """`text` without terminal escape sequences and other control characters (newlines kept)."""
    text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", text)
    return "".join(c for c in text if c == "\n" or c.isprintable())


def read_model_file(path: str | os.PathLike) -> dict:
    """Load and check a model file's payload without building the network."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    payload = load_plain_data(path, "model file")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ModelError(f"{path}: not a cluster-code-rl model file")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelError(
            f"{path}: model format version {version!r} is newer than this tool supports "
            f"({FORMAT_VERSION}); upgrade cluster-code-rl"
        )
    if version < FORMAT_VERSION:
        raise ModelError(
            f"{path}: model format version {version} predates the findings input; this tool reads version "
            f"{FORMAT_VERSION}: retrain with `cluster-rl train`"
        )
    meta = payload.get("metadata")
    if not isinstance(meta, dict) or not isinstance(payload.get("state_dict"), dict):
        raise ModelError(f"{path}: model file is missing its metadata or weights")
    if meta.get("input_fields") != list(INPUT_FIELDS):
        raise ModelError(
            f"{path}: model was trained on a different input ({len(meta.get('input_fields') or [])} fields, this "
            f"tool gives {INPUT_SIZE}): retrain with `cluster-rl train`"
        )
    if meta.get("action_names") != list(ACTION_NAMES):
        raise ModelError(f"{path}: model was trained with different actions")
    if meta.get("fault_names") != list(FAULT_NAMES):
        raise ModelError(f"{path}: model names a different set of faults")
    network = meta.get("network")
    if not isinstance(network, dict):
        raise ModelError(f"{path}: model file does not describe its network")
    try:
        check_architecture(network.get("hidden_size"), network.get("num_layers"))
        if not isinstance(network.get("lstm", False), bool):
            raise ValueError("lstm: must be true or false")
    except ValueError as err:
        raise ModelError(f"{path}: model describes an unsupported network: {err}") from None
    state = payload["state_dict"]
    if not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ModelError(f"{path}: model weights are not a mapping of names to tensors")
    if not all_finite(state):
        raise ModelError(f"{path}: model weights are not all finite numbers (NaN or infinity): a diverged training run")
    return payload


def load_model(path: str | os.PathLike, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Read a model file into its network, in eval mode; raise ModelError on any problem."""
    payload = read_model_file(path)
    meta = payload["metadata"]
    network, state = meta["network"], payload["state_dict"]
    hidden_size, num_layers, lstm = network["hidden_size"], network["num_layers"], network.get("lstm", False)
    try:
        with torch.device("meta"):  # compare shapes before allocating anything
            expected = {k: tuple(v.shape) for k, v in build_policy(hidden_size, num_layers, lstm).state_dict().items()}
        if expected != {k: tuple(v.shape) for k, v in state.items()}:
            raise ValueError("the weights' names or shapes differ")
        policy = build_policy(hidden_size, num_layers, lstm)
        policy.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"{path}: weights do not match the network they describe: {reason}") from None
    policy.to(device).eval()
    return policy, meta


class ModelPolicy:
    """A trained model as a policy over observation batches (greedy unless `sample`).

    After each call, `beliefs` (float32, batch x fault types) holds the diagnosis head's probability
    that each fault is active: what the agent names (at 0.5 or more).

    A recurrent model keeps one memory per cluster, cleared when that cluster's episode starts
    and every `context` steps after, as in training, where PuffeRL starts each rollout of
    `num_steps` with a clear memory.
    """

    name = "model"

    def __init__(self, policy: nn.Module, device: str = "cpu", sample: bool = False, seed: int = 0, context: int = 32):
        self.policy = policy.to(device).eval()
        self.device = device
        self.sample = sample
        self.context = context
        self.recurrent = isinstance(policy, RecurrentClusterPolicy)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.state = None
        self.age = None
        self.beliefs = None

    def reset(self, mask=None) -> None:
        if self.state is None:
            return
        if mask is None:
            self.state = None
            return
        rows = torch.as_tensor(mask, device=self.device)
        self.state["lstm_h"][rows] = 0
        self.state["lstm_c"][rows] = 0
        self.age[rows] = 0

    @torch.no_grad()
    def evaluate(self, observations, mask=None):
        """Actions, their probabilities and the state values for an observation batch. `mask`
        (bool, batch x actions) leaves out the actions that are False: the greedy choice skips them."""
        obs = torch.as_tensor(observations, dtype=torch.float32, device=self.device)
        state = None
        if self.recurrent:
            n = obs.shape[0]
            if self.state is None or self.state["lstm_h"].shape[0] != n:
                zeros = torch.zeros(n, self.policy.hidden_size, device=self.device)
                self.state = {"lstm_h": zeros, "lstm_c": zeros.clone()}
                self.age = torch.zeros(n, dtype=torch.long, device=self.device)
            stale = self.age >= self.context
            self.state["lstm_h"][stale] = 0
            self.state["lstm_c"][stale] = 0
            self.age[stale] = 0
            state = {"lstm_h": self.state["lstm_h"], "lstm_c": self.state["lstm_c"]}
        logits, values = self.policy.forward_eval(obs, state)
        self.beliefs = torch.sigmoid(self.policy.diagnosis_logits).cpu().numpy()
        if self.recurrent:
            self.state = {"lstm_h": state["lstm_h"], "lstm_c": state["lstm_c"]}
            self.age += 1
        allowed = ~_just_read(obs)
        allowed[:, ClusterAction.WAIT] &= ~_sees_work_left(obs, self.policy.diagnosis_logits)
        if mask is not None:
            allowed &= torch.as_tensor(mask, dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(~allowed, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if self.sample:
            actions = torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)
        else:
            actions = probs.argmax(dim=-1)
        confidence = probs.gather(1, actions[:, None]).squeeze(-1)
        return actions.cpu().numpy().astype("int32"), confidence.cpu().numpy(), values.reshape(-1).cpu().numpy()

    def act(self, observations):
        return self.evaluate(observations)[0]


_AGENT_FIXES = torch.tensor([f not in HUMAN_ONLY for f in range(NUM_FAULTS)], dtype=torch.bool)
_IS_READ = torch.zeros(NUM_ACTIONS, dtype=torch.bool)
_IS_READ[list(READS)] = True


def _sees_work_left(inputs: torch.Tensor, diagnosis_logits: torch.Tensor) -> torch.Tensor:
    """(batch) True where writes are allowed and the agent's own diagnosis names a fault it may fix:
    a report now would leave it, so the agent does not report yet."""
    fixable = (diagnosis_logits > 0) & _AGENT_FIXES.to(inputs.device)[None, :]
    return (inputs[:, WRITES_AT] > 0.5) & fixable.any(dim=1)


def _just_read(inputs: torch.Tensor) -> torch.Tensor:
    """(batch x actions) True for the read each cluster's last action made, when it answered: the
    same read at once can show nothing new, so the agent never repeats it (a greedy network whose
    input did not change would otherwise repeat it until the episode runs out)."""
    last = inputs[:, LAST_ACTION_AT : LAST_ACTION_AT + NUM_ACTIONS]
    answered = inputs[:, RESULT_AT + RESULT_APPLIED] > 0.5
    return (last > 0.5) & _IS_READ.to(inputs.device)[None, :] & answered[:, None]
