"""The saved product-photo model and its inference API.

A model folder holds ``model.safetensors`` (backbone and head tensors) and ``config.json``
(classes, which of them the head learned, the backbone spec, input size, normalisation,
photo limits). :meth:`ImageModel.load` rebuilds the architecture without any weights download
and :meth:`ImageModel.predict` scores photo files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wildml.errors import DataError
from wildml.image.backbone import Backbone, BackboneSpec, build_backbone
from wildml.image.data import OK, PhotoDataset, eval_transform, photo_loader
from wildml.photos import PhotoLimits

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


class PhotoClassifier(nn.Module):
    """Backbone features (n, dim) -> linear head logits (n, n_trained_classes)."""

    def __init__(self, backbone: Backbone, n_outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.dim, n_outputs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of a batch of normalised images."""
        return self.head(self.backbone(images))


@dataclass
class PhotoPrediction:
    """What :meth:`ImageModel.predict` returns.

    Attributes
    ----------
    probs
        (n, n_classes) float64 class probabilities in ``classes`` order; NaN rows for bad photos.
    embeddings
        (n, dim) float32 backbone features (dim 1280 for EfficientNet-Lite0); NaN rows for bad
        photos.
    status
        Per photo ``"ok"`` or a :data:`wildml.photos.REASONS` code.
    """

    probs: np.ndarray
    embeddings: np.ndarray
    status: list[str]


def expand_probs(
    trained_probs: np.ndarray,
    trained: Sequence[str],
    classes: Sequence[str],
    fallback: dict[str, float],
) -> np.ndarray:
    """Place head probabilities (n, k) into all classes (n, c).

    Classes the head did not learn get their fallback probability and the learned ones share
    what is left, so every row still sums to one.
    """
    n = trained_probs.shape[0]
    out = np.zeros((n, len(classes)), dtype=np.float64)
    rest = 1.0 - sum(fallback.get(name, 0.0) for name in classes if name not in trained)
    for j, name in enumerate(classes):
        if name in trained:
            out[:, j] = trained_probs[:, list(trained).index(name)] * rest
        else:
            out[:, j] = fallback.get(name, 0.0)
    return out


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run a block with ``num_threads`` intra-op threads, then restore the previous count."""
    if not num_threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ImageModel:
    """A trained photo classifier loaded from a model folder.

    Parameters
    ----------
    network
        The backbone + head.
    config
        The model's config mapping (as in ``config.json``).
    """

    def __init__(self, network: PhotoClassifier, config: dict[str, Any]) -> None:
        self.network = network.eval()
        self.config = config
        self.classes: list[str] = list(config["classes"])
        self.trained_classes: list[str] = list(config["trained_classes"])
        self.spec = BackboneSpec.from_config(config["backbone"])
        self.limits = PhotoLimits.from_config(config.get("photo_limits"))

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> ImageModel:
        """Rebuild a model from ``model.safetensors`` and ``config.json`` in ``model_dir``.

        Raises
        ------
        DataError
            When either file is missing or the tensors do not fit the recorded architecture.
        """
        from safetensors.torch import load_file

        model_dir = Path(model_dir)
        config_path, weights_path = model_dir / CONFIG_FILE, model_dir / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise DataError(f"{path}: missing; train the image model first")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        spec = BackboneSpec.from_config(config["backbone"])
        network = PhotoClassifier(
            build_backbone(spec, pretrained=False), len(config["trained_classes"])
        )
        try:
            network.load_state_dict(load_file(str(weights_path)), strict=True)
        except RuntimeError as err:
            raise DataError(f"{weights_path}: tensors do not fit {spec.name}: {err}") from err
        return cls(network, config)

    def save(self, model_dir: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``model_dir``; return it."""
        from safetensors.torch import save_file

        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
        save_file(state, str(model_dir / WEIGHTS_FILE), metadata={"format": "wildml-image"})
        config = {**self.config, "format_version": FORMAT_VERSION}
        (model_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        return model_dir

    def fallback(self) -> dict[str, float]:
        """Probability given to each class the head did not learn."""
        return {k: float(v) for k, v in self.config.get("fallback_probs", {}).items()}

    def probs_from_logits(self, logits: torch.Tensor) -> np.ndarray:
        """(n, k) head logits -> (n, n_classes) probabilities over every class."""
        trained = torch.softmax(logits.double(), dim=1).numpy()
        return expand_probs(trained, self.trained_classes, self.classes, self.fallback())

    def predict(
        self,
        paths: Sequence[str | os.PathLike],
        batch_size: int = 32,
        num_threads: int | None = None,
        *,
        num_workers: int = 0,
    ) -> PhotoPrediction:
        """Score photo files.

        Parameters
        ----------
        paths
            Photo file paths (any list; bad or missing files are reported, not raised).
        batch_size
            Photos per forward pass.
        num_threads
            torch intra-op threads for this call; None keeps the current setting.
        num_workers
            DataLoader worker processes for decoding.

        Returns
        -------
        PhotoPrediction
            ``probs`` (n, n_classes), ``embeddings`` (n, dim), ``status`` (n,).
        """
        mean, std = self.spec.mean_std()
        dataset = PhotoDataset(
            paths, eval_transform(self.spec.image_size, mean, std), limits=self.limits
        )
        network = self.network

        def score(images: torch.Tensor) -> np.ndarray:
            features = network.backbone(images)
            probs = self.probs_from_logits(network.head(features))
            return np.concatenate([probs, features.double().numpy()], axis=1)

        with torch_threads(num_threads):
            out, status = map_photos(
                score,
                dataset,
                width=len(self.classes) + network.backbone.dim,
                batch_size=batch_size,
                num_workers=num_workers,
            )
        n_classes = len(self.classes)
        return PhotoPrediction(
            probs=out[:, :n_classes],
            embeddings=out[:, n_classes:].astype(np.float32),
            status=status,
        )


def map_photos(
    fn: Callable[[torch.Tensor], np.ndarray],
    dataset: PhotoDataset,
    *,
    width: int,
    batch_size: int = 32,
    num_workers: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Apply ``fn`` (images (k, 3, s, s) -> (k, width)) to every usable photo of ``dataset``.

    Returns
    -------
    out : numpy.ndarray
        (n, width) float64, NaN rows for photos that could not be used.
    status : list of str
        ``"ok"`` or the reason per photo.
    """
    out = np.full((len(dataset), width), np.nan)
    status = [OK] * len(dataset)
    loader = photo_loader(dataset, batch_size=batch_size, num_workers=num_workers)
    with torch.inference_mode():
        for batch in loader:
            for index, reason in batch.failed:
                status[index] = reason
            if batch.index:
                out[batch.index] = fn(batch.images)
    return out, status
