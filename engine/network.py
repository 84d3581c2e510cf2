"""The policy/value residual network that the trainer fits and the search players query.

Value head: one output per seat, each squashed by ``tanh`` into [-1, 1] (1 = that seat wins,
-1 = it loses), in seat order *relative to the player to move* (index 0 = player to move,
1 = the next seat, ...), matching the encoder's relative planes. Per-seat tanh rather than
a softmax keeps one representation for every player count, lets search back values up per
seat (max-n) and lets the trainer use a per-seat MSE.

Checkpoints hold only tensors and JSON-able primitives and are read with
``torch.load(weights_only=True)``: nothing is unpickled beyond that safe subset.
"""

from __future__ import annotations

import copy
import hashlib
import io
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn
from torch.nn import functional

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class NetworkSpec:
    """Everything needed to rebuild a network: shapes per config and the tower's size."""

    config: str
    in_planes: int
    height: int
    width: int
    policy_size: int
    num_players: int
    blocks: int
    channels: int
    policy_planes: int = 0

    def __post_init__(self) -> None:
        for name in ("in_planes", "height", "width", "policy_size", "channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"NetworkSpec.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.blocks < 0:
            raise ValueError(f"NetworkSpec.blocks must be >= 0, got {self.blocks!r}")
        if self.policy_planes < 0 or self.special_moves < 0:
            raise ValueError(
                f"NetworkSpec.policy_planes={self.policy_planes!r} needs policy_size >= "
                f"policy_planes * height * width, got policy_size={self.policy_size!r}"
            )
        if not 2 <= self.num_players <= 4:
            raise ValueError(f"NetworkSpec.num_players must be 2-4, got {self.num_players!r}")

    @property
    def special_moves(self) -> int:
        """Policy entries after the spatial planes (all of them when policy_planes is 0)."""
        return self.policy_size - self.policy_planes * self.height * self.width

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        names = {f.name for f in fields(cls)}
        if not set(data) <= names or set(data) < names - {"policy_planes"}:
            raise ValueError(f"NetworkSpec fields must be {sorted(names)}, got {data!r}")
        return cls(**data)


def select_device() -> torch.device:
    """CUDA when present, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = functional.relu(self.norm1(self.conv1(x)))
        return functional.relu(x + self.norm2(self.conv2(y)))


class SpatialPolicyHead(nn.Module):
    """Policy logits laid out as planes over the grid, plus a few non-spatial entries.

    Planes come from a 3x3 then 1x1 convolution (so a logit sees its cell's surroundings);
    the trailing special entries (skips, swap, no-ops) from a linear map of pooled features.
    """

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(spec.channels, spec.channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(spec.channels),
            nn.ReLU(),
            nn.Conv2d(spec.channels, spec.policy_planes, 1),
        )
        self.special = nn.Linear(spec.channels, spec.special_moves) if spec.special_moves else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.body(features).flatten(1)
        if self.special is None:
            return logits
        return torch.cat([logits, self.special(features.mean(dim=(2, 3)))], dim=1)


def _dense_policy_head(spec: NetworkSpec, channels: int) -> nn.Module:
    """Fully connected policy head, for small policies without a spatial layout."""
    return nn.Sequential(
        nn.Conv2d(spec.channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels * spec.height * spec.width, spec.policy_size),
    )


class PolicyValueNet(nn.Module):
    """Residual tower with a policy head (logits over the config's moves) and a per-seat value head."""

    POLICY_CHANNELS = 4
    VALUE_HIDDEN = 128

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        cells = spec.height * spec.width
        self.stem = nn.Sequential(
            nn.Conv2d(spec.in_planes, spec.channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(spec.channels),
            nn.ReLU(),
        )
        self.tower = nn.Sequential(*(ResidualBlock(spec.channels) for _ in range(spec.blocks)))
        self.policy_head: nn.Module = (
            SpatialPolicyHead(spec)
            if spec.policy_planes
            else _dense_policy_head(spec, self.POLICY_CHANNELS)
        )
        self.value_head = nn.Sequential(
            nn.Conv2d(spec.channels, 1, 1, bias=False),
            nn.BatchNorm2d(1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(cells, self.VALUE_HIDDEN),
            nn.ReLU(),
            nn.Linear(self.VALUE_HIDDEN, spec.num_players),
            nn.Tanh(),
        )

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Planes (B, C, H, W) -> (policy logits (B, policy_size), values (B, num_players))."""
        features = self.tower(self.stem(planes))
        return self.policy_head(features), self.value_head(features)


def build_network(spec: NetworkSpec) -> PolicyValueNet:
    return PolicyValueNet(spec)


InferenceGraph = torch.jit.ScriptModule


def inference_graph(model: PolicyValueNet, example: torch.Tensor) -> InferenceGraph:
    """``model``'s forward pass as one frozen TorchScript graph, for inference only.

    Traced on ``example`` (any batch size: the graph takes any), then frozen: the weights
    become constants (a copy: later changes to ``model`` do not reach it), each batch norm
    is folded into its convolution, and the device's inference passes run (on a CPU the
    convolutions move to oneDNN: 1.4x an eager pass of the 2x32 network at batch 64 on one
    thread, 2026-12-07). Called from Python, the whole graph runs with the
    interpreter lock released — an eager forward pass takes the lock back between every
    two ops, so a search walking trees in another thread stalled it (and was stalled by
    it) dozens of times per pass."""
    snapshot = copy.deepcopy(model).eval()  # freezing alone would share unfolded weights
    with torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.compile / torch.export; neither runs a
        # whole graph outside the interpreter lock on a CPU without a C++ toolchain
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", DeprecationWarning)
        frozen = torch.jit.freeze(torch.jit.trace(snapshot, example, check_trace=False))
        return torch.jit.optimize_for_inference(frozen)


def _payload(model: PolicyValueNet, spec: NetworkSpec) -> dict[str, Any]:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return {"format": CHECKPOINT_FORMAT, "spec": spec.to_dict(), "state_dict": state}


def save_checkpoint(
    model: PolicyValueNet, spec: NetworkSpec, path_or_buffer: str | Path | BinaryIO
) -> str:
    """Write weights plus the spec (as plain data); return the sha256 of the written bytes."""
    buffer = io.BytesIO()
    torch.save(_payload(model, spec), buffer)
    data = buffer.getvalue()
    if isinstance(path_or_buffer, str | Path):
        Path(path_or_buffer).write_bytes(data)
    else:
        path_or_buffer.write(data)
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(
    path_or_buffer: str | Path | BinaryIO | bytes, *, device: torch.device | str | None = None
) -> tuple[PolicyValueNet, NetworkSpec]:
    """Rebuild a network from a checkpoint with ``weights_only=True``; returns it in eval mode."""
    source: Any = (
        io.BytesIO(path_or_buffer) if isinstance(path_or_buffer, bytes) else path_or_buffer
    )
    payload = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not a ringloop checkpoint (format {CHECKPOINT_FORMAT}): {source!r}")
    spec = NetworkSpec.from_dict(payload["spec"])
    model = build_network(spec)
    model.load_state_dict(payload["state_dict"])
    model.to(device or select_device())
    model.eval()
    return model, spec


def checkpoint_sha256(path_or_bytes: str | Path | bytes) -> str:
    """The sha256 that ``save_checkpoint`` returned for these bytes."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return hashlib.sha256(data).hexdigest()
