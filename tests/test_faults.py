"""The catalogue of faults: every row complete, and the simulator doing what each row declares."""

import numpy as np
import pytest

from rl.actions import REMEDIATION_ACTIONS, ClusterAction
from rl.agent_input import INPUT_KEYS, READS
from rl.diagnosis import FINDING_FAULTS, finding_fault
from rl.faults import BENIGN, CATALOGUE, FAULT_NAMES, HUMAN_ONLY, INDUCED_ONLY, NUM_FAULTS, SPECS, Fault
from rl.findings import KEY_INDEX, REASONS, SHOWN_BY
from rl.sim import layout
from rl.sim.batch import ClusterBatch, step_buffers
from rl.sim.scenario import ScenarioConfig


def test_every_fault_has_one_complete_row():
    assert [spec.fault for spec in CATALOGUE] == list(Fault) and NUM_FAULTS >= 18
    for spec in CATALOGUE:
        assert spec.description and spec.symptoms and spec.evidence and spec.next_steps, spec.name
        assert all(step.startswith("kubectl ") for step in spec.next_steps), spec.name
        assert spec.revealed_by and set(spec.revealed_by) <= set(READS), spec.name
        assert set(spec.fixed_by) | set(spec.worse_by) | set(spec.relieved_by) <= REMEDIATION_ACTIONS, spec.name
        assert not set(spec.fixed_by) & set(spec.worse_by), spec.name
        assert spec.human_only == (spec.fault in HUMAN_ONLY)
        # Every fault a human must fix shows at least one finding an analyzer reports; only what the
        # agent itself causes (over-provisioning) may show nothing but counts and usage.
        assert spec.findings or spec.fault in INDUCED_ONLY, spec.name
        for emits in spec.findings:
            assert emits.reason in REASONS[emits.kind] and emits.count, (spec.name, emits)
        # The reads that identify it show at least one of its findings (or its usage, for `top`).
        if spec.findings:
            shown = {read for e in spec.findings for read in SHOWN_BY[e.key]}
            assert set(spec.revealed_by) <= shown | {ClusterAction.TOP_NODES, ClusterAction.TOP_PODS}, spec.name


def test_the_finding_to_fault_map_is_the_catalogues_signatures():
    assert FINDING_FAULTS == {e.key: s.fault for s in CATALOGUE for e in s.findings if e.signature}
    for key, fault in FINDING_FAULTS.items():
        assert finding_fault(*key) == fault
    for benign in BENIGN:
        assert benign.key in KEY_INDEX and 0 < benign.chance < 1 and 1 <= benign.fewest <= benign.most


def test_every_fault_name_is_distinct_and_lower_case():
    assert len(set(FAULT_NAMES)) == NUM_FAULTS and all(name == name.lower() for name in FAULT_NAMES)


def _single_fault_batch(fault: Fault, n: int, seed: int, **overrides) -> tuple:
    scenario = ScenarioConfig(
        min_faults=1,
        max_faults=1,
        new_fault_rate=0.0,
        cascade_chance=0.0,
        read_only_share=1.0,  # nothing the reads do changes the cluster
        metrics_share=1.0,
        background=0.0,
        fault_weights={fault.name.lower(): 1.0},
        max_steps=40,
        **overrides,
    )
    batch = ClusterBatch(n, scenario)
    batch.seed(seed)
    buffers = step_buffers(n)
    batch.reset(buffers.observations)
    return batch, buffers


@pytest.mark.parametrize("fault", [f for f in Fault if f not in INDUCED_ONLY], ids=lambda f: f.name)
def test_the_simulator_emits_exactly_the_findings_its_row_declares(fault):
    """Every read of 200 single-fault clusters over 30 steps: what the reads show is among the
    row's findings, and every finding of the row shows in some of them."""
    n = 200
    batch, (obs, rewards, terminals, truncations) = _single_fault_batch(fault, n, seed=int(fault) * 1000)
    assert np.all(batch.state.active == 1 << fault)
    emitted = set()
    reads = [int(a) for a in READS if a not in (ClusterAction.TOP_NODES, ClusterAction.TOP_PODS)]
    for t in range(30):
        batch.step(np.full(n, reads[t % len(reads)], np.int32), obs, rewards, terminals, truncations, False)
        emitted |= {INPUT_KEYS[k] for k in np.flatnonzero(batch.state.found.any(axis=0))}
    declared = {e.key for e in SPECS[fault].findings}
    assert emitted <= declared, emitted - declared
    assert emitted == declared, declared - emitted


def test_a_healthy_cluster_shows_only_benign_findings():
    scenario = ScenarioConfig(min_faults=0, max_faults=0, new_fault_rate=0.0, background=1.0, metrics_share=0.5)
    batch = ClusterBatch(2000, scenario)
    batch.seed(5)
    batch.reset(step_buffers(2000).observations)
    shown = {INPUT_KEYS[k] for k in np.flatnonzero(batch.state.found.any(axis=0))}
    benign = {b.key for b in BENIGN} | {("Metrics", "Unavailable"), ("Pod", "ContainerExited")}
    assert shown <= benign and len(shown) >= 6, shown


def test_the_agent_sees_every_key_the_simulator_can_produce_and_no_other():
    produced = {e.key for s in CATALOGUE for e in s.findings} | {b.key for b in BENIGN} | {("Metrics", "Unavailable")}
    assert set(INPUT_KEYS) == produced
    assert list(INPUT_KEYS) == sorted(INPUT_KEYS, key=KEY_INDEX.get)  # vocabulary order


def test_masks_are_derived_from_the_catalogue():
    for spec in CATALOGUE:
        bit = 1 << spec.fault
        assert bool(layout.HUMAN_ONLY_MASK & bit) == spec.human_only
        for action in ClusterAction:
            assert bool(layout.REVEAL_MASK[action] & bit) == (action in spec.revealed_by)
            assert bool(layout.FIX_MASK[action] & bit) == (action in spec.fixed_by)
            assert bool(layout.WORSE_MASK[action] & bit) == (action in spec.worse_by)


def test_the_docs_show_the_catalogue_as_it_is():
    from pathlib import Path

    from rl.faults import catalogue_markdown

    page = (Path(__file__).resolve().parent.parent / "docs" / "simulator.md").read_text()
    start = page.index("<!-- fault table: generated by scripts/fault_table.py -->\n") + len(
        "<!-- fault table: generated by scripts/fault_table.py -->\n"
    )
    end = page.index("<!-- end of fault table -->")
    assert page[start:end] == catalogue_markdown(), "regenerate with: python scripts/fault_table.py"
