"""Who sits in a seat of a played game: the search settings every play stage builds from
LoopSettings, agents for models and for the tiers of engine.tiers.

`search_settings` is the one function that turns LoopSettings (and the knobs feedback moved)
into engine SearchSettings: selfplay, gating and tournament games, and the bootstrap search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.players.base import Player
from engine.players.evaluators import Evaluator, HeuristicEvaluator, HeuristicRootEvaluator
from engine.players.heuristic import HeuristicPlayer
from engine.players.mcts import SearchSettings
from engine.players.neural import NetworkEvaluator
from engine.players.random_player import RandomPlayer
from engine.tiers import tier
from handlers.settings import LoopSettings

Purpose = Literal["selfplay", "evaluation", "bootstrap"]

# While a config has no model: heuristic-guided search whose root priors come from the
# heuristic's one-ply scores, so its visit counts teach the first network something. Not
# the ladder's mcts-<N> tier (uniform root priors), hence its own participant name.
BOOTSTRAP_PARTICIPANT = "bootstrap-mcts-{}"


def search_settings(
    loop: LoopSettings, purpose: Purpose, *, dirichlet_fraction: float | None = None
) -> SearchSettings:
    """The search of a purpose: selfplay (root noise, opening temperature), evaluation (no
    noise, a few sampled opening moves) or the bootstrap before a config's first model.

    ``dirichlet_fraction`` is feedback's exploration knob (handlers.feedback.knobs)."""
    selfplay, evaluation = loop.selfplay, loop.evaluation
    simulations = {
        "selfplay": selfplay.simulations,
        "bootstrap": selfplay.bootstrap_simulations,
        "evaluation": evaluation.simulations,
    }[purpose]
    exploring = purpose != "evaluation"
    fraction = selfplay.dirichlet_fraction if dirichlet_fraction is None else dirichlet_fraction
    return SearchSettings(
        simulations=simulations,
        c_puct=selfplay.c_puct,
        dirichlet_alpha=selfplay.dirichlet_alpha,
        dirichlet_fraction=fraction if exploring else 0.0,
        temperature=selfplay.temperature,
        temperature_moves=selfplay.temperature_moves if exploring else evaluation.temperature_moves,
        kind=evaluation.search if purpose == "evaluation" else selfplay.search,
        leaves_per_tree=selfplay.leaves_per_tree,
        gumbel_considered=selfplay.gumbel_considered,
        gumbel_c_visit=selfplay.gumbel_c_visit,
        gumbel_c_scale=selfplay.gumbel_c_scale,
    )


@dataclass(frozen=True)
class Agent:
    """One seat's player: a search over an evaluator, or a direct player (random, heuristic)."""

    participant_id: str
    evaluator: Evaluator | None = None
    search: SearchSettings | None = None
    player: Player | None = None
    noise: bool = False
    model_sha256: str | None = None

    def __post_init__(self) -> None:
        if (self.evaluator is None) == (self.player is None):
            raise ValueError(f"agent {self.participant_id!r} needs an evaluator or a player")
        if self.evaluator is not None and self.search is None:
            raise ValueError(f"search agent {self.participant_id!r} needs SearchSettings")


def tier_agent(name: str, loop: LoopSettings) -> Agent:
    """An agent for a tier of engine.tiers: random, heuristic, mcts-<N> (heuristic-guided), d1-d5."""
    chosen = tier(name)
    if chosen.simulations == 0:
        player = RandomPlayer() if chosen.name == "random" else HeuristicPlayer()
        return Agent(chosen.name, player=player)
    base = search_settings(loop, "evaluation")
    search = SearchSettings(**{**base.__dict__, "simulations": chosen.simulations})
    return Agent(chosen.name, evaluator=HeuristicEvaluator(), search=search)


def model_agent(
    participant_id: str,
    evaluator: NetworkEvaluator,
    search: SearchSettings,
    *,
    sha256: str | None,
    noise: bool = False,
) -> Agent:
    """A model's agent: PUCT over its network (root noise when ``noise``)."""
    return Agent(
        participant_id, evaluator=evaluator, search=search, noise=noise, model_sha256=sha256
    )


def bootstrap_agent(loop: LoopSettings, search: SearchSettings) -> Agent:
    """The selfplay agent of a config without a model: heuristic-guided search whose root
    priors are the heuristic's one-ply move scores."""
    return Agent(
        BOOTSTRAP_PARTICIPANT.format(search.simulations),
        evaluator=HeuristicRootEvaluator(root_temperature=loop.selfplay.bootstrap_root_temperature),
        search=search,
        noise=True,
    )
