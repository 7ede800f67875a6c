"""Photo labels: manifest classes and weak labels from labelled listings, mapped onto classes."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from wildml.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_CLASSES = ("ivory", "pangolin_scale", "rhino_horn", "other")
DEFAULT_CLASS_MAP = {
    "bone": "other",
    "ceramic": "other",
    "resin": "other",
    "horn": "other",
    "fish_scale": "other",
    "plastic": "other",
}
UNLABELLED = -1


@dataclass(frozen=True)
class LabelScheme:
    """How photo rows become class indices.

    Parameters
    ----------
    classes
        Output classes, in output order; ``negative_class`` must be one of them.
    class_map
        Raw value (``photo_class`` or ``listing_product``) -> class; values equal to a class
        name map to themselves.
    weak_labels
        Use photos of labelled listings: a positive listing's photos carry its product, a
        negative listing's photos carry ``negative_class``.
    negative_class
        The class for look-alikes and ordinary goods.
    positive_default
        Class for photos of a positive listing that names no product; None drops them.
    """

    classes: tuple[str, ...] = DEFAULT_CLASSES
    class_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CLASS_MAP))
    weak_labels: bool = True
    negative_class: str = "other"
    positive_default: str | None = "ivory"

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> LabelScheme:
        """Build from the ``train_image`` params section, checking every name."""
        classes = tuple(cfg.get("classes") or DEFAULT_CLASSES)
        class_map = dict(DEFAULT_CLASS_MAP if cfg.get("class_map") is None else cfg["class_map"])
        scheme = cls(
            classes=classes,
            class_map={str(k): str(v) for k, v in class_map.items()},
            weak_labels=bool(cfg.get("weak_labels", True)),
            negative_class=str(cfg.get("negative_class", "other")),
            positive_default=cfg.get("positive_default", "ivory"),
        )
        scheme.validate()
        return scheme

    def validate(self) -> None:
        """Raise ConfigError when a class name or mapping target is not a class."""
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ConfigError(f"train_image.classes must be >= 2 distinct names: {self.classes}")
        if self.negative_class not in self.classes:
            raise ConfigError(
                f"train_image.negative_class {self.negative_class!r} is not in classes"
            )
        bad = {k: v for k, v in self.class_map.items() if v not in self.classes}
        if bad:
            raise ConfigError(f"train_image.class_map maps onto unknown classes: {bad}")
        if self.positive_default is not None and self.positive_default not in self.classes:
            raise ConfigError(f"train_image.positive_default {self.positive_default!r} unknown")

    def map_value(self, value: str) -> str | None:
        """Return the class for a raw value, or None when it is unknown."""
        value = (value or "").strip()
        if value in self.classes:
            return value
        return self.class_map.get(value)


def label_photos(frame: pd.DataFrame, scheme: LabelScheme) -> pd.DataFrame:
    """Add ``target`` (class index, -1 when unlabelled) and ``label_source`` to photo rows.

    Parameters
    ----------
    frame
        Photo rows with ``photo_class``, ``listing_label`` and ``listing_product``.
    scheme
        The label scheme.

    Returns
    -------
    pandas.DataFrame
        A copy with ``target`` (int) and ``label_source`` (``manifest``/``weak``/``""``).
    """
    out = frame.copy()
    targets, sources, unknown = [], [], Counter()
    for photo_class, label, product in zip(
        out["photo_class"].fillna(""),
        out["listing_label"].fillna(UNLABELLED).astype(int),
        out["listing_product"].fillna(""),
        strict=True,
    ):
        name, source = _label_one(str(photo_class), int(label), str(product), scheme)
        if name is None and source == "unknown":
            unknown[photo_class or product] += 1
        targets.append(scheme.classes.index(name) if name else UNLABELLED)
        sources.append(source if name else "")
    if unknown:
        logger.warning(
            "%d photos carry values missing from train_image.class_map and stay unlabelled: %s",
            sum(unknown.values()),
            dict(unknown),
        )
    out["target"] = targets
    out["label_source"] = sources
    return out


def _label_one(
    photo_class: str, label: int, product: str, scheme: LabelScheme
) -> tuple[str | None, str]:
    if photo_class:
        name = scheme.map_value(photo_class)
        return name, "manifest" if name else "unknown"
    if not scheme.weak_labels or label == UNLABELLED:
        return None, ""
    if label == 0:
        return scheme.negative_class, "weak"
    if not product:
        return scheme.positive_default, "weak"
    name = scheme.map_value(product)
    return name, "weak" if name else "unknown"


def class_counts(targets: list[int] | pd.Series, classes: tuple[str, ...]) -> dict[str, int]:
    """Count labelled photos per class name (every class present, zeros included)."""
    counts = Counter(int(t) for t in targets if int(t) != UNLABELLED)
    return {name: int(counts.get(i, 0)) for i, name in enumerate(classes)}


def trained_classes(
    counts: dict[str, int], min_photos: int, negative_class: str
) -> tuple[list[str], list[str]]:
    """Split classes into those the head learns and those with too few photos.

    Raises
    ------
    ConfigError
        When fewer than two classes have enough photos: no classifier can be trained.
    """
    kept = [name for name, n in counts.items() if n >= min_photos]
    missing = [name for name, n in counts.items() if n < min_photos]
    if missing:
        logger.warning(
            "classes with fewer than %d training photos are left out of the head and "
            "predicted with their fallback probability: %s",
            min_photos,
            {name: counts[name] for name in missing},
        )
    if len(kept) < 2:
        raise ConfigError(
            f"train_image: only {kept} have >= {min_photos} training photos "
            f"(counts {counts}); add photos or lower train_image.min_photos_per_class"
        )
    if negative_class not in kept:
        logger.warning("the negative class %r has too few photos: %s", negative_class, counts)
    return kept, missing
