"""The near-floor note (autosc/planning/plan.py): said where the smallest shape already uses most of a cap, by
each budget kind's own figure, and not otherwise."""

from autosc.cost.budget import Budget
from autosc.cost.shape_cost import Cost
from autosc.planning.plan import NEAR_FLOOR, near_floor_note


def test_the_note_names_the_share_of_the_cap_the_floor_uses():
    floor = Cost(macs=9_000_000, resize_macs=0, activation_bytes=1_000_000, latency_ms=0.93)
    note = near_floor_note(floor, Budget.of(macs=10_000_000))
    assert note is not None and "90% of the MAC budget" in note and "--strategy compound or prune" in note
    assert near_floor_note(floor, Budget.of(macs=int(9_000_000 / NEAR_FLOOR) + 1)) is None  # just under the line
    assert near_floor_note(floor, Budget.of(macs=20_000_000)) is None


def test_each_capped_kind_is_read_and_the_first_near_one_is_named():
    floor = Cost(macs=1_000_000, resize_macs=0, activation_bytes=950_000, latency_ms=0.5)
    note = near_floor_note(floor, Budget.of(macs=10_000_000, memory_bytes=1_000_000))
    assert note is not None and "95% of the memory budget" in note  # MACs have room, memory does not
    latency = near_floor_note(floor, Budget.of(latency_ms=0.55))
    assert latency is not None and "91% of the latency budget" in latency
