"""Backbones: the packaged EfficientNet-Lite0, torchvision architectures from local weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

torch = pytest.importorskip("torch")

from wildml.errors import ConfigError  # noqa: E402
from wildml.image.backbone import BackboneSpec, build_backbone  # noqa: E402


@pytest.mark.parametrize(
    ("name", "dim"), [("efficientnet_lite0", 1280), ("torchvision:mobilenet_v3_small", 576)]
)
def test_local_weights_are_loaded_exactly(name: str, dim: int, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = build_backbone(BackboneSpec(name=name, image_size=64), pretrained=False).eval()
    weights = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.body.state_dict().items()}, str(weights))

    loaded = build_backbone(BackboneSpec(name=name, image_size=64, weights_path=str(weights)))

    images = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        expected, got = source(images), loaded.eval()(images)
    assert got.shape == (2, dim)
    assert torch.equal(expected, got)


def test_packaged_imagenet_weights_differ_from_random_init() -> None:
    torch.manual_seed(0)
    spec = BackboneSpec(image_size=64)
    random_init = build_backbone(spec, pretrained=False)
    packaged = build_backbone(spec)

    stem = "body._conv_stem.weight"
    assert not torch.equal(random_init.state_dict()[stem], packaged.state_dict()[stem])


def test_freeze_leaves_only_the_last_blocks_trainable() -> None:
    backbone = build_backbone(BackboneSpec(image_size=64), pretrained=False)

    trainable = backbone.freeze(2)

    n_last = sum(p.numel() for b in backbone.blocks()[-2:] for p in b.parameters())
    assert sum(p.numel() for p in trainable) == n_last
    assert not backbone.body._conv_stem.weight.requires_grad
    assert backbone.body._conv_head.weight.requires_grad


def test_weights_that_do_not_fit_are_a_config_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    weights = tmp_path / "wrong.safetensors"
    save_file({"layer.weight": torch.zeros(3, 3)}, str(weights))

    with pytest.raises(ConfigError, match="do not fit"):
        build_backbone(
            BackboneSpec(name="torchvision:mobilenet_v3_small", weights_path=str(weights))
        )


@pytest.mark.parametrize("name", ["resnet9000", "torchvision:no_such_net"])
def test_unknown_backbone_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError):
        build_backbone(BackboneSpec(name=name), pretrained=False)
