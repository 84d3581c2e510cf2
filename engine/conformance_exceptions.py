"""RingRift conformance vectors that contradict the canonical spec, with the deciding rule."""

from __future__ import annotations

# Vector id (or sequence step id) -> the spec rule that decides it, why, and what our engine
# must do instead. tests/engine/test_conformance.py asserts that expectation:
#   "rejected"      the vector's move (or chain step) is illegal under the rule, and `because`
#                   names the specific ground, which the runner checks on the position
#                   (tests/engine/conformance_reasons.py): not merely "the engine refused it";
#   "invalid_state" the state names cells that do not exist on the board, so loading fails
#                   with "... is not a cell of <board>";
#   {"assertions": {...}} the vector's move is applied and these spec values are checked
#                   in place of the vector's own (the vector's other assertions still hold).
# A sequence step after an exception runs from its own stated input state (the spec's state
# differs from the one the vector chains from); several of those stated inputs contradict
# their own move, listed below with the ground.

_R141 = (
    "RR-CANON-R141",
    "synthetic fixture: the named region is not physically disconnected (no collapsed-cell or "
    "single-colour marker border seals it); RingRift's TS engine trusted the move's "
    "disconnectedRegions payload",
)
_R145 = (
    "RR-CANON-R145/R205",
    "eliminate_rings_from_stack with no pending line or region cost; a stuck player pays by "
    "forced_elimination in its own phase instead",
)
_R101 = (
    "RR-CANON-R101",
    "capture segment lands closer than the attacker's height (distance(from, landing) >= H)",
)
_R001 = ("RR-CANON-R001", "position outside the board (legacy hexagonal coordinates)")
_R122 = (
    "RR-CANON-R122",
    "line decision not among the legal rewards: process_line on an overlength line needs an "
    "explicit option, and Option 2 exists only for overlength lines, collapsing exactly "
    "lineLength markers",
)
_R120 = (
    "RR-CANON-R120",
    "line decision with no line: the state holds no run of lineLength markers of the player "
    "(the move's formedLines is empty), so the only line move is no_line_action",
)
_R070 = (
    "RR-CANON-R070",
    "the move is made by a player other than the one to act in the stated state",
)
_R103 = (
    "RR-CANON-R103",
    "continue_capture_segment with no chain in progress: the stated state is not in "
    "chain_capture (the chain's first segment was itself illegal under R101)",
)
_R092 = (
    "RR-CANON-R092",
    "moving over one's own markers collapses them, so the run the fixture expects is never formed",
)


def _entry(rule: tuple[str, str], expect: object, because: str = "") -> dict[str, object]:
    entry: dict[str, object] = {"rule": rule[0], "reason": rule[1], "expect": expect}
    if because:
        entry["because"] = because
    return entry


EXCEPTIONS: dict[str, dict[str, object]] = {
    # territory regions that are not disconnected (R141)
    **{
        vid: _entry(_R141, "rejected", "region_not_disconnected")
        for vid in (
            "forced_elimination.territory_no_host_fe.square8",
            "hex_edge_case.corner_region.case1.hexagonal",
            "near_victory_territory.process.multi_cell_region",
            "territory_line.single_point_swing.square19",
            "territory_line.decision_auto_exit.square8",
            "territory.hex_region_then_elim.step1_region",
            "territory.hex_two_regions_then_elim.step1_regionB",
            "territory.square19_two_regions_then_elim.step1_regionB",
            "territory.square_region_then_elim.step1_region",
            "territory.square_two_regions_then_elim.step1_regionB",
            "territory_processing.mizw0rb1.wpbd",
            "v1/state_action.square8_2p.process_territory",
            "v1/trace.square8_2p.process_territory",
            "v2/state_action.square8_2p.process_territory.multi_region",
            "v2/trace.square8_2p.process_territory.multi_region",
            "v2/state_action.square19_2p.process_territory.multi_region",
            "v2/trace.square19_2p.process_territory.multi_region",
            "v2/state_action.hex8_2p.process_territory.multi_region",
            "v2/trace.hex8_2p.process_territory.multi_region",
        )
    },
    # eliminations without a pending cost (R145 / R205)
    **{
        vid: _entry(_R145, "rejected", "no_elimination_cost")
        for vid in (
            "forced_elimination.monotone_chain.step1.square8",
            "forced_elimination.monotone_chain.step2.square8",
            "forced_elimination.monotone_chain.final.square8",
            "forced_elimination.territory_explicit.square8",
            "forced_elimination.anm_guard.hexagonal",
            "v1/state_action.square8_2p.eliminate_stack",
            "v1/trace.square8_2p.eliminate_stack",
        )
    },
    "territory.forced_elimination.simple_square8": _entry(_R070, "rejected", "not_to_act"),
    # capture distance (R101)
    **{
        vid: _entry(_R101, "rejected", "capture_too_short")
        for vid in (
            "chain_capture.depth3.segment3.square8",
            "chain_capture.depth3.segment3.square19",
            "chain_capture.depth3.segment1.hexagonal",
            "hex_edge_case.edge_chain.segment2.hexagonal",
            "chain_capture.4_targets.diagonal_with_turn_theoretical",
            "chain_capture.5_plus_targets.extended_zigzag_theoretical",
        )
    },
    # legacy coordinates (R001)
    **{
        vid: _entry(_R001, "invalid_state")
        for vid in (
            "territory.forced_elimination.simple_hexagonal",
            "multi_phase.full_sequence_with_territory_hex",
            "v2/state_action.hexagonal_2p.process_territory.multi_region",
            "v2/trace.hexagonal_2p.process_territory.multi_region",
        )
    },
    # line rewards (R122), and line decisions with no line at all (R120)
    **{
        vid: _entry(_R122, "rejected", "line_reward_not_offered")
        for vid in (
            "territory_line.overlong_line.step1.square8",
            "multi_phase.line_then_multi_region_territory.square8.step1_line",
        )
    },
    **{
        vid: _entry(_R120, "rejected", "no_line_formed")
        for vid in (
            "multi_phase.line_then_multi_region_territory.square19.step1_line",
            "multi_phase.line_then_multi_region_territory.hex.step1_line",
        )
    },
    # sequence steps after an exception, run from their own stated input state
    "chain_capture.depth3.segment2.hexagonal": _entry(_R103, "rejected", "no_chain_in_progress"),
    "chain_capture.depth3.segment3.hexagonal": _entry(_R101, "rejected", "capture_too_short"),
    **{
        vid: _entry(_R070, "rejected", "not_to_act")
        for vid in (
            "territory.hex_region_then_elim.step2_elim",
            "territory.square_region_then_elim.step2_elim",
            "territory.hex_two_regions_then_elim.step2_regionA",
            "territory.square19_two_regions_then_elim.step2_regionA",
            "territory.square_two_regions_then_elim.step2_regionA",
        )
    },
    **{
        vid: _entry(_R145, "rejected", "no_elimination_cost")
        for vid in (
            "territory.hex_two_regions_then_elim.step3_elim",
            "territory.square19_two_regions_then_elim.step3_elim",
            "territory.square_two_regions_then_elim.step3_elim",
        )
    },
    **{
        vid: _entry(_R141, "rejected", "region_not_disconnected")
        for vid in (
            "multi_phase.line_then_multi_region_territory.square8.step2_regionB",
            "multi_phase.line_then_multi_region_territory.square8.step3_regionA",
            "multi_phase.line_then_multi_region_territory.square19.step2_regionB",
            "multi_phase.line_then_multi_region_territory.square19.step3_regionA",
            "multi_phase.line_then_multi_region_territory.hex.step2_regionB",
            "multi_phase.line_then_multi_region_territory.hex.step3_regionA",
        )
    },
    # own markers collapse when moved over (R092): no line forms, nothing to decide
    "multiplayer.line.3marker_forms_line_3p": _entry(
        _R092,
        {
            "assertions": {
                "currentPhase": "line_processing",
                "collapsedCount": 2,
                "pendingDecisionType": None,
            },
            "status": "complete",
        },
    ),
    "multiplayer.line.4marker_line_in_2p": _entry(
        _R092,
        {
            "assertions": {
                "currentPhase": "line_processing",
                "collapsedCount": 3,
                "pendingDecisionType": None,
            },
            "status": "complete",
        },
    ),
    # S = markers + collapsed + eliminated (R191): two segments, the second landing on a
    # marker (-1 marker, +1 eliminated), add 2, not 4
    **{
        vid: _entry(
            ("RR-CANON-R191", "the fixture's S delta does not follow S = M + C + E"),
            {
                "assertions": {
                    "currentPlayer": 2,
                    "currentPhase": "ring_placement",
                    "sInvariantDelta": 2,
                }
            },
        )
        for vid in (
            "multi_phase.placement_capture_line",
            "multi_phase.full_sequence_with_territory",
            "multi_phase.full_sequence_with_territory_square19",
        )
    },
    # the recovery cost extracts player 1's last ring: players 1 and 3 then have no rings
    # anywhere, so player 2 is the last player standing (R172 as both RingRift engines
    # evaluate it: one player with stacks, every other without rings)
    **{
        vid: _entry(
            (
                "RR-CANON-R172",
                "after the extraction only player 2 holds rings: last player standing",
            ),
            {
                "assertions": {
                    "gameStatus": "completed",
                    "victoryWinner": 2,
                    "victoryReason": "last_player_standing",
                }
            },
        )
        for vid in (
            "recovery.exact_length_option1",
            "recovery.overlength_option1",
            "recovery.fallback_reposition",
        )
    },
}
