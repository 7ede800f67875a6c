"""Fine-tuning a Hugging Face sequence classifier as a text-model component.

Meant for a user with a GPU and a downloaded checkpoint (``model`` is a hub name or a local
folder, e.g. a multilingual XLM-R or mDeBERTa). On this project's 2-core CPU machines it is
exercised only on a tiny model that the tests build locally. Saved with ``save_pretrained``
(safetensors) beside the tokenizer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from wildml.errors import ConfigError
from wildml.text.frame import as_frame

logger = logging.getLogger(__name__)


class TransformerComponent(BaseEstimator):
    """``AutoModelForSequenceClassification`` fine-tuned with class-weighted cross-entropy.

    Parameters
    ----------
    model
        Hub name or local path of the checkpoint to start from.
    max_steps
        Optimiser steps; ``epochs`` caps them too when given.
    epochs
        Passes over the training rows; None uses ``max_steps`` only.
    batch_size, learning_rate, max_length
        Usual fine-tuning settings; texts are cut at ``max_length`` tokens.
    use_profile
        Feed the seller's profile as the second segment of each input.
    device
        torch device; None picks CUDA when available.
    random_state
        Seed of initialisation and shuffling.
    """

    def __init__(
        self,
        *,
        model: str = "",
        max_steps: int = 200,
        epochs: float | None = None,
        batch_size: int = 16,
        learning_rate: float = 3e-5,
        max_length: int = 128,
        use_profile: bool = False,
        device: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.model = model
        self.max_steps = max_steps
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.use_profile = use_profile
        self.device = device
        self.random_state = random_state

    def _device(self) -> Any:
        import torch

        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def _load_pretrained(self, source: str) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer_ = AutoTokenizer.from_pretrained(source)
            self.model_ = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
        except OSError as err:
            raise ConfigError(
                f"params: transformer model {source!r} cannot be loaded ({err}); give a local "
                "folder or download the checkpoint first"
            ) from err
        self.model_.to(self._device())

    def _encode(self, frame: pd.DataFrame) -> dict[str, Any]:
        second = frame["seller_profile"].tolist() if self.use_profile else None
        return self.tokenizer_(
            frame["text"].tolist(),
            second,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )

    def featurize(self, frame: Any) -> pd.DataFrame:
        """The model's input: the listing frame."""
        return as_frame(frame)

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> TransformerComponent:
        """Fine-tune on listings ``frame`` with 0/1 labels ``y``."""
        return self.fit_features(self.featurize(frame), y)

    def fit_features(self, frame: pd.DataFrame, y: np.ndarray) -> TransformerComponent:
        """Fine-tune from ``model``; the loss of every step lands in ``loss_history_``."""
        import torch

        if not self.model:
            raise ConfigError("params: train_text.transformer.model is required")
        torch.manual_seed(self.random_state or 0)
        self._load_pretrained(self.model)
        y = np.asarray(y, dtype=np.int64)
        counts = np.bincount(y, minlength=2).astype(np.float64)
        weights = torch.tensor(counts.sum() / (2 * np.maximum(counts, 1)), dtype=torch.float32)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weights.to(self._device()))
        optimiser = torch.optim.AdamW(self.model_.parameters(), lr=self.learning_rate)
        self.loss_history_ = []
        self.model_.train()
        for batch in self._batches(len(frame)):
            inputs = {k: v.to(self._device()) for k, v in self._encode(frame.iloc[batch]).items()}
            logits = self.model_(**inputs).logits
            loss = loss_fn(logits, torch.as_tensor(y[batch], device=self._device()))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            self.loss_history_.append(float(loss.detach().cpu()))
        self.model_.eval()
        return self

    def _batches(self, n_rows: int) -> list[np.ndarray]:
        """Row indices of every optimiser step, reshuffled each epoch."""
        rng = np.random.default_rng(self.random_state)
        steps = self.max_steps
        if self.epochs is not None:
            steps = min(steps, int(np.ceil(self.epochs * n_rows / self.batch_size)))
        batches: list[np.ndarray] = []
        while len(batches) < steps:
            order = rng.permutation(n_rows)
            batches += [order[i : i + self.batch_size] for i in range(0, n_rows, self.batch_size)]
        return batches[:steps]

    def decision_features(self, frame: pd.DataFrame) -> np.ndarray:
        """Log-odds ``logit_1 - logit_0`` per listing, shape (n,)."""
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(frame), 64):
                chunk = frame.iloc[start : start + 64]
                inputs = {k: v.to(self._device()) for k, v in self._encode(chunk).items()}
                logits = self.model_(**inputs).logits.float().cpu().numpy()
                out.append(logits[:, 1] - logits[:, 0])
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def decision_function(self, frame: Any) -> np.ndarray:
        """Log-odds of each listing, shape (n,)."""
        return self.decision_features(self.featurize(frame))

    def explain(self, frame: Any, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """The fine-tuned model's log-odds as one item per listing."""
        scores = self.decision_function(frame)
        return [
            [{"feature": "transformer", "weight": float(z), "kind": "transformer"}] for z in scores
        ]

    def save(self, model_dir: Path, name: str) -> None:
        """Write ``<name>/`` (save_pretrained: safetensors + tokenizer) and ``<name>.json``."""
        self.model_.save_pretrained(model_dir / name, safe_serialization=True)
        self.tokenizer_.save_pretrained(model_dir / name)
        meta = {"params": self.get_params(), "loss_history": self.loss_history_}
        (model_dir / f"{name}.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path, name: str) -> TransformerComponent:
        """Read a component written by :meth:`save`."""
        meta = json.loads((model_dir / f"{name}.json").read_text(encoding="utf-8"))
        component = cls(**meta["params"])
        component._load_pretrained(str(model_dir / name))
        component.model_.eval()
        component.loss_history_ = meta["loss_history"]
        return component
