"""The CNN objective's networks: torchvision models from scratch (nothing downloaded), local weights,
activations. Built and run forward once; no training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpstudy.objectives.cnn.config import MODEL_FIELDS, CNNSettings
from hpstudy.objectives.cnn.models import ACTIVATIONS, TORCHVISION, build_model, param_count


def test_every_model_name_is_a_torchvision_builder_and_declares_its_fields() -> None:
    import torchvision

    assert set(TORCHVISION) | {"small_cnn"} == set(MODEL_FIELDS)
    for builder, _ in TORCHVISION.values():
        assert callable(getattr(torchvision.models, builder))


@pytest.mark.parametrize("model", ["resnet18", "mobilenet_v3_small", "efficientnet_b0"])
@pytest.mark.parametrize("channels", [1, 3])
def test_torchvision_models_build_from_scratch_for_grey_and_colour(model: str, channels: int) -> None:
    hp = CNNSettings(model=model, image_size=32)  # type: ignore[arg-type]
    net = build_model(hp, in_channels=channels, num_classes=3).eval()
    with torch.no_grad():
        assert net(torch.randn(2, channels, 32, 32)).shape == (2, 3)


def test_local_weights_load_where_they_fit(tmp_path: Path) -> None:
    source = build_model(CNNSettings(model="mobilenet_v3_small"), in_channels=3, num_classes=5)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    hp = CNNSettings(model="mobilenet_v3_small", weights=str(tmp_path / "w.pt"))
    net = build_model(hp, in_channels=3, num_classes=3)
    first = "features.0.0.weight"
    assert torch.equal(net.state_dict()[first], source.state_dict()[first])
    assert net.state_dict()["classifier.3.weight"].shape == (3, 1024)  # the head of 3 classes stays new
    torch.save({"other": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="no tensor fits this network"):
        build_model(CNNSettings(model="mobilenet_v3_small", weights=str(tmp_path / "bad.pt")), in_channels=3,
                    num_classes=3)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_small_cnn_takes_sigmoid_and_tanh(activation: str) -> None:
    hp = CNNSettings(activation=activation, width=4, image_size=8)  # type: ignore[arg-type]
    net = build_model(hp, in_channels=1, num_classes=10)
    assert any(isinstance(m, type(ACTIVATIONS[activation]())) for m in net.modules())
    assert param_count(net) > 0


def test_small_cnn_starts_from_local_weights_too(tmp_path: Path) -> None:
    hp = CNNSettings(width=4, image_size=8)
    torch.manual_seed(0)
    source = build_model(hp, in_channels=1, num_classes=10)
    torch.save(source.state_dict(), tmp_path / "small.pt")
    torch.manual_seed(1)
    net = build_model(hp.model_copy(update={"weights": str(tmp_path / "small.pt")}), in_channels=1, num_classes=10)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), source.state_dict().values(),
                                                 strict=True))
