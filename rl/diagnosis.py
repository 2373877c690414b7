"""What an agent names as wrong with a cluster, and how well that matches the truth.

Every policy exposes, after each `act` (and a model after `evaluate`), `beliefs`: a float32 array
`(N, NUM_FAULTS)`, the probability the agent gives each fault type (column = `rl.faults.Fault`
value) for each cluster at that step. A fault is NAMED when its belief is at least `NAMED_AT`.
`named_masks` turns beliefs into the int64 bit masks (bit f = Fault f) the simulator's WAIT rule
takes (`rl.sim.batch.ClusterBatch.step(..., named=...)`), and `DiagnosisCounts` scores named
faults against the truly active ones.

`FINDING_FAULTS` maps a real cluster's analyzer findings (`rl.findings.Finding`, keyed on kind
and reason) to the fault type they point at (the catalogue's signatures), so a report can back a
named fault with what the cluster showed; applied alone, it is the lookup baseline. A report names a
fault only when a read of the run showed evidence of it (`EVIDENCE_KEYS`, `split_by_evidence`); the
rest of what the beliefs name is only suspected.
"""

from dataclasses import dataclass

import numpy as np

from rl.faults import CATALOGUE, NUM_FAULTS, SIGNATURES, Fault
from rl.findings import EVENT_REASONS

NAMED_AT = 0.5  # a belief at least this names the fault

_BITS = np.left_shift(np.int64(1), np.arange(NUM_FAULTS, dtype=np.int64))


def check_beliefs(beliefs, num_envs: int) -> np.ndarray:
    """`beliefs` as a float32 `(num_envs, NUM_FAULTS)` array; ValueError if it has another shape."""
    array = np.asarray(beliefs, dtype=np.float32)
    if array.shape != (num_envs, NUM_FAULTS):
        raise ValueError(f"beliefs: expected shape ({num_envs}, {NUM_FAULTS}), got {array.shape}")
    return array


def policy_beliefs(policy, num_envs: int) -> np.ndarray:
    """The beliefs a policy holds after its last `act`. A policy without a diagnosis names nothing."""
    beliefs = getattr(policy, "beliefs", None)
    if beliefs is None:
        return np.zeros((num_envs, NUM_FAULTS), dtype=np.float32)
    return check_beliefs(beliefs, num_envs)


def named_masks(beliefs) -> np.ndarray:
    """One int64 bit mask per row of `beliefs` (bit f set: Fault f is named)."""
    named = np.asarray(beliefs) >= NAMED_AT
    return (named.astype(np.int64) * _BITS).sum(axis=-1, dtype=np.int64)


def fault_columns(masks) -> np.ndarray:
    """The inverse of `named_masks`: one 0/1 float32 column per fault type for each bit mask."""
    return ((np.asarray(masks, dtype=np.int64)[..., None] & _BITS) != 0).astype(np.float32)


def named_faults(belief_row) -> list[Fault]:
    """The faults one row of beliefs names, most probable first."""
    row = np.asarray(belief_row, dtype=np.float64)
    return sorted((Fault(f) for f in range(NUM_FAULTS) if row[f] >= NAMED_AT), key=lambda f: (-row[f], f))


def mask_to_faults(mask: int) -> list[Fault]:
    return [f for f in Fault if int(mask) >> f & 1]


def faults_to_mask(faults) -> int:
    return sum(1 << int(Fault(f)) for f in set(faults))


def popcount(masks) -> np.ndarray:
    masks = np.asarray(masks, dtype=np.int64)
    return ((masks[..., None] & _BITS) != 0).sum(axis=-1)


@dataclass
class DiagnosisCounts:
    """Named against truly active faults, summed over episodes (micro-averaging)."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @classmethod
    def of(cls, named, active) -> "DiagnosisCounts":
        named = np.asarray(named, dtype=np.int64)
        active = np.asarray(active, dtype=np.int64)
        return cls(
            int(popcount(named & active).sum()),
            int(popcount(named & ~active).sum()),
            int(popcount(active & ~named).sum()),
        )

    @property
    def precision(self) -> float:
        """Share of named faults that were active; 1 when nothing was named (no false claim)."""
        claimed = self.true_positives + self.false_positives
        return self.true_positives / claimed if claimed else 1.0

    @property
    def recall(self) -> float:
        """Share of active faults that were named; 1 when nothing was active."""
        present = self.true_positives + self.false_negatives
        return self.true_positives / present if present else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


# Real-cluster findings by (kind, reason) -> the fault type they point at: the signatures the
# catalogue declares (`rl.faults`). Findings that many faults share (a Deployment with replicas
# unavailable) or no fault explains (an Ingress without a class) are absent: they stay findings, and
# a lookup names nothing for them.
FINDING_FAULTS = dict(SIGNATURES)


def _evidence_keys() -> dict[Fault, frozenset[tuple[str, str]]]:
    """Per fault, the findings that back naming it: those its catalogue row declares that point at it,
    its signatures and the findings no other fault produces. A symptom many faults share (a Deployment
    with replicas unavailable, a pod crash-looping) is not evidence of any one of them."""
    declared: dict[tuple[str, str], set[Fault]] = {}
    for spec in CATALOGUE:
        for emits in spec.findings:
            declared.setdefault(emits.key, set()).add(spec.fault)
    return {
        spec.fault: frozenset(e.key for e in spec.findings if e.signature or declared[e.key] == {spec.fault})
        for spec in CATALOGUE
    }


EVIDENCE_KEYS: dict[Fault, frozenset[tuple[str, str]]] = _evidence_keys()


def split_by_evidence(belief_row, shown) -> tuple[list[Fault], list[Fault]]:
    """(named, suspected): the faults one row of beliefs names (most probable first) that a read of
    this run backs, with one of their `EVIDENCE_KEYS` among `shown` (the (kind, reason) keys the
    agent's reads have shown, `rl.agent_input.shown_keys`), and those it would name without that."""
    named, suspected = [], []
    for fault in named_faults(belief_row):
        (named if EVIDENCE_KEYS[fault] & shown else suspected).append(fault)
    return named, suspected


def finding_fault(kind: str, reason: str) -> Fault | None:
    """The fault type a real-cluster finding points at, or None (warning events by their reason)."""
    if reason in EVENT_REASONS and kind != "Log":
        kind = "Event"
    return FINDING_FAULTS.get((kind, reason))


def to_mask(named) -> int:
    """What an agent names, as a bit mask: an int mask, or an iterable of `Fault`s or fault names.

    Raises ValueError naming what was wrong with it.
    """
    if isinstance(named, bool):
        raise ValueError(f"named: must be a fault bit mask or a list of faults, got {named!r}")
    if isinstance(named, int | np.integer):
        if not 0 <= int(named) < 1 << NUM_FAULTS:
            raise ValueError(f"named: a fault bit mask must be from 0 to {(1 << NUM_FAULTS) - 1}, got {named}")
        return int(named)
    if isinstance(named, str):
        named = [named]
    mask = 0
    try:
        items = list(named)
    except TypeError:
        raise ValueError(f"named: must be a fault bit mask or a list of faults, got {named!r}") from None
    for item in items:
        if isinstance(item, Fault):
            mask |= 1 << int(item)
        elif isinstance(item, str) and item.upper() in Fault.__members__:
            mask |= 1 << int(Fault[item.upper()])
        else:
            known = ", ".join(f.name.lower() for f in Fault)
            raise ValueError(f"named: unknown fault {item!r} (known: {known})")
    return mask
