"""ClusterPufferEnv: N simulated clusters as one native PufferLib environment."""

import gymnasium
import numpy as np
import pufferlib

from rl.actions import NUM_ACTIONS
from rl.agent_input import INPUT_SIZE
from rl.diagnosis import fault_columns
from rl.faults import NUM_FAULTS
from rl.sim import layout
from rl.sim.batch import ClusterBatch
from rl.sim.scenario import ScenarioConfig

# PuffeRL clips every step's reward to [-1, 1]. Unscaled, a step that drains a healthy node (-2.0)
# would look no worse to PPO than an early WAIT on a degrading cluster, and harm would be cheap. The
# simulator's rewards are halved on their way to PPO instead; a rare worst step (a catastrophe caused
# by a harmful remedy) is still clipped. Reported returns are the simulator's own.
REWARD_SCALE = 0.5


class ClusterPufferEnv(pufferlib.PufferEnv):
    """Simulates `num_envs` clusters in one process, writing into PufferLib's shared buffers.

    Each cluster is one agent with `ClusterEnv`'s observation, actions and reward; clusters reset
    themselves when their episode ends. Cluster i behaves exactly like `ClusterEnv` seeded with
    `seed + i`.

    Each row is the agent's input (`rl.agent_input`) followed by the cluster's true active faults, one
    0/1 column per fault type: the labels of the policy's diagnosis head, which travel with their
    observation through the trainer's buffers (the network reads only the observation). What the
    agent names, which decides whether its WAIT ends the episode, comes from `named_source` (a
    callable returning the int64 bitmasks the policy named with the actions it just chose); without
    one, the faults its reads identified count as named. Every `report_interval` steps, `step` returns one info dict with the finished
    episodes' mean return, length, resolution rate and harmful actions, and how many finished.
    """

    def __init__(
        self,
        num_envs: int = 4096,
        scenario: ScenarioConfig | None = None,
        seed: int = 0,
        report_interval: int = 32,
        buf=None,
    ):
        self.single_observation_space = gymnasium.spaces.Box(
            0.0, 1.0, shape=(INPUT_SIZE + NUM_FAULTS,), dtype=np.float32
        )
        self.single_action_space = gymnasium.spaces.Discrete(NUM_ACTIONS)
        self.num_agents = num_envs
        self.render_mode = None
        self.report_interval = report_interval
        super().__init__(buf)
        self.batch = ClusterBatch(num_envs, scenario)
        self.cluster_observations = np.zeros((num_envs, INPUT_SIZE), dtype=np.float32)
        self.named_source = None
        self.seed_value = seed
        self._steps = 0
        self._finished = np.zeros(4, dtype=np.float64)  # count, return, length, harmful
        self._resolved = 0
        self.episodes_total = 0
        self.resolved_total = 0

    def reset(self, seed=None):
        self.batch.seed(self.seed_value if seed is None else seed)
        self.batch.reset(self.cluster_observations)
        self._write_rows()
        self.rewards[:] = 0
        self.terminals[:] = False
        self.truncations[:] = False
        self._steps = 0
        return self.observations, []

    def step(self, actions):
        batch = self.batch
        named = self.named_source() if self.named_source is not None else None
        batch.step(actions, self.cluster_observations, self.rewards, self.terminals, self.truncations, True, named)
        self.rewards *= REWARD_SCALE
        self._write_rows()
        self._steps += 1
        st = batch.state
        ended = st.outcome != layout.OUTCOME_RUNNING
        if ended.any():
            self._finished[0] += ended.sum()
            self._finished[1] += st.final_return[ended].sum()
            self._finished[2] += st.final_length[ended].sum()
            self._finished[3] += st.final_harmful[ended].sum()
            resolved = int((st.outcome == layout.OUTCOME_RESOLVED).sum())
            self._resolved += resolved
            self.episodes_total += int(ended.sum())
            self.resolved_total += resolved
        infos = []
        if self._steps % self.report_interval == 0 and self._finished[0] > 0:
            count, total_return, total_length, total_harmful = self._finished
            infos.append(
                {
                    "episode_return": total_return / count,
                    "episode_length": total_length / count,
                    "resolution_rate": self._resolved / count,
                    "harmful_actions": total_harmful / count,
                    "episodes": count,
                }
            )
            self._finished[:] = 0
            self._resolved = 0
        return self.observations, self.rewards, self.terminals, self.truncations, infos

    def restart_episodes(self):
        """Start a new episode in every cluster from its current random stream (after a resume)."""
        self.batch.reset(self.cluster_observations)
        self._write_rows()

    def _write_rows(self):
        self.observations[:, :INPUT_SIZE] = self.cluster_observations
        self.observations[:, INPUT_SIZE:] = fault_columns(self.batch.state.active)

    def close(self):
        pass
