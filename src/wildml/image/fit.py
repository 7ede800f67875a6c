"""Training loops: a linear head on cached features, a network end to end, out-of-fold heads."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

logger = logging.getLogger(__name__)


def balanced_weights(targets: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights (mean 1 over present classes) for the loss."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    weights = np.where(
        counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0
    )
    return torch.tensor(weights, dtype=torch.float32)


def fit_head(
    head: nn.Linear,
    features: np.ndarray,
    targets: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
) -> list[float]:
    """Train a linear head on cached features with class-balanced cross-entropy.

    Parameters
    ----------
    head
        The layer to train in place, (dim -> k).
    features
        (n, dim) float features of usable, labelled photos.
    targets
        (n,) head class indices in [0, k).

    Returns
    -------
    list of float
        Mean training loss per epoch.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.long)
    loss_fn = nn.CrossEntropyLoss(weight=balanced_weights(targets, head.out_features))
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        total = 0.0
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(head(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / max(len(y), 1))
    head.eval()
    return losses


def fit_network(
    network: nn.Module,
    loader: DataLoader,
    params: Sequence[nn.Parameter],
    *,
    n_classes: int,
    class_weight: torch.Tensor,
    epochs: int,
    lr: float,
    weight_decay: float,
    set_train_mode: Callable[[], None],
    max_steps: int | None = None,
    device: str = "cpu",
) -> list[float]:
    """Train ``network`` end to end (or its unfrozen part) on batches of :class:`PhotoBatch`.

    Returns
    -------
    list of float
        Mean training loss per epoch (over the steps run).
    """
    loss_fn = nn.CrossEntropyLoss(weight=class_weight.to(device))
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(epochs, 1))
    losses, steps, skipped = [], 0, 0
    for epoch in range(epochs):
        set_train_mode()
        total, seen = 0.0, 0
        for batch in loader:
            skipped += len(batch.failed)
            if len(batch.index) < 2:  # batch norm needs more than one photo
                continue
            optimizer.zero_grad()
            loss = loss_fn(network(batch.images.to(device)), batch.targets.to(device))
            loss.backward()
            optimizer.step()
            total, seen, steps = (
                total + loss.item() * len(batch.index),
                seen + len(batch.index),
                steps + 1,
            )
            if max_steps and steps >= max_steps:
                break
        scheduler.step()
        losses.append(total / max(seen, 1))
        logger.info("epoch %d/%d: loss %.4f over %d photos", epoch + 1, epochs, losses[-1], seen)
        if max_steps and steps >= max_steps:
            break
    if skipped:
        logger.warning("%d unusable photo loads were skipped during training", skipped)
    network.eval()
    return losses


def out_of_fold_head(
    features: np.ndarray,
    targets: np.ndarray,
    groups: np.ndarray,
    *,
    n_classes: int,
    folds: int,
    fit: Callable[[nn.Linear, np.ndarray, np.ndarray], object],
    seed: int,
) -> np.ndarray | None:
    """Out-of-fold head probabilities (n, n_classes), folds grouped by listing.

    Returns None when too few groups or photos per class allow at least two folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    per_class = np.bincount(targets, minlength=n_classes)
    smallest = int(per_class[per_class > 0].min()) if per_class.any() else 0
    k = min(folds, len(np.unique(groups)), smallest)
    if k < 2:
        return None
    out = np.full((len(targets), n_classes), np.nan)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (fit_idx, held_idx) in enumerate(splitter.split(features, targets, groups)):
        torch.manual_seed(seed + fold)
        head = nn.Linear(features.shape[1], n_classes)
        fit(head, features[fit_idx], targets[fit_idx])
        with torch.inference_mode():
            logits = head(torch.as_tensor(features[held_idx], dtype=torch.float32))
        out[held_idx] = torch.softmax(logits.double(), dim=1).numpy()
    return out
