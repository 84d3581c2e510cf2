"""Tests for engine.network: shapes, value range, checkpoint round trip with weights_only loading."""

from __future__ import annotations

import io
import pickle

import pytest
import torch

from engine.network import (
    NetworkSpec,
    build_network,
    checkpoint_sha256,
    inference_graph,
    load_checkpoint,
    save_checkpoint,
    select_device,
)

SPEC = NetworkSpec(
    "square8_3p",
    in_planes=6,
    height=8,
    width=8,
    policy_size=100,
    num_players=3,
    blocks=2,
    channels=8,
)
# hex8 3p's layout: policy planes over the grid plus special entries (SpatialPolicyHead)
SPATIAL = NetworkSpec(
    "hex8_3p",
    in_planes=6,
    height=9,
    width=9,
    policy_size=3 * 81 + 9,
    num_players=3,
    blocks=1,
    channels=8,
    policy_planes=3,
)


def test_forward_shapes_and_value_range() -> None:
    torch.manual_seed(0)
    model = build_network(SPEC).eval()
    logits, values = model(torch.randn(5, 6, 8, 8))
    assert logits.shape == (5, 100) and values.shape == (5, 3)
    assert values.abs().max() <= 1.0


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path) -> None:
    torch.manual_seed(1)
    model = build_network(SPEC)
    model(torch.randn(4, 6, 8, 8))  # move the batch-norm running statistics away from defaults
    model.eval()
    path = tmp_path / "model.pt"
    digest = save_checkpoint(model, SPEC, path)
    assert digest == checkpoint_sha256(path)
    loaded, spec = load_checkpoint(path, device="cpu")
    assert spec == SPEC
    x = torch.randn(3, 6, 8, 8)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x), strict=True):
            assert torch.equal(a, b)
    buffer = io.BytesIO()
    assert save_checkpoint(model, SPEC, buffer) == digest
    assert load_checkpoint(buffer.getvalue(), device="cpu")[1] == SPEC


def test_loading_refuses_arbitrary_pickles(tmp_path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        torch.save({"format": 1, "spec": Evil()}, handle)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path, device="cpu")


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="num_players"):
        NetworkSpec("x", 1, 8, 8, 10, num_players=5, blocks=1, channels=4)
    with pytest.raises(ValueError, match="channels"):
        NetworkSpec("x", 1, 8, 8, 10, num_players=2, blocks=1, channels=0)
    with pytest.raises(ValueError, match="fields"):
        NetworkSpec.from_dict({"config": "x"})


def test_select_device() -> None:
    assert select_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_spatial_policy_head_round_trips(tmp_path) -> None:
    from engine.config import GameConfig
    from engine.encoding import layout, network_spec

    config = GameConfig("hex8", 3)
    spec = network_spec(config, blocks=1, channels=8)
    assert spec.policy_planes == layout(config).policy_planes and spec.special_moves == 9
    model = build_network(spec).eval()
    x = torch.randn(2, spec.in_planes, spec.height, spec.width)
    logits, values = model(x)
    assert logits.shape == (2, spec.policy_size) and values.shape == (2, 3)
    save_checkpoint(model, spec, tmp_path / "hex.pt")
    loaded, loaded_spec = load_checkpoint(tmp_path / "hex.pt", device="cpu")
    assert loaded_spec == spec
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], model(x)[0])


def _trained_statistics(spec: NetworkSpec) -> torch.nn.Module:
    """A network whose batch norms hold statistics other than the defaults (folding them
    into the convolutions then matters)."""
    model = build_network(spec)
    model.train()
    with torch.no_grad():
        model(torch.randn(16, spec.in_planes, spec.height, spec.width) * 3 + 1)
    return model.eval()


@pytest.mark.parametrize("spec", [SPEC, SPATIAL], ids=["dense policy", "spatial policy"])
def test_the_inference_graph_computes_the_networks_outputs_at_any_batch_size(spec) -> None:
    torch.manual_seed(2)
    model = _trained_statistics(spec)
    graph = inference_graph(model, torch.randn(7, spec.in_planes, spec.height, spec.width))
    with torch.no_grad():
        for batch in (1, 7, 33):
            x = torch.randn(batch, spec.in_planes, spec.height, spec.width)
            for eager, traced in zip(model(x), graph(x), strict=True):
                assert traced.shape == eager.shape
                torch.testing.assert_close(traced, eager, rtol=1e-4, atol=1e-5)


def test_the_inference_graph_is_a_copy_of_the_weights_and_leaves_the_model_as_it_was() -> None:
    torch.manual_seed(3)
    model = _trained_statistics(SPEC).train()
    x = torch.randn(2, 6, 8, 8)
    graph = inference_graph(model, x)
    assert model.training  # restored after tracing in eval mode
    model.eval()
    with torch.no_grad():
        before = graph(x)[1].clone()
        for parameter in model.parameters():
            parameter.add_(1.0)
        assert torch.equal(graph(x)[1], before)
        assert not torch.equal(model(x)[1], before)
