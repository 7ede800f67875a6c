"""The comparison model: torchvision MobileNetV3-small trained from scratch, no weights.

It sees the same labelled train photos, the same augmentation and (by default) the same number
of epochs as the main model, so the gap between the two is what ImageNet pretraining buys.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from wildml.image import fit
from wildml.image.backbone import IMAGENET_MEAN, IMAGENET_STD
from wildml.image.data import PhotoDataset, eval_transform, photo_loader, train_transform
from wildml.image.metrics import split_metrics
from wildml.image.model import expand_probs, map_photos
from wildml.image.settings import TrainSettings

logger = logging.getLogger(__name__)


def train_baseline(
    frames: dict[str, pd.DataFrame], s: TrainSettings, classes: list[str], kept: list[str]
) -> dict[str, Any]:
    """Train the baseline and return its validation and test figures plus its loss curve."""
    from torchvision.models import get_model

    b = s.baseline
    size = b.image_size or s.backbone.image_size
    epochs = b.epochs or s.epochs
    torch.manual_seed(s.seed)
    network = get_model(b.arch, weights=None, num_classes=len(kept))
    train = frames["train"][frames["train"]["head_target"] >= 0]
    dataset = PhotoDataset(
        train["image_path"].tolist(),
        train_transform(size, IMAGENET_MEAN, IMAGENET_STD),
        train["head_target"].tolist(),
        limits=s.limits,
    )
    loader = photo_loader(
        dataset, batch_size=s.batch_size, num_workers=s.num_workers, shuffle=True, seed=s.seed
    )
    network.to(s.device)
    losses = fit.fit_network(
        network,
        loader,
        list(network.parameters()),
        n_classes=len(kept),
        class_weight=fit.balanced_weights(train["head_target"].to_numpy(), len(kept)),
        epochs=epochs,
        lr=b.lr,
        weight_decay=s.weight_decay,
        set_train_mode=network.train,
        max_steps=b.max_steps,
        device=s.device,
    )
    network.to("cpu").eval()
    out: dict[str, Any] = {
        "arch": b.arch,
        "pretrained": False,
        "epochs": epochs,
        "image_size": size,
        "train_loss": losses,
    }
    for split in ("validation", "test"):
        probs = _predict(network, frames[split], size, s, classes, kept)
        out[split] = split_metrics(frames[split], probs, classes)
    return out


def _predict(
    network: torch.nn.Module,
    frame: pd.DataFrame,
    size: int,
    s: TrainSettings,
    classes: list[str],
    kept: list[str],
) -> np.ndarray:
    dataset = PhotoDataset(
        frame["image_path"].tolist(),
        eval_transform(size, IMAGENET_MEAN, IMAGENET_STD),
        limits=s.limits,
    )

    def score(images: torch.Tensor) -> np.ndarray:
        trained = torch.softmax(network(images).double(), dim=1).numpy()
        return expand_probs(
            trained,
            kept,
            classes,
            {k: s.missing_class_probability for k in classes if k not in kept},
        )

    probs, _ = map_photos(
        score, dataset, width=len(classes), batch_size=s.batch_size, num_workers=s.num_workers
    )
    return probs
