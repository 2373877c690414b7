"""ClusterEnv: one Kubernetes cluster as a gymnasium environment, simulated or real."""

from dataclasses import replace

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rl.actions import NUM_ACTIONS, ClusterAction, validate_action
from rl.agent_input import INPUT_SIZE, READS, USAGE_READS
from rl.diagnosis import mask_to_faults, to_mask
from rl.faults import Fault, open_problems
from rl.sim import layout
from rl.sim.backend import Reading, SimBackend
from rl.sim.scenario import ScenarioConfig
from rl.state import OBS_SIZE, ClusterState


class ClusterEnv(gym.Env):
    """Diagnose and repair one Kubernetes cluster.

    ## Action space
    `Discrete(15)`, the members of `rl.ClusterAction`: nine diagnostic reads (GET_NODES, GET_PODS,
    GET_EVENTS, GET_DEPLOYMENTS, CHECK_LOGS, DESCRIBE_UNHEALTHY, TOP_NODES, TOP_PODS,
    GET_RESOURCE_QUOTAS), five remedies (RESTART_FAILED_PODS, SCALE_UP_DEPLOYMENT,
    SCALE_DOWN_DEPLOYMENT, DRAIN_NODE, UNCORDON_NODE) and WAIT, the agent's "nothing left for me
    to do".

    ## Observation space
    By default (`observation="counts"`) `Box(0, 1, (18,), float32)`: the counts of what the agent
    has read, not the truth. Each entry is refreshed only by the read that shows it, so it can go
    stale; remedies and WAIT refresh nothing. Totals are log-scaled so that 3 and 1,000 nodes both fit;
    a bad count is 0 for none and at least 0.1 for one, whatever the cluster's size
    (`rl.state.encode_observation`). With `observation="full"`, `Box(0, 1, (INPUT_SIZE,), float32)`:
    the agent's whole input (`rl.agent_input`: these counts, the findings the reads showed, which reads
    are fresh, what it did this episode, its last action and result, whether writes are allowed).

    | index | field | encoding | refreshed by |
    |---|---|---|---|
    | 0 | num_nodes | log1p(n) / log1p(1000) | GET_NODES |
    | 1 | nodes_ready (Ready and schedulable) | 1 - bad(n - ready, n) | GET_NODES |
    | 2 | nodes_not_ready | bad(count, n) | GET_NODES |
    | 3 | num_pods | log1p(p) / log1p(250000) | GET_PODS, DESCRIBE_UNHEALTHY |
    | 4 | pods_running | 1 - bad(p - running, p) | GET_PODS, DESCRIBE_UNHEALTHY |
    | 5 | pods_pending | bad(count, p) | GET_PODS, DESCRIBE_UNHEALTHY |
    | 6 | pods_failed | bad(count, p) | GET_PODS, DESCRIBE_UNHEALTHY |
    | 7 | pods_unknown | bad(count, p) | GET_PODS, DESCRIBE_UNHEALTHY |
    | 8 | num_deployments | log1p(d) / log1p(20000) | GET_DEPLOYMENTS |
    | 9 | deployments_available | 1 - bad(d - available, d) | GET_DEPLOYMENTS |
    | 10 | deployments_unavailable | bad(count, d) | GET_DEPLOYMENTS |
    | 11 | cpu_usage_percent | percent / 100 (0 without metrics-server) | TOP_NODES, TOP_PODS |
    | 12 | memory_usage_percent | percent / 100 (0 without metrics-server) | TOP_NODES, TOP_PODS |
    | 13 | recent_events_warning | log1p(count) / log1p(10000) | GET_EVENTS |
    | 14 | recent_events_normal | log1p(count) / log1p(10000) | GET_EVENTS |
    | 15 | has_pvc_issues | 0 or 1: a read showed a PVC or volume finding | every read |
    | 16 | has_network_issues | 0 or 1: a read showed a DNS or network finding | every read |
    | 17 | has_resource_pressure | 0 or 1: a read showed node pressure or an exceeded quota | every read |

    where bad(c, t) = 0 if c == 0 else 0.1 + 0.9 * log1p(c) / log1p(t).

    ## Rewards
    Each step: -0.03; +0.4 for each fault fixed; -1.0 times the drop in cluster health (running pods,
    available deployments, ready nodes), and -0.4 for each fault that breaks out on its own; -2.0
    each time a remedy acts on a wrong object (a remedy used before a read identified its target, or
    the wrong way round). WAIT: +0.5 for an exact report; -1.0, and -0.5 more per fault missed, left
    or falsely named, otherwise. -1.0 when no node is left Ready. Subclasses change this by
    overriding `_calculate_reward`.

    ## Starting state
    A cluster drawn from the scenario (`rl.sim.scenario.ScenarioConfig`): by default 3-1,000 nodes
    (log-uniform) of 10-110 pods each, 0-4 faults (none in 22% of episodes, one in 33%), a quarter of
    them read-only, 15% without metrics-server, with the benign findings real clusters show. The
    first observation is the summary of `kubectl get nodes,pods`: node and pod counts, no object
    singled out yet; everything else reads as zero until the agent looks.

    ## Episode end
    WAIT is the agent's report and ends the episode. It is resolved when nothing the agent may fix is
    left and the faults named (see "Naming faults") are exactly the active faults it must name:
    those only a human can fix, or all of them on a read-only cluster (where remedies are dry runs). The
    episode also terminates when no node is left Ready (a catastrophe), and is truncated (not resolved)
    after `max_steps`.

    On a real cluster (`simulation_mode=False`) the observation comes from the Kubernetes API
    through `rl.kube.KubeBackend`, staged read by read as in simulation (`rl.kube.agent_view`),
    remedies are dry runs unless that backend allows writes, and WAIT
    ends the episode: it is resolved when the last observation found nothing wrong and nothing
    unreadable, and the agent names nothing. Both backends sit behind the same observe/act interface (`rl.sim.backend`).

    ## Naming faults
    `step(action, named=None)`: `named` is what the agent names as wrong with the cluster at this
    step, as a bit mask (bit f = `rl.faults.Fault` f) or a list of `Fault`s or fault names
    (`rl.diagnosis.to_mask`). In simulation a WAIT wins only if `named` is exactly what it must name;
    None takes the faults the agent's reads have identified, of those it must name (what a runbook
    that says what it found would name). On a real cluster a WAIT is "resolved" only when nothing is
    named, no finding is open and nothing was unreadable; otherwise it ends the episode as "stopped".

    `info` carries, at every step, `step`, `total_reward`, `action_result`, `issues` and
    `named_faults` (the fault names the agent named at this step; [] before the first step or with
    `named=None`); in simulation also the truth: `active_faults`, `diagnosed_faults` and `must_name`
    (fault names), `read_only`, `true_health` and `needs_human`; on a real cluster `degraded` (what
    could not be read) and `unknown` (its entries that only leave numbers unknown, such as node usage
    without metrics-server: they do not keep a WAIT from resolving). `outcome` is "resolved",
    "stopped" (a report that was not exact, or on a real cluster one with something named or open),
    "catastrophe", "truncated" or None while the episode runs.
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
        observation="counts",
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
        if observation not in ("counts", "full"):
            raise ValueError(f"observation: must be 'counts' or 'full', got {observation!r}")
        self.observation = observation
        width = INPUT_SIZE if observation == "full" else OBS_SIZE
        self.observation_space = spaces.Box(0.0, 1.0, shape=(width,), dtype=np.float32)

        if simulation_mode:
            self._backend = SimBackend(self.scenario)
        else:
            if backend is None:
                from rl.kube import KubeBackend  # only real-cluster runs need the kubernetes client

                backend = KubeBackend(context=context, namespaces=[namespace] if namespace else None)
            self._backend = RealCluster(backend)
        self._reading: Reading | None = None
        self._step = 0
        self._done = True
        self._total_reward = 0.0
        self._outcome = None
        self._last_result = {"success": True, "message": "reset", "data": {}}
        self._named: list[Fault] = []

    # -- gymnasium API ------------------------------------------------------------------------

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._step = 0
        self._done = False
        self._total_reward = 0.0
        self._outcome = None
        self._last_result = {"success": True, "message": "reset", "data": {}}
        self._named = []
        self._backend.reset(seed, lambda: int(self.np_random.integers(0, 2**63)))
        self._reading = self._backend.observe()
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action, named=None):
        action = validate_action(action)
        mask = None if named is None else to_mask(named)
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        prev_state = self.true_state()
        self._named = [] if mask is None else mask_to_faults(mask)
        result = self._backend.act(action, mask)
        self._reading = self._backend.observe()
        curr_state = self.true_state()
        self._step += 1
        self._outcome = result["data"].get("outcome")
        if self._outcome is None and self._step >= self.max_steps:
            self._outcome = "truncated"
        terminated = self._outcome in ("resolved", "catastrophe", "stopped")
        truncated = self._outcome == "truncated"
        self._done = terminated or truncated
        self._last_result = result
        reward = float(self._calculate_reward(prev_state, curr_state, action, result))
        self._total_reward += reward
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, truncated, self._info()

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
        self._backend.close()

    # -- extension point ----------------------------------------------------------------------

    def _calculate_reward(
        self, prev_state: ClusterState, curr_state: ClusterState, action: ClusterAction, result: dict
    ) -> float:
        """The reward for one step. Override to shape it differently.

        In simulation the default is the simulator's own reward (see the class docstring), whose
        parts are in `result["data"]["reward_parts"]`. On a real cluster it is the change in health.
        """
        parts = result["data"].get("reward_parts")
        if parts is not None:
            return float(sum(parts.values()))
        return 2.0 * (state_health(curr_state) - state_health(prev_state)) + layout.REWARD_STEP

    # -- what the backend knows ---------------------------------------------------------------

    @property
    def kube_backend(self):
        """The real cluster's `rl.kube.KubeBackend` (its reading, refusals, blocked remedies); None in simulation."""
        return getattr(self._backend, "kube", None)

    def true_state(self) -> ClusterState:
        """The cluster as it really is: in simulation the truth (the agent only sees `observation`),
        on a real cluster the last observation."""
        return self._backend.true_state()

    def observed_state(self) -> ClusterState:
        """What the agent has read so far, in plain units."""
        return self._reading.state if self._reading is not None else ClusterState()

    def active_faults(self) -> list[Fault]:
        """The faults active now (simulation only; a real cluster's are its findings)."""
        return self._backend.active_faults()

    def diagnosed_faults(self) -> list[Fault]:
        return self._backend.diagnosed_faults()

    @property
    def seen_faults(self) -> set[Fault]:
        """Every fault active at some point of this episode (simulation only)."""
        return self._backend.seen_faults

    def evidence(self, fault: Fault) -> str:
        """What `kubectl` showed of `fault` while it was last active (simulation only)."""
        return self._backend.evidence(fault)

    def support(self, fault: Fault) -> list[dict]:
        """The reads of this episode that showed `fault`'s symptoms, `{"step", "read", "showed"}`
        (simulation; on a real cluster the analyzer findings of that fault type are the support)."""
        return self._backend.support(fault)

    # -- internals ----------------------------------------------------------------------------

    def _observation(self) -> np.ndarray:
        return self._reading.inputs if self.observation == "full" else self._reading.observation

    def _info(self) -> dict:
        return {
            "step": self._step,
            "total_reward": self._total_reward,
            "action_result": self._last_result,
            "outcome": self._outcome,
            "named_faults": [f.name.lower() for f in self._named],
            **self._backend.info(),
        }

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


class RealCluster:
    """`rl.kube.KubeBackend` behind the interface of `SimBackend`: the agent's input staged as in the
    simulator (`rl.kube.agent_view.AgentView`), and WAIT ends the episode."""

    simulated = False

    def __init__(self, kube):
        from rl.kube.agent_view import AgentView

        self.kube = kube
        self.view = AgentView(writes_allowed=kube.policy.allow_writes)
        self.seen_faults: set[Fault] = set()
        self._observation = None

    def reset(self, seed, fallback_seed) -> None:
        self.kube.look_again()
        self._observation = self.kube.observe()
        self.view.start(self._observation.state)

    def observe(self) -> Reading:
        if self._observation is None:
            self._observation = self.kube.observe()
        o = self._observation
        inputs = self.view.row()
        return Reading(
            self.view.state(), inputs[:OBS_SIZE].copy(), inputs, list(o.findings), list(o.degraded), list(o.unknown)
        )

    def act(self, action: ClusterAction, named: int | None = None) -> dict:
        result = self.kube.act(action)
        self._observation = self.kube.observe()  # the same observation unless the cluster changed
        outcome = result["data"]["result"]
        self.view.record(action, outcome)
        if action in READS and (outcome == "applied" or action in USAGE_READS):
            o = self._observation
            self.view.show(action, o.state, o.findings, _usage(action, outcome, o, result["data"]))
        if action == ClusterAction.WAIT:
            # The agent is done. It resolved the cluster if a fresh look finds nothing wrong (only what
            # healthy clusters show, `rl.faults.open_problems`), nothing
            # that could hide a problem went unread (unknown usage numbers do not), and the agent
            # itself names nothing.
            reading = self.observe()
            result.setdefault("data", {})
            blocking = [d for d in reading.degraded if d not in reading.unknown]
            clean = not (open_problems(reading.findings) or blocking or named)
            result["data"]["outcome"] = "resolved" if clean else "stopped"
        return result

    def close(self) -> None:
        self.kube.close()

    def true_state(self) -> ClusterState:
        if self._observation is None:
            self._observation = self.kube.observe()
        return self._observation.state

    def active_faults(self) -> list[Fault]:
        return []

    def diagnosed_faults(self) -> list[Fault]:
        return []

    def evidence(self, fault: Fault) -> str:
        return ""

    def support(self, fault: Fault) -> list[dict]:
        return []

    def info(self) -> dict:
        reading = self.observe()
        unavailable = getattr(self.kube, "unavailable_actions", None)
        return {
            "issues": [str(f) for f in reading.findings],
            "findings": list(reading.findings),  # rl.findings.Finding, from the analyzers
            "degraded": list(reading.degraded),
            "unknown": list(reading.unknown),
            "unavailable_actions": unavailable() if unavailable else {},
        }


def _usage(action: ClusterAction, outcome: str, observation, data: dict) -> tuple[float, float] | None:
    """The CPU and memory use a `top` read showed (None: unavailable)."""
    if action not in USAGE_READS or outcome != "applied":
        return None
    if action == ClusterAction.TOP_NODES:
        return observation.node_usage
    return data["cpu_percent"], data["memory_percent"]


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
