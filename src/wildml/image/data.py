"""Photo datasets for torch: safe loading, v2 transforms, a collate that skips bad photos.

Each item is decoded with :func:`wildml.photos.load_rgb`; a photo that cannot be used becomes a
record with its reason instead of an exception, and :func:`collate_photos` keeps such records
out of the tensor batch while passing their indices and reasons on, so one broken file never
stops a batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from wildml.photos import PhotoError, PhotoLimits, load_rgb

logger = logging.getLogger(__name__)

OK = "ok"


def eval_transform(image_size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """Resize the short side to 8/7 of ``image_size``, centre-crop, scale and normalise."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(round(image_size * 8 / 7), antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def train_transform(image_size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """Random crop, flip and mild colour changes: sale photos vary in framing and light."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(image_size, scale=(0.5, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


class PhotoDataset(Dataset):
    """Photos from file paths, each returned as a dict: index, image (or None), target, status.

    Parameters
    ----------
    paths
        Photo file paths.
    transform
        Applied to the decoded RGB image.
    targets
        Class index per photo (-1 when unlabelled); defaults to -1.
    limits
        Size and pixel limits for :func:`wildml.photos.load_rgb`.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        transform: Any,
        targets: Sequence[int] | None = None,
        limits: PhotoLimits | None = None,
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.targets = [int(t) for t in targets] if targets is not None else [-1] * len(paths)
        self.transform = transform
        self.limits = limits or PhotoLimits()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {"index": index, "target": self.targets[index], "image": None}
        try:
            image = load_rgb(self.paths[index], self.limits)
            item["image"] = self.transform(image)
            item["status"] = OK
        except PhotoError as err:
            item["status"] = err.reason
        except FileNotFoundError:
            item["status"] = "missing"
        except (OSError, ValueError, RuntimeError) as err:
            # Decoders can still fail inside a transform on a pathological file.
            logger.debug("photo %s failed in the transform: %s", self.paths[index], err)
            item["status"] = "unreadable"
        return item


@dataclass
class PhotoBatch:
    """A collated batch: the usable photos stacked, the unusable ones listed with reasons."""

    images: torch.Tensor  # (k, 3, s, s) for the k usable photos
    targets: torch.Tensor  # (k,)
    index: list[int]  # dataset index of each usable photo
    failed: list[tuple[int, str]] = field(default_factory=list)  # (dataset index, reason)


def collate_photos(items: list[dict[str, Any]]) -> PhotoBatch:
    """Stack the usable items, keep (index, reason) of the rest."""
    good = [it for it in items if it["image"] is not None]
    failed = [(int(it["index"]), str(it["status"])) for it in items if it["image"] is None]
    images = torch.stack([it["image"] for it in good]) if good else torch.empty(0)
    targets = torch.tensor([int(it["target"]) for it in good], dtype=torch.long)
    return PhotoBatch(images, targets, [int(it["index"]) for it in good], failed)


def photo_loader(
    dataset: PhotoDataset,
    *,
    batch_size: int,
    num_workers: int = 0,
    shuffle: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader with the skipping collate; workers only when asked for."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate_photos,
        generator=generator,
        persistent_workers=False,
    )
