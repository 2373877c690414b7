"""ClusterEnv: one Kubernetes cluster as a gymnasium environment, simulated or real."""

from dataclasses import replace

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rl.actions import ACTION_NAMES, NUM_ACTIONS, REMEDIATION_ACTIONS, ClusterAction, validate_action
from rl.sim import core
from rl.sim.faults import DESCRIPTIONS, EVIDENCE, HUMAN_ONLY, Fault
from rl.sim.scenario import ScenarioConfig
from rl.state import OBS_FIELDS, OBS_SIZE, ClusterState


class ClusterEnv(gym.Env):
    """Diagnose and repair one Kubernetes cluster.

    ## Action space
    `Discrete(15)`, the members of `rl.ClusterAction`: eight diagnostic reads (GET_NODES, GET_PODS,
    GET_EVENTS, GET_DEPLOYMENTS, CHECK_LOGS, DESCRIBE_UNHEALTHY, TOP_NODES, TOP_PODS,
    GET_RESOURCE_QUOTAS), five remedies (RESTART_FAILED_PODS, SCALE_UP_DEPLOYMENT,
    SCALE_DOWN_DEPLOYMENT, DRAIN_NODE, UNCORDON_NODE) and WAIT.

    ## Observation space
    `Box(0, 1, (18,), float32)`: the fields of `rl.ClusterState` in order (node, pod and deployment
    counts and their healthy/unhealthy shares, CPU and memory use, recent warning and normal
    events, and three flags for storage, network and resource-pressure problems found so far). It
    is what the agent has read, not the truth: each field is refreshed only by the action that
    reads it (see `rl.sim.faults`), so it can go stale.

    ## Rewards
    Each step: -0.03; +0.4 for each fault fixed; +0.2 for each fault that needs a human, when it is
    first diagnosed; -1.0 times the drop in cluster health (running pods, available deployments,
    ready nodes); -0.5 for each fault the agent causes (draining a healthy node, scaling a healthy
    deployment). +0.5 when the episode is won, -1.0 when no node is left Ready. Subclasses change
    this by overriding `_calculate_reward`.

    ## Starting state
    A cluster drawn from the scenario (`rl.sim.scenario.ScenarioConfig`): 3-30 nodes, 3-25
    deployments, 30-70% load, with 1-3 faults. The first observation is what `kubectl get
    nodes,pods` shows; deployments, usage, events and flags read as zero until the agent looks.

    ## Episode end
    Terminated when every fault is fixed, except those only a human can fix, which must have been
    diagnosed (a win), or when no node is Ready (a catastrophe). Truncated after `max_steps`.

    On a real cluster (`simulation_mode=False`) the observation comes from the Kubernetes API
    through `rl.kube.KubeBackend`, remedies are dry runs unless that backend allows writes, and an
    episode terminates when an observation finds nothing wrong and nothing unreadable.
    """

    metadata = {"render_modes": ["human", "ansi"], "render_fps": 4}

    def __init__(
        self,
        context=None,
        namespace="default",
        simulation_mode=True,
        max_steps=100,
        render_mode=None,
        scenario=None,
        *,
        backend=None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps: must be a positive integer, got {max_steps!r}")
        if scenario is None:
            scenario = ScenarioConfig()
        elif isinstance(scenario, dict):
            scenario = ScenarioConfig.from_dict(scenario)
        elif not isinstance(scenario, ScenarioConfig):
            raise ValueError(f"scenario: must be a ScenarioConfig or a dict, got {type(scenario).__name__}")
        self.scenario = replace(scenario, max_steps=max_steps)
        self.context = context
        self.namespace = namespace
        self.simulation_mode = simulation_mode
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(OBS_SIZE,), dtype=np.float32)

        self._backend = backend
        if simulation_mode:
            self._batch = core.ClusterBatch(1, self.scenario)
            self._obs = np.zeros((1, OBS_SIZE), dtype=np.float32)
            self._reward = np.zeros(1, dtype=np.float32)
            self._terminal = np.zeros(1, dtype=bool)
            self._truncated = np.zeros(1, dtype=bool)
            self._action = np.zeros(1, dtype=np.int32)
            self._seeded = False
        elif backend is None:
            from rl.kube import KubeBackend  # only real-cluster runs need the kubernetes client

            self._backend = KubeBackend(context=context, namespaces=[namespace] if namespace else None)
        self.seen_faults: set[Fault] = set()  # every fault active at some point of this episode
        self._evidence: dict[Fault, str] = {}
        self._state: ClusterState | None = None
        self._findings: list = []  # real cluster: rl.kube.findings.Finding, from the analyzers
        self._degraded: list[str] = []
        self._step = 0
        self._done = True
        self._total_reward = 0.0
        self._last_result = {"success": True, "message": "reset", "data": {}}

    # -- gymnasium API ------------------------------------------------------------------------

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._step = 0
        self._done = False
        self._total_reward = 0.0
        self._last_result = {"success": True, "message": "reset", "data": {}}
        if self.simulation_mode:
            if seed is not None:
                self._batch.seed(seed)
                self._seeded = True
            elif not self._seeded:
                self._batch.seed(int(self.np_random.integers(0, 2**63)))
                self._seeded = True
            self._batch.reset(self._obs)
            observation = self._obs[0].copy()
            self.seen_faults = set()
            self._evidence = {}
            self._note_faults()
        else:
            observation = self._observe_real()
        if self.render_mode == "human":
            self.render()
        return observation, self._info()

    def step(self, action):
        action = validate_action(action)
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        if self.simulation_mode:
            prev_state = self.true_state()
            self._action[0] = int(action)
            self._batch.step(self._action, self._obs, self._reward, self._terminal, self._truncated, auto_reset=False)
            curr_state = self.true_state()
            self._note_faults()
            result = self._sim_result(action)
            terminated = bool(self._terminal[0])
            truncated = bool(self._truncated[0])
            observation = self._obs[0].copy()
        else:
            prev_state = self._state
            result = self._backend.act(action)
            observation = self._observe_real()
            curr_state = self._state
            terminated = not self._findings and not self._degraded  # the analyzers found nothing open
            truncated = not terminated and self._step + 1 >= self.max_steps
        self._step += 1
        self._done = terminated or truncated
        self._last_result = result
        reward = float(self._calculate_reward(prev_state, curr_state, action, result))
        self._total_reward += reward
        if self.render_mode == "human":
            self.render()
        return observation, reward, terminated, truncated, self._info()

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; use render_mode='ansi' or 'human'")
            return None
        text = self._render_text()
        if self.render_mode == "ansi":
            return text
        print(text)
        return None

    def close(self):
        if self._backend is not None:
            self._backend.close()

    # -- extension point ----------------------------------------------------------------------

    def _calculate_reward(
        self, prev_state: ClusterState, curr_state: ClusterState, action: ClusterAction, result: dict
    ) -> float:
        """The reward for one step. Override to shape it differently.

        In simulation the default is the simulator's own reward (see the class docstring), whose
        parts are in `result["data"]["reward_parts"]`. On a real cluster it is the change in health.
        """
        if self.simulation_mode:
            return float(sum(result["data"]["reward_parts"].values()))
        return 2.0 * (state_health(curr_state) - state_health(prev_state)) + core.REWARD_STEP

    # -- what the simulator knows -------------------------------------------------------------

    def true_state(self) -> ClusterState:
        """The simulated cluster as it really is (the agent only sees `observation`)."""
        if not self.simulation_mode:
            return self._state
        return _state_from_row(self._batch.truth[0])

    def observed_state(self) -> ClusterState:
        """What the agent has read so far, in plain units."""
        if not self.simulation_mode:
            return self._state
        return _state_from_row(self._batch.seen[0])

    def active_faults(self) -> list[Fault]:
        return core.fault_list(self._batch.active[0]) if self.simulation_mode else []

    def evidence(self, fault: Fault) -> str:
        """What `kubectl` showed of `fault` while it was last active (simulation only)."""
        return self._evidence.get(fault, "")

    def _note_faults(self) -> None:
        state = self.true_state()
        for fault in self.active_faults():
            self.seen_faults.add(fault)
            self._evidence[fault] = EVIDENCE[fault].format(size=int(self._batch.size[0, fault]), state=state)

    def diagnosed_faults(self) -> list[Fault]:
        if not self.simulation_mode:
            return []
        return core.fault_list(self._batch.active[0] & self._batch.revealed[0])

    # -- internals ----------------------------------------------------------------------------

    def _observe_real(self) -> np.ndarray:
        observation = self._backend.observe()
        self._state = observation.state
        self._findings = list(observation.findings)
        self._degraded = list(observation.degraded)
        return self._state.to_observation()

    def _sim_result(self, action: ClusterAction) -> dict:
        batch = self._batch
        parts = {name: float(v) for name, v in zip(core.REWARD_PART_NAMES, batch.reward_parts[0], strict=True)}
        fixed = [f.name.lower() for f in core.fault_list(batch.resolved_now[0])]
        diagnosed = {f.name.lower() for f in self.diagnosed_faults()}
        data = {"reward_parts": parts, "resolved": fixed}
        seen = batch.seen[0]
        if action in REMEDIATION_ACTIONS:
            harmful = bool(batch.step_harmful[0])
            if fixed:
                message = f"{ACTION_NAMES[action]}: fixed " + ", ".join(fixed)
            elif harmful:
                message = f"{ACTION_NAMES[action]}: made things worse"
            else:
                message = f"{ACTION_NAMES[action]}: no effect"
            data["harmful"] = harmful
            return {"success": bool(fixed), "message": message, "data": data}
        if action == ClusterAction.WAIT:
            return {"success": True, "message": "waited", "data": data}
        revealed_here = [f.name.lower() for f in core.fault_list(core.REVEAL_MASK[action] & batch.active[0])]
        data["found"] = [DESCRIPTIONS[Fault[name.upper()]] for name in revealed_here if name in diagnosed]
        data["observed"] = {name: float(seen[k]) for k, name in enumerate(OBS_FIELDS)}
        message = f"{ACTION_NAMES[action]}: " + ("; ".join(data["found"]) if data["found"] else "nothing new")
        return {"success": True, "message": message, "data": data}

    def _info(self) -> dict:
        info = {
            "step": self._step,
            "total_reward": self._total_reward,
            "action_result": self._last_result,
        }
        if self.simulation_mode:
            diagnosed = set(self.diagnosed_faults())
            info["issues"] = [
                DESCRIPTIONS[f] + (" [diagnosed]" if f in diagnosed else "") for f in self.active_faults()
            ]
            info["needs_human"] = [DESCRIPTIONS[f] for f in diagnosed if f in HUMAN_ONLY]
        else:
            info["issues"] = [str(f) for f in self._findings]
            info["findings"] = list(self._findings)
            info["degraded"] = list(self._degraded)
            unavailable = getattr(self._backend, "unavailable_actions", None)
            info["unavailable_actions"] = unavailable() if unavailable else {}
        return info

    def _render_text(self) -> str:
        state = self.observed_state()
        lines = [f"step {self._step}/{self.max_steps}  total reward {self._total_reward:+.2f}"]
        lines.append(
            f"nodes {state.num_nodes} (ready {state.nodes_ready}, not ready {state.nodes_not_ready})  "
            f"pods {state.num_pods} (running {state.pods_running}, pending {state.pods_pending}, "
            f"failed {state.pods_failed}, unknown {state.pods_unknown})"
        )
        lines.append(
            f"deployments {state.num_deployments} (available {state.deployments_available}, "
            f"unavailable {state.deployments_unavailable})  cpu {state.cpu_usage_percent:.0f}%  "
            f"memory {state.memory_usage_percent:.0f}%  events warning {state.recent_events_warning} "
            f"normal {state.recent_events_normal}"
        )
        flags = [
            name
            for name, on in (
                ("pvc", state.has_pvc_issues),
                ("network", state.has_network_issues),
                ("resource-pressure", state.has_resource_pressure),
            )
            if on
        ]
        lines.append("flags: " + (", ".join(flags) if flags else "none"))
        lines.append(f"last: {self._last_result['message']}")
        issues = self._info()["issues"]
        lines.append("issues: " + ("; ".join(issues) if issues else "none"))
        return "\n".join(lines)


def state_health(state: ClusterState) -> float:
    """Health in [0, 1] of a cluster state, weighted as the simulator weighs it."""
    pods = max(1, state.num_pods)
    deployments = max(1, state.num_deployments)
    nodes = max(1, state.num_nodes)
    return (
        0.4 * state.pods_running / pods
        + 0.4 * state.deployments_available / deployments
        + 0.2 * state.nodes_ready / nodes
    )


def _state_from_row(row) -> ClusterState:
    values = {}
    for k, name in enumerate(OBS_FIELDS):
        v = float(row[k])
        if name.startswith("has_"):
            values[name] = v >= 0.5
        elif name.endswith("_percent"):
            values[name] = v
        else:
            values[name] = int(round(v))
    return ClusterState(**values)
