"""The ``train_image`` stage: prepared photos -> product-photo model, scores and figures.

Steps: read the prepared photos, label them (manifest classes, weak labels from listings),
build the backbone, train (``frozen``: a linear head on cached features; ``finetune``: the
last blocks and the head end to end), score every split (train rows out of fold), train the
from-scratch baseline on the same data, write the model folder and log the run to MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from wildml.config import load_params, section
from wildml.errors import DataError
from wildml.image import fit, scores
from wildml.image.backbone import build_backbone
from wildml.image.data import OK, PhotoDataset, eval_transform, photo_loader, train_transform
from wildml.image.labels import class_counts, label_photos, trained_classes
from wildml.image.metrics import flat_metrics, plot_confusion, split_metrics
from wildml.image.model import ImageModel, PhotoClassifier, map_photos, torch_threads
from wildml.image.settings import TrainSettings

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
EVAL_SPLITS = ("validation", "test")


def run(params_path: str | os.PathLike) -> dict[str, Any]:
    """Run the stage from a params file; return the metrics written to ``metrics.json``."""
    from wildml.tracking import log_params_flat, start_run

    params = load_params(params_path)
    params.setdefault("train_image", {})
    cfg = section(params, "train_image")
    settings = TrainSettings.from_config(cfg)
    frames = load_photo_splits(settings.prepared_dir / "photos")
    with start_run("train_image", cfg) as _run, torch_threads(settings.num_threads):
        log_params_flat(params["train_image"] or {}, prefix="train_image")
        metrics = train_and_write(frames, settings)
        _log_run(settings.out_dir, metrics)
    return metrics


def load_photo_splits(photos_dir: Path) -> dict[str, pd.DataFrame]:
    """Read the prepared photos DatasetDict into one DataFrame per split (missing -> empty)."""
    from datasets import load_from_disk

    if not photos_dir.is_dir():
        raise DataError(f"{photos_dir}: prepared photos not found; run `wildml prepare` first")
    data = load_from_disk(str(photos_dir))
    frames = {}
    for split in SPLITS:
        frame = data[split].to_pandas() if split in data else pd.DataFrame()
        for column, default in (("photo_class", ""), ("listing_id", ""), ("listing_product", "")):
            if column not in frame:
                frame[column] = default
        if "listing_label" not in frame:
            frame["listing_label"] = -1
        if "image_path" not in frame:
            raise DataError(f"{photos_dir}/{split}: column 'image_path' is missing")
        frames[split] = frame.reset_index(drop=True)
    return frames


def train_and_write(frames: dict[str, pd.DataFrame], s: TrainSettings) -> dict[str, Any]:
    """Train, score and write everything into ``s.out_dir``; return the metrics."""
    started = time.perf_counter()
    torch.manual_seed(s.seed)
    frames = {split: label_photos(frame, s.scheme) for split, frame in frames.items()}
    classes = list(s.scheme.classes)
    counts = class_counts(frames["train"]["target"], s.scheme.classes)
    kept, missing = trained_classes(counts, s.min_photos_per_class, s.scheme.negative_class)
    for frame in frames.values():
        frame["head_target"] = [
            kept.index(classes[t]) if t >= 0 and classes[t] in kept else -1
            for t in frame["target"]
        ]

    network = PhotoClassifier(build_backbone(s.backbone, pretrained=True), len(kept))
    config = _model_config(s, classes, kept, missing, counts, frames, network.backbone.dim)
    model = ImageModel(network, config)
    history: dict[str, list[float]] = {}
    if s.mode == "finetune":
        history["finetune_loss"] = _finetune(network, frames["train"], s)
    features = {split: _features(network, frame, s) for split, frame in frames.items()}
    if s.mode == "frozen":
        x, y = _head_training_set(network, frames["train"], features["train"], s)
        history["head_loss"] = _fit_head(network.head, x, y, s)
    config["train_loss"] = history
    model.save(s.out_dir)

    probs = {split: _probs(model, feats) for split, (feats, _) in features.items()}
    probs["train"], oof_mask = _out_of_fold(
        model, frames["train"], features["train"][0], probs["train"], s
    )
    metrics = _evaluate(frames, probs, classes)
    metrics.update(
        classes=classes,
        trained_classes=kept,
        missing_classes=missing,
        class_counts=counts,
        mode=s.mode,
        backbone=s.backbone.name,
    )
    if s.baseline.enabled:
        metrics["baseline"] = _baseline(frames, s, classes, kept)
    _write_outputs(s, frames, features, probs, oof_mask, metrics, classes)
    metrics["wall_s"] = round(time.perf_counter() - started, 1)
    (s.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics


def _model_config(
    s: TrainSettings,
    classes: list[str],
    kept: list[str],
    missing: list[str],
    counts: dict[str, int],
    frames: dict[str, pd.DataFrame],
    dim: int,
) -> dict[str, Any]:
    return {
        "classes": classes,
        "trained_classes": kept,
        "missing_classes": missing,
        "missing_class_policy": "excluded_from_head" if missing else None,
        "fallback_probs": {name: s.missing_class_probability for name in missing},
        "class_counts": counts,
        "class_counts_by_split": {
            split: class_counts(frame["target"], s.scheme.classes)
            for split, frame in frames.items()
        },
        "min_photos_per_class": s.min_photos_per_class,
        "backbone": s.backbone.to_dict(),
        "embedding_dim": dim,
        "mode": s.mode,
        "finetune_blocks": s.finetune_blocks if s.mode == "finetune" else 0,
        "photo_limits": {
            "max_bytes": s.limits.max_bytes,
            "max_pixels": s.limits.max_pixels,
            "min_side": s.limits.min_side,
        },
        "labels": {
            "class_map": s.scheme.class_map,
            "weak_labels": s.scheme.weak_labels,
            "negative_class": s.scheme.negative_class,
        },
        "seed": s.seed,
    }


def _features(
    network: PhotoClassifier, frame: pd.DataFrame, s: TrainSettings
) -> tuple[np.ndarray, list[str]]:
    """Backbone features (n, dim) of one split (NaN rows for unusable photos) and statuses."""
    mean, std = s.backbone.mean_std()
    dataset = PhotoDataset(
        frame["image_path"].tolist(),
        eval_transform(s.backbone.image_size, mean, std),
        limits=s.limits,
    )
    network.backbone.eval()
    feats, status = map_photos(
        lambda images: network.backbone(images).double().numpy(),
        dataset,
        width=network.backbone.dim,
        batch_size=s.batch_size,
        num_workers=s.num_workers,
    )
    logger.info(
        "backbone features of %d photos (%s)",
        len(status),
        frame["split"].iloc[0] if len(frame) and "split" in frame else "empty split",
    )
    bad = [st for st in status if st != OK]
    if bad:
        logger.warning(
            "%d of %d photos unusable: %s",
            len(bad),
            len(status),
            pd.Series(bad).value_counts().to_dict(),
        )
    return feats, status


def _head_training_set(
    network: PhotoClassifier,
    train: pd.DataFrame,
    feats: tuple[np.ndarray, list[str]],
    s: TrainSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Clean features of labelled train photos plus ``augment_views`` augmented copies."""
    values, _ = feats
    rows = np.flatnonzero((train["head_target"].to_numpy() >= 0) & ~np.isnan(values).any(axis=1))
    x, y = [values[rows]], [train["head_target"].to_numpy()[rows]]
    mean, std = s.backbone.mean_std()
    for view in range(s.augment_views):
        torch.manual_seed(s.seed + 1 + view)
        dataset = PhotoDataset(
            train["image_path"].iloc[rows].tolist(),
            train_transform(s.backbone.image_size, mean, std),
            limits=s.limits,
        )
        aug, _ = map_photos(
            lambda images: network.backbone(images).double().numpy(),
            dataset,
            width=network.backbone.dim,
            batch_size=s.batch_size,
        )
        usable = ~np.isnan(aug).any(axis=1)
        x.append(aug[usable])
        y.append(y[0][usable])
    return np.concatenate(x), np.concatenate(y)


def _fit_head(
    head: torch.nn.Linear, x: np.ndarray, y: np.ndarray, s: TrainSettings
) -> list[float]:
    return fit.fit_head(
        head,
        x,
        y,
        epochs=s.epochs,
        batch_size=s.batch_size,
        lr=s.lr,
        weight_decay=s.weight_decay,
        seed=s.seed,
    )


def _finetune(network: PhotoClassifier, train: pd.DataFrame, s: TrainSettings) -> list[float]:
    """Train the last ``finetune_blocks`` blocks and the head end to end."""
    rows = train[train["head_target"] >= 0]
    mean, std = s.backbone.mean_std()
    dataset = PhotoDataset(
        rows["image_path"].tolist(),
        train_transform(s.backbone.image_size, mean, std),
        rows["head_target"].tolist(),
        limits=s.limits,
    )
    loader = photo_loader(
        dataset, batch_size=s.batch_size, num_workers=s.num_workers, shuffle=True, seed=s.seed
    )
    params = [*network.backbone.freeze(s.finetune_blocks), *network.head.parameters()]
    network.to(s.device)

    def set_mode() -> None:
        network.backbone.train_last(s.finetune_blocks)
        network.head.train()

    losses = fit.fit_network(
        network,
        loader,
        params,
        n_classes=network.head.out_features,
        class_weight=fit.balanced_weights(
            rows["head_target"].to_numpy(), network.head.out_features
        ),
        epochs=s.epochs,
        lr=s.finetune_lr,
        weight_decay=s.weight_decay,
        set_train_mode=set_mode,
        max_steps=s.max_steps,
        device=s.device,
    )
    network.to("cpu")
    return losses


def _probs(model: ImageModel, feats: np.ndarray) -> np.ndarray:
    """All-class probabilities from cached features, exactly as ``ImageModel.predict``."""
    out = np.full((feats.shape[0], len(model.classes)), np.nan)
    usable = ~np.isnan(feats).any(axis=1)
    if usable.any():
        with torch.inference_mode():
            # Same float32 features and head as predict(), so the figures match the saved model.
            logits = model.network.head(torch.as_tensor(feats[usable], dtype=torch.float32))
        out[usable] = model.probs_from_logits(logits)
    return out


def _out_of_fold(
    model: ImageModel,
    train: pd.DataFrame,
    feats: np.ndarray,
    probs: np.ndarray,
    s: TrainSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Replace labelled train rows' probabilities by out-of-fold ones; return them and a mask."""
    rows = np.flatnonzero((train["head_target"].to_numpy() >= 0) & ~np.isnan(feats).any(axis=1))
    mask = np.zeros(len(train), dtype=bool)
    if not len(rows):
        return probs, mask
    if s.mode == "finetune":
        # Known limitation: in finetune mode the out-of-fold heads sit on a backbone tuned on
        # all train photos, so train-row scores are optimistic; fuse on validation rows then.
        logger.warning("finetune mode: out-of-fold train scores reuse the tuned backbone")
    groups = _groups(train.iloc[rows])
    oof = fit.out_of_fold_head(
        feats[rows],
        train["head_target"].to_numpy()[rows],
        groups,
        n_classes=len(model.trained_classes),
        folds=s.cv_folds,
        fit=lambda head, x, y: _fit_head(head, x, y, s),
        seed=s.seed,
    )
    if oof is None:
        logger.warning(
            "too few train groups per class for out-of-fold scores: train rows "
            "hold in-sample predictions of the saved model"
        )
        return probs, mask
    out = probs.copy()
    out[rows] = model.probs_from_logits(torch.log(torch.as_tensor(oof).clamp_min(1e-12)))
    mask[rows] = True
    return out, mask


def _groups(frame: pd.DataFrame) -> np.ndarray:
    """Photos of one listing (or one duplicate group) never straddle folds."""
    listing = frame["listing_id"].fillna("").astype(str)
    group = frame["group_id"].astype(str) if "group_id" in frame else frame["image_path"]
    return np.where(listing != "", "listing:" + listing, "group:" + group.astype(str))


def _evaluate(
    frames: dict[str, pd.DataFrame], probs: dict[str, np.ndarray], classes: list[str]
) -> dict[str, Any]:
    return {split: split_metrics(frames[split], probs[split], classes) for split in EVAL_SPLITS}


def _baseline(
    frames: dict[str, pd.DataFrame], s: TrainSettings, classes: list[str], kept: list[str]
) -> dict[str, Any]:
    """MobileNetV3-small from scratch on the same photos and labels; figures per split."""
    from wildml.image.baseline import train_baseline

    return train_baseline(frames, s, classes, kept)


def _write_outputs(
    s: TrainSettings,
    frames: dict[str, pd.DataFrame],
    features: dict[str, Any],
    probs: dict[str, np.ndarray],
    oof_mask: np.ndarray,
    metrics: dict[str, Any],
    classes: list[str],
) -> None:
    photo_scores = scores.photo_scores(frames, features, probs, oof_mask, classes)
    photo_scores.to_parquet(s.out_dir / "photo_scores.parquet", index=False)
    listings = scores.load_listing_splits(s.prepared_dir / "listings")
    scores.listing_scores(photo_scores, classes, listings).to_parquet(
        s.out_dir / "listing_scores.parquet", index=False
    )
    matrices = {f"image {split}": metrics[split]["confusion_matrix"] for split in EVAL_SPLITS}
    for split in EVAL_SPLITS:
        if "baseline" in metrics:
            matrices[f"baseline {split}"] = metrics["baseline"][split]["confusion_matrix"]
    plot_confusion(matrices, classes, s.out_dir / "confusion_matrix.png")


def _log_run(out_dir: Path, metrics: dict[str, Any]) -> None:
    import mlflow

    flat: dict[str, float] = {}
    for split in EVAL_SPLITS:
        flat.update(flat_metrics(metrics[split], f"image_{split}"))
        if "baseline" in metrics:
            flat.update(flat_metrics(metrics["baseline"][split], f"baseline_{split}"))
    mlflow.log_metrics(flat)
    config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    for name, losses in (config.get("train_loss") or {}).items():
        for step, value in enumerate(losses):
            mlflow.log_metric(f"image_{name}", value, step=step)
    for name in ("config.json", "metrics.json", "confusion_matrix.png"):
        mlflow.log_artifact(str(out_dir / name), artifact_path="image")
