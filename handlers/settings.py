"""Every threshold and knob of the improvement loop, validated once at start-up (LoopSettings).

Handlers, the trainer, selfplay and the evaluator read their numbers from here; nothing
else in the loop hard-codes a threshold. `LoopSettings.profile("tiny")` runs a whole
generation of square8_2p on two CPU cores within minutes; "default" is the real loop.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from events.config import BOARDS, CONFIG_PATTERN, split_config
from events.participants import BASELINES
from handlers.profiles import PROFILES

ALL_CONFIGS = tuple(f"{board}_{n}p" for board in BOARDS for n in (2, 3, 4))
SearchKind = Literal["puct", "gumbel"]  # engine.players.mcts.SEARCH_KINDS
TIER_PATTERN = r"random|heuristic|mcts-[1-9][0-9]*|d[1-5]"  # the names engine.tiers.tier knows


class LoopSettingsError(ValueError):
    """Bad loop settings: the message names the field (e.g. ``selfplay.simulations``)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def players_of(config: str) -> int:
    """2, 3 or 4 from a config name such as ``hex8_3p``."""
    return split_config(config)[1]


def board_of(config: str) -> str:
    return split_config(config)[0]


class PerPlayers(_Section):
    """A value per player count (2, 3 and 4 players)."""

    p2: float
    p3: float
    p4: float

    def of(self, config: str) -> float:
        return float(getattr(self, f"p{players_of(config)}"))


class NetworkSize(_Section):
    blocks: int = Field(ge=0, le=40)
    channels: int = Field(ge=1, le=512)


class DataGateSettings(_Section):
    """When a config has enough new selfplay games to train again."""

    min_new_games: PerPlayers = PerPlayers(p2=50, p3=70, p4=100)
    training_timeout_s: float = Field(
        default=6 * 3600, gt=0, description="a training running longer is treated as lost"
    )

    def threshold(self, config: str) -> int:
        return int(self.min_new_games.of(config))

    @field_validator("min_new_games")
    @classmethod
    def _positive(cls, value: PerPlayers) -> PerPlayers:
        if min(value.p2, value.p3, value.p4) < 1:
            raise ValueError("every per-player-count threshold must be >= 1")
        return value


class TrainingSettings(_Section):
    """What the trainer fits on, and how."""

    window_games: int = Field(default=20_000, ge=1, description="newest games per training")
    window_generations: int = Field(
        default=4, ge=1, description="games of models older than this many generations drop out"
    )
    networks: dict[str, NetworkSize] = Field(
        default_factory=lambda: {
            "square8": NetworkSize(blocks=6, channels=64),
            "hex8": NetworkSize(blocks=6, channels=64),
            "square19": NetworkSize(blocks=10, channels=128),
            "hexagonal": NetworkSize(blocks=10, channels=128),
        }
    )
    value_search_weight: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="value target = (1 - w) * final result + w * the search's root value "
        "(for moves with a recorded root value); 0 trains on results alone",
    )
    epochs: int = Field(default=4, ge=1, le=1000)
    max_samples: int | None = Field(
        default=None,
        ge=1,
        description="most positions one training fits on: a window holding more is sampled "
        "uniformly (seeded by the training id) so a warm-started training costs the same late "
        "in a run as early; None fits the whole window",
    )
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0, lt=1)
    weight_decay: float = Field(default=1e-4, ge=0, lt=1)
    amp: bool = True
    augment: bool = Field(default=True, description="train on a random board symmetry")

    @field_validator("networks")
    @classmethod
    def _every_board(cls, value: dict[str, NetworkSize]) -> dict[str, NetworkSize]:
        missing = [board for board in BOARDS if board not in value]
        unknown = [board for board in value if board not in BOARDS]
        if missing or unknown:
            raise ValueError(
                f"need a size for every board {BOARDS}; missing {missing}, unknown {unknown}"
            )
        return value

    def network(self, config: str) -> NetworkSize:
        return self.networks[board_of(config)]


class SelfplaySettings(_Section):
    """How selfplay games are generated (and the search every play stage shares)."""

    simulations: int = Field(default=200, ge=1, le=100_000)
    c_puct: float = Field(default=1.5, gt=0, description="PUCT exploration constant")
    dirichlet_alpha: float = Field(default=0.3, gt=0)
    dirichlet_fraction: float = Field(default=0.25, ge=0, le=1)
    temperature: float = Field(default=1.0, ge=0, description="move-sampling temperature early on")
    temperature_moves: int = Field(
        default=20,
        ge=0,
        description="opening moves sampled at `temperature`; then the most visited",
    )
    max_moves: int = Field(default=400, ge=1, description="moves before a game is adjudicated")
    adjudication: Literal["heuristic", "draw"] = Field(
        default="heuristic",
        description="a game capped at max_moves ranks seats by heuristic score, or all equal",
    )
    games_per_task: int = Field(
        default=256, ge=1, description="games one selfplay batch plays (and appends at its end)"
    )
    bootstrap_simulations: int = Field(
        default=64, ge=1, description="heuristic-guided search before a config has a model"
    )
    bootstrap_root_temperature: float = Field(
        default=0.1, gt=0, description="softmax temperature of the bootstrap's one-ply root priors"
    )
    processes: int = Field(
        default=1, ge=0, le=1, description="1: games in a child process per worker; 0: a thread"
    )
    search: SearchKind = Field(
        default="gumbel",
        description="root search of selfplay (and the bootstrap): PUCT visits, or Gumbel "
        "(Gumbel-top-k, sequential halving, completed-Q improved policy as the target)",
    )
    parallel_games: dict[str, int] = Field(
        default_factory=lambda: {"cpu": 64, "cuda": 256},
        description="games one selfplay worker keeps running at once, per device type "
        "(continuous batching: a finished game's slot is refilled at once)",
    )
    pipeline: bool = Field(
        default=True,
        description="overlap the network with the search: a worker's games in two lanes, one "
        "lane's batch evaluated in a background thread while the other's trees are walked",
    )
    pipeline_switch_us: float = Field(
        default=50.0,
        gt=0,
        le=5000,
        description="pipeline: the interpreter's thread switch interval while games play, so "
        "the network's thread gets the GIL back between its ops at once (Python's 5000 us "
        "default starves it; `ringloop bench selfplay --pipeline`)",
    )
    leaves_per_tree: int = Field(
        default=1, ge=1, le=64, description="PUCT leaves per tree per batch (virtual loss if > 1)"
    )
    gumbel_considered: int = Field(
        default=16, ge=1, description="Gumbel: root actions drawn by Gumbel-top-k"
    )
    gumbel_c_visit: float = Field(default=50.0, ge=0, description="Gumbel: sigma's c_visit")
    gumbel_c_scale: float = Field(default=0.1, gt=0, description="Gumbel: sigma's c_scale")
    inference: Literal["auto", "local", "shared"] = Field(
        default="auto",
        description="local: each selfplay process holds the network; shared: the host's "
        "`ringloop inference` service batches the forward passes of all its selfplay "
        "processes; auto: shared on a CUDA host, local otherwise",
    )
    inference_max_batch: int = Field(
        default=2048, ge=1, description="shared inference: positions per forward pass at most"
    )
    inference_wait_ms: float = Field(
        default=2.0,
        ge=0,
        le=120_000,
        description="shared inference: longest a request waits for others to join its batch "
        "(none once every connected client has a request in)",
    )
    inference_timeout_s: float = Field(
        default=600.0, gt=0, description="shared inference: a client gives up on a silent service"
    )

    @field_validator("parallel_games")
    @classmethod
    def _per_device(cls, value: dict[str, int]) -> dict[str, int]:
        if "cpu" not in value or any(v < 1 for v in value.values()):
            raise ValueError(f"need a count >= 1 per device type, 'cpu' among them; got {value}")
        return value

    def pipeline_interval_s(self) -> float | None:
        """`handlers.games.play_games`' pipeline argument: the switch interval, or None."""
        return self.pipeline_switch_us / 1e6 if self.pipeline else None

    def parallel_for(self, device: str) -> int:
        """Games at once on a device type ("cpu", "cuda", ...; unknown types get cpu's)."""
        return self.parallel_games.get(device, self.parallel_games["cpu"])


class SPRTSettings(_Section):
    elo0: float = 0.0
    elo1: float = 10.0
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    beta: float = Field(default=0.05, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.elo1 > self.elo0:
            raise ValueError(f"elo1 ({self.elo1}) must be greater than elo0 ({self.elo0})")
        return self


class EvaluationSettings(_Section):
    """The gating tournament: games per opponent and the sequential test."""

    games: int = Field(default=200, ge=2, description="most games against the current best")
    baseline_games: int = Field(default=40, ge=1, description="games against each baseline")
    simulations: int = Field(default=100, ge=1)
    temperature_moves: int = Field(
        default=4, ge=0, description="opening moves sampled by visits, so gating games differ"
    )
    baselines: tuple[str, ...] = Field(
        default=BASELINES, description="tiers every candidate also plays (engine.tiers)"
    )
    sprt: SPRTSettings = SPRTSettings()
    confidence: float = Field(default=0.95, gt=0, lt=1, description="for Wilson intervals")
    games_per_batch: int = Field(
        default=8, ge=1, description="gating or tournament games one evaluator plays at once"
    )
    search: SearchKind = Field(default="gumbel", description="root search of gating games")

    @field_validator("baselines")
    @classmethod
    def _known_tiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import re

        bad = [name for name in value if not re.fullmatch(TIER_PATTERN, name)]
        if bad:
            raise ValueError(f"unknown tiers {bad}; known: random, heuristic, mcts-<N>, d1-d5")
        return value


class PromotionSettings(_Section):
    """The promotion gates, the cooldown and the regression watch."""

    head_to_head: Literal["sprt_or_wilson", "sprt", "wilson", "sprt_truncated"] = Field(
        default="sprt_or_wilson",
        description="how the head-to-head against the best passes: an SPRT accept or a Wilson "
        "low above wilson_threshold; SPRT only; Wilson only; or sprt_truncated: an SPRT accept, "
        "or at the game cap an LLR > 0 (nearer elo1 than elo0). `ringloop bench gate` measures "
        "each mode's power curve",
    )
    wilson_threshold: float = Field(default=0.5, ge=0, lt=1)
    floors: dict[str, PerPlayers] = Field(
        default_factory=lambda: {
            "random": PerPlayers(p2=0.8, p3=0.6, p4=0.5),
            "heuristic": PerPlayers(p2=0.55, p3=0.4, p4=0.3),
        },
        description="minimum score against each baseline, by player count",
    )
    cooldown_s: float = Field(
        default=0.0, ge=0, description="least event time between two promotions of a config"
    )
    regression_margin: float = Field(
        default=50.0, gt=0, description="Elo below the predecessor that triggers a rollback"
    )
    regression_min_games: int = Field(
        default=20, ge=1, description="rated games of the new best before the watch decides"
    )

    @field_validator("floors")
    @classmethod
    def _known_baselines(cls, value: dict[str, PerPlayers]) -> dict[str, PerPlayers]:
        unknown = [name for name in value if name not in BASELINES]
        if unknown:
            raise ValueError(f"floors for unknown baselines {unknown}; known: {BASELINES}")
        for name, floor in value.items():
            if not all(0 <= v <= 1 for v in (floor.p2, floor.p3, floor.p4)):
                raise ValueError(f"floor {name!r} must lie in [0, 1]")
        return value


class CurriculumSettings(_Section):
    """Selfplay allocation weights per config: bounded, from Elo gap, data deficit, win rate."""

    min_weight: float = Field(default=0.2, gt=0)
    max_weight: float = Field(default=3.0, gt=0)
    target_elo: float = Field(default=2000.0, description="the Elo each config aims for")
    elo_gap_scale: float = Field(default=400.0, gt=0, description="Elo gap worth +1 weight")
    target_games: int = Field(default=5000, ge=1, description="games in window counted as enough")
    win_rate_weight: float = Field(default=1.0, ge=0, description="weight for (0.5 - win rate)")
    every_inputs: int = Field(
        default=20, ge=1, description="rebalance at most once per this many rating inputs"
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_weight > self.max_weight:
            raise ValueError(f"min_weight {self.min_weight} exceeds max_weight {self.max_weight}")
        return self


class FeedbackSettings(_Section):
    """Signals that retune knobs, each knob clamped to the bounds here."""

    plateau_evaluations: int = Field(default=5, ge=1, description="evaluations with no promotion")
    exploration_factor: float = Field(default=1.25, gt=1)
    max_dirichlet_fraction: float = Field(default=0.5, ge=0, le=1)
    overfit_loss_ratio: float = Field(
        default=0.3, gt=0, lt=1, description="last/first epoch loss below this is overfitting"
    )
    data_factor: float = Field(default=1.5, gt=1, description="more new games per training")
    max_data_factor: float = Field(default=4.0, ge=1, description="cap, relative to the gate")
    oom_batch_factor: float = Field(default=0.5, gt=0, lt=1)
    min_batch_size: int = Field(default=8, ge=1)
    promotion_failure_streak: int = Field(default=3, ge=1)
    curriculum_boost_step: float = Field(default=0.25, gt=0)
    max_curriculum_boost: float = Field(default=1.0, ge=0)


class TaskSettings(_Section):
    """Cluster-wide limits enforced by the task coordinator's leases."""

    training: int = Field(default=1, ge=1, description="concurrent trainings in the cluster")
    evaluation: int = Field(default=2, ge=1, description="concurrent evaluations in the cluster")
    selfplay_per_host: int = Field(default=4, ge=1, description="selfplay workers per host")
    lease_ttl_s: float = Field(default=30.0, ge=1, description="a lease not renewed expires")
    renew_every_s: float = Field(default=10.0, gt=0)
    loop_lease_ttl_s: float = Field(default=15.0, ge=1)
    ack_wait_s: float = Field(
        default=30.0, gt=0, description="redelivery delay of a play stage's input after a crash"
    )
    slot_retry_delays_s: tuple[float, ...] = Field(
        default=(0.5, 2.0, 5.0, 10.0, 20.0),
        min_length=1,
        description="pauses of an input waiting for a slot (a training slot, a gate) between looks",
    )

    @model_validator(mode="after")
    def _renew_before_expiry(self) -> Self:
        if self.renew_every_s >= self.lease_ttl_s:
            raise ValueError(
                f"renew_every_s ({self.renew_every_s}) must be below lease_ttl_s ({self.lease_ttl_s})"
            )
        return self

    def limit(self, task_type: str) -> int:
        limits = {"training": self.training, "evaluation": self.evaluation}
        if task_type == "selfplay":
            return self.selfplay_per_host
        if task_type not in limits:
            raise ValueError(
                f"unknown task type {task_type!r}; known: training, evaluation, selfplay"
            )
        return limits[task_type]


class LoopSettings(BaseModel):
    """All of the loop's thresholds and knobs, grouped by stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: Literal["default", "small", "tiny"] = Field(
        default="default", description="named base values; fields given beside it override them"
    )
    configs: tuple[str, ...] = ("square8_2p",)
    data_gate: DataGateSettings = DataGateSettings()
    training: TrainingSettings = TrainingSettings()
    selfplay: SelfplaySettings = SelfplaySettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    promotion: PromotionSettings = PromotionSettings()
    curriculum: CurriculumSettings = CurriculumSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    tasks: TaskSettings = TaskSettings()

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset", "default") in PROFILES:
            return _merge(PROFILES[data.get("preset", "default")], data)
        return data

    @field_validator("configs")
    @classmethod
    def _configs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import re

        bad = [c for c in value if not re.match(CONFIG_PATTERN, c)]
        if bad or not value:
            raise ValueError(f"configs must be non-empty names like 'square8_2p'; bad: {bad}")
        if len(set(value)) != len(value):
            raise ValueError(f"configs list a config twice: {list(value)}")
        return value

    @classmethod
    def validated(cls, data: dict[str, Any]) -> LoopSettings:
        """Validate, raising LoopSettingsError whose message names each bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise LoopSettingsError(describe(exc)) from None

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> LoopSettings:
        """A named profile ("tiny" or "default"), with section overrides merged on top."""
        if name not in PROFILES:
            raise LoopSettingsError(f"unknown loop profile {name!r}; known: {sorted(PROFILES)}")
        return cls.validated({**overrides, "preset": name})

    def with_overrides(self, **overrides: Any) -> LoopSettings:
        return LoopSettings.validated(_merge(self.model_dump(), overrides))


def describe(exc: ValidationError) -> str:
    lines = []
    for item in exc.errors():
        field = ".".join(str(p) for p in item["loc"]) or "loop"
        lines.append(f"loop setting {field}={item.get('input')!r}: {item['msg']}")
    return "; ".join(lines)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# ---------------------------------------------------------------- read-model snapshots


class SnapshotSettings(_Section):
    """When the projector (`ringloop up`) publishes read-model snapshots for handler processes.

    A snapshot is written once a projection has moved at least `every_events` stream positions
    and `every_s` seconds since the last one, and at a clean shutdown; a handler process loads
    it and folds the tail (at most about `every_events` events).
    """

    enabled: bool = True
    every_events: int = Field(default=10_000, ge=1)
    every_s: float = Field(
        default=120.0, ge=0
    )  # a snapshot of the 1M-event Elo state costs ~10 s of a thread
