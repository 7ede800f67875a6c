"""The ``train_image`` params section, read once and checked at the door."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wildml.config import resolve_path
from wildml.errors import ConfigError
from wildml.image.backbone import BackboneSpec
from wildml.image.labels import LabelScheme
from wildml.photos import PhotoLimits

MODES = ("frozen", "finetune")


@dataclass(frozen=True)
class BaselineSettings:
    """The from-scratch MobileNetV3-small trained beside the main model for comparison."""

    enabled: bool = True
    arch: str = "mobilenet_v3_small"
    epochs: int | None = None  # None: the main model's epochs
    image_size: int | None = None  # None: the main model's image size
    lr: float = 1e-3
    max_steps: int | None = None


@dataclass(frozen=True)
class TrainSettings:
    """Everything ``train_image`` reads from params (see docs/image-model.md)."""

    prepared_dir: Path
    out_dir: Path
    scheme: LabelScheme
    backbone: BackboneSpec
    limits: PhotoLimits
    mode: str = "frozen"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    finetune_blocks: int = 2
    finetune_lr: float = 3e-4
    augment_views: int = 1
    min_photos_per_class: int = 5
    missing_class_probability: float = 0.0
    cv_folds: int = 5
    num_workers: int = 0
    num_threads: int | None = None
    max_steps: int | None = None
    device: str = "cpu"
    seed: int = 13
    baseline: BaselineSettings = field(default_factory=BaselineSettings)

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrainSettings:
        """Build from the merged ``train_image`` section; raise ConfigError on bad values."""
        backbone_cfg = dict(cfg.get("backbone") or {})
        if backbone_cfg.get("weights_path"):
            backbone_cfg["weights_path"] = str(resolve_path(cfg, backbone_cfg["weights_path"]))
        backbone_cfg.setdefault("image_size", cfg.get("image_size", 224))
        limits_cfg = cfg.get("photo_limits") or {}
        settings = cls(
            prepared_dir=resolve_path(cfg, cfg.get("prepared_dir", "data/prepared")),
            out_dir=resolve_path(cfg, cfg.get("out_dir", "models/image")),
            scheme=LabelScheme.from_config(cfg),
            backbone=BackboneSpec.from_config(backbone_cfg),
            limits=PhotoLimits.from_config(limits_cfg),
            baseline=_baseline(cfg.get("baseline")),
            **{k: cfg[k] for k in _SCALARS if cfg.get(k) is not None},
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ConfigError naming the first bad setting."""
        if self.mode not in MODES:
            raise ConfigError(f"train_image.mode {self.mode!r}: use one of {MODES}")
        for name in ("epochs", "batch_size", "min_photos_per_class", "cv_folds"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"train_image.{name} must be >= 1")
        if not 0 <= self.missing_class_probability < 1:
            raise ConfigError("train_image.missing_class_probability must be in [0, 1)")
        if self.num_workers < 0:
            raise ConfigError("train_image.num_workers must be >= 0")


def _baseline(cfg: dict[str, Any] | None) -> BaselineSettings:
    try:
        return BaselineSettings(**(cfg or {}))
    except TypeError as err:
        raise ConfigError(f"train_image.baseline: {err}") from err


_SCALARS = (
    "mode",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "finetune_blocks",
    "finetune_lr",
    "augment_views",
    "min_photos_per_class",
    "missing_class_probability",
    "cv_folds",
    "num_workers",
    "num_threads",
    "max_steps",
    "device",
    "seed",
)
