"""Kickstarting: a short imitation phase before PPO, learning from the scripted expert's runbook.

PPO from a random start spends most of a short budget discovering that a cluster must be surveyed
before it is touched and that WAIT ends an episode. So training first imitates `ExpertPolicy` on
simulated clusters (cross-entropy on its actions, the diagnosis head's loss on the true faults, and
the value head regressed on the discounted returns, so that PPO starts with a critic that fits the
policy it inherits), then PPO improves on it with the environment's reward.

Imitation goes in rounds (DAgger): the first on the expert's own episodes, each later one on
episodes the network plays itself, with the expert saying at every step what it would have done
there. A network that only saw the expert's episodes never learns what to do after its own
mistakes; these rounds show it.

The rollouts are cut into segments of `num_steps` with a fresh recurrent state at each segment's
start, exactly as PuffeRL collects them, so the network learns to act from the memory it will have.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rl.agent_input import INPUT_SIZE
from rl.diagnosis import fault_columns, named_masks
from rl.faults import NUM_FAULTS
from rl.policies import ExpertPolicy
from rl.puffer_env import REWARD_SCALE
from rl.sim.batch import started_batch
from rl.sim.scenario import ScenarioConfig


@dataclass
class Demonstrations:
    rows: torch.Tensor  # float32 (segments, num_steps, INPUT_SIZE + NUM_FAULTS): input, true faults
    actions: torch.Tensor  # int64 (segments, num_steps): what the expert did
    returns: torch.Tensor  # float32 (segments, num_steps): discounted return from that step on


def demonstrations(
    num_envs: int,
    num_steps: int,
    segments_per_env: int,
    scenario: ScenarioConfig,
    seed: int,
    gamma: float,
    stop_requested: Callable[[], bool] | None = None,
    learner=None,
) -> Demonstrations | None:
    """The expert's choices on `num_envs` clusters for `segments_per_env * num_steps` steps each:
    the expert acting, or with a `learner` (a policy: `act`, `reset`, `beliefs`) acting while the
    expert shadows it; None when `stop_requested()` (asked before every step) says True."""
    horizon = num_steps * segments_per_env
    batch, (obs, rewards, terminals, truncations) = started_batch(num_envs, scenario, seed)
    expert = ExpertPolicy(num_envs, seed)
    expert.reset(None)

    rows = np.zeros((num_envs, horizon, INPUT_SIZE + NUM_FAULTS), dtype=np.float32)
    actions = np.zeros((num_envs, horizon), dtype=np.int64)
    step_rewards = np.zeros((num_envs, horizon), dtype=np.float32)
    ends = np.zeros((num_envs, horizon), dtype=bool)
    for t in range(horizon):
        if stop_requested is not None and stop_requested():
            return None
        rows[:, t, :INPUT_SIZE] = obs
        rows[:, t, INPUT_SIZE:] = fault_columns(batch.state.active)
        chosen = expert.propose(obs)
        actions[:, t] = chosen
        if learner is None:
            taken, named = chosen, named_masks(expert.beliefs)
        else:
            taken, named = np.asarray(learner.act(obs), dtype=np.int32), named_masks(learner.beliefs)
        expert.record(taken)
        batch.step(taken, obs, rewards, terminals, truncations, True, named)
        step_rewards[:, t] = rewards * REWARD_SCALE  # as PPO sees them
        ends[:, t] = terminals | truncations
        expert.reset(ends[:, t])
        if learner is not None:
            learner.reset(ends[:, t])

    returns = np.zeros_like(step_rewards)
    following = np.zeros(num_envs, dtype=np.float32)  # the tail past the last step counts as 0
    for t in reversed(range(horizon)):
        following = step_rewards[:, t] + gamma * following * ~ends[:, t]
        returns[:, t] = following

    def segments(a):
        return torch.from_numpy(a.reshape(num_envs * segments_per_env, num_steps, *a.shape[2:]).copy())

    return Demonstrations(segments(rows), segments(actions), segments(returns))


def joined(a: Demonstrations, b: Demonstrations) -> Demonstrations:
    return Demonstrations(
        torch.cat([a.rows, b.rows]), torch.cat([a.actions, b.actions]), torch.cat([a.returns, b.returns])
    )


def imitate(
    policy: torch.nn.Module,
    data: Demonstrations,
    epochs: int,
    minibatch_segments: int,
    learning_rate: float,
    value_coefficient: float,
    max_grad_norm: float,
    generator: torch.Generator,
    device: str = "cpu",
    stop_requested: Callable[[], bool] | None = None,
) -> dict:
    """Fit `policy` to the demonstrations; the last epoch's mean losses.

    `stop_requested()` is asked before every minibatch; when it says True the fit ends there (a
    signal arrived: the caller checkpoints what it has). `policy` may be wrapped in DDP: every rank
    must then call this with the same number of segments, and `stop_requested` must answer the
    same on every rank at the same minibatch.
    """
    optimizer = torch.optim.Adam(policy.parameters(), lr=learning_rate, eps=1e-5)
    count = data.actions.shape[0]
    losses = {}
    for _ in range(epochs):
        order = torch.randperm(count, generator=generator)
        totals = np.zeros(3)
        batches = 0
        for start in range(0, count - minibatch_segments + 1, minibatch_segments):
            if stop_requested is not None and stop_requested():
                return losses
            idx = order[start : start + minibatch_segments]
            rows = data.rows[idx].to(device)
            state = {"lstm_h": None, "lstm_c": None}
            logits, values = policy(rows, state)
            action_loss = torch.nn.functional.cross_entropy(logits, data.actions[idx].to(device).reshape(-1))
            value_loss = 0.5 * ((values.reshape(-1) - data.returns[idx].to(device).reshape(-1)) ** 2).mean()
            loss = action_loss + value_coefficient * value_loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
            optimizer.step()
            totals += (action_loss.item(), value_loss.item(), _unwrapped(policy).take_diagnosis_loss())
            batches += 1
        losses = dict(
            zip(("imitation_loss", "imitation_value_loss", "diagnosis_loss"), totals / max(batches, 1), strict=True)
        )
    return losses


def _unwrapped(policy):
    return getattr(policy, "module", policy)
