"""``TextModel``: the saved text classifier that later stages and the scorer load.

A model is one or more components (:mod:`wildml.text.components`), an optional stacker that
combines their log-odds, and a language-aware calibrator fitted on the validation split. On
disk it is a folder: ``config.json`` (family, component names, stacker and calibrator settings,
threshold) plus one skops/JSON pair, or a ``save_pretrained`` folder, per component.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from wildml.errors import DataError
from wildml.text import safe_io
from wildml.text.calibration import LanguageCalibrator
from wildml.text.frame import as_frame

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def component_classes() -> dict[str, type]:
    """Component class of each family name (imported lazily: transformer pulls in torch)."""
    from wildml.text.components import EncoderComponent, KBComponent, TfidfComponent

    classes: dict[str, type] = {
        "tfidf": TfidfComponent,
        "baseline": TfidfComponent,
        "encoder": EncoderComponent,
        "kb": KBComponent,
    }
    try:
        from wildml.text.transformer import TransformerComponent

        classes["transformer"] = TransformerComponent
    except ImportError:  # pragma: no cover - torch/transformers are core dependencies
        logger.warning("transformers is not importable: the transformer family is unavailable")
    return classes


class Stacker:
    """Logistic regression over component log-odds and language indicators.

    Each component's log-odds is centred on its training mean; the TF-IDF log-odds is also
    multiplied by the listing's vocabulary coverage, so for a language the n-grams never saw
    it falls back to "no opinion" instead of a confident "no".

    Parameters
    ----------
    names
        Component names, in column order.
    gate_by_coverage
        Apply the coverage gate to components that report coverage.
    languages
        Languages that get an indicator column (those with enough training listings).
    c
        Inverse regularisation.
    """

    def __init__(
        self,
        *,
        names: list[str],
        gate_by_coverage: bool = True,
        languages: list[str] | None = None,
        c: float = 1.0,
    ) -> None:
        self.names = names
        self.gate_by_coverage = gate_by_coverage
        self.languages = languages or []
        self.c = c

    def design(
        self, scores: dict[str, np.ndarray], coverage: dict[str, np.ndarray], langs: list[str]
    ) -> np.ndarray:
        """Stacker input, shape (n, n_components + n_languages)."""
        columns = []
        for name in self.names:
            z = scores[name] - self.means_[name]
            if self.gate_by_coverage and name in coverage:
                z = z * coverage[name]
            columns.append(z)
        for lang in self.languages:
            columns.append(np.array([float(value == lang) for value in langs]))
        return np.column_stack(columns)

    def fit(
        self,
        scores: dict[str, np.ndarray],
        coverage: dict[str, np.ndarray],
        langs: list[str],
        y: np.ndarray,
    ) -> Stacker:
        """Fit on out-of-fold component log-odds of the training listings."""
        self.means_ = {name: float(np.mean(scores[name])) for name in self.names}
        self.clf_ = LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000)
        self.clf_.fit(self.design(scores, coverage, langs), np.asarray(y))
        return self

    def decision_function(
        self, scores: dict[str, np.ndarray], coverage: dict[str, np.ndarray], langs: list[str]
    ) -> np.ndarray:
        """Combined log-odds, shape (n,)."""
        return self.clf_.decision_function(self.design(scores, coverage, langs))

    def weights(self) -> dict[str, float]:
        """Coefficient of each stacker column."""
        names = self.names + [f"lang={lang}" for lang in self.languages]
        return dict(zip(names, self.clf_.coef_.ravel().tolist(), strict=True))


class TextModel:
    """A fitted text classifier: components, optional stacker, calibrator and threshold.

    Parameters
    ----------
    family
        ``tfidf``, ``encoder``, ``kb``, ``transformer`` or ``stacked``.
    components
        Fitted components by name.
    stacker
        Fitted :class:`Stacker` for ``stacked``; None otherwise.
    calibrator
        Fitted :class:`LanguageCalibrator`; None returns the uncalibrated sigmoid.
    threshold
        Operating threshold on calibrated probabilities, chosen on validation.
    config
        The resolved training config, stored for provenance.
    """

    def __init__(
        self,
        *,
        family: str,
        components: dict[str, Any],
        stacker: Stacker | None = None,
        calibrator: LanguageCalibrator | None = None,
        threshold: float = 0.5,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.family = family
        self.components = components
        self.stacker = stacker
        self.calibrator = calibrator
        self.threshold = threshold
        self.config = config or {}

    def component_scores(self, frame: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Log-odds of every component and coverage of those that report it."""
        frame = as_frame(frame)
        scores = {name: comp.decision_function(frame) for name, comp in self.components.items()}
        coverage = {
            name: comp.coverage(frame)
            for name, comp in self.components.items()
            if hasattr(comp, "coverage")
        }
        return scores, coverage

    def decision_function(self, frame: Any) -> np.ndarray:
        """Uncalibrated log-odds of each listing, shape (n,)."""
        frame = as_frame(frame)
        scores, coverage = self.component_scores(frame)
        return self.combine(scores, coverage, frame["lang"].tolist())

    def combine(
        self, scores: dict[str, np.ndarray], coverage: dict[str, np.ndarray], langs: list[str]
    ) -> np.ndarray:
        """Log-odds of the model from its components' log-odds."""
        if self.stacker is not None:
            return self.stacker.decision_function(scores, coverage, langs)
        (only,) = scores.values()
        return only

    def calibrate(self, z: np.ndarray, langs: list[str]) -> np.ndarray:
        """Probabilities from log-odds ``z`` of listings in languages ``langs``."""
        if self.calibrator is None:
            return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))
        return self.calibrator.transform(z, langs)

    def predict_proba(self, frame: Any) -> np.ndarray:
        """Calibrated probability that each listing offers a protected-wildlife product.

        Parameters
        ----------
        frame
            pandas DataFrame with columns ``text``, ``seller_profile``, ``lang`` (missing
            columns are treated as empty).

        Returns
        -------
        np.ndarray
            Shape (n,), float64 in [0, 1].
        """
        frame = as_frame(frame)
        if len(frame) == 0:
            return np.zeros(0, dtype=np.float64)
        return self.calibrate(self.decision_function(frame), frame["lang"].tolist())

    def explain(self, frame: Any, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """Why each listing scored as it did.

        For TF-IDF parts, the present n-grams with the largest weight x tf-idf (pushing up:
        positive weight; down: negative); for the KB, matched evidence; for the stacked model
        also each component's contribution (``kind="component"``).

        Returns
        -------
        list of list of dict
            Per listing, items with ``feature``, ``weight`` and ``kind`` (and KB details).
        """
        frame = as_frame(frame)
        # Parts without readable terms are already shown by their stacker contribution.
        readable = ("tfidf", "kb") if self.stacker is not None else tuple(self.components)
        per_component = {
            name: comp.explain(frame, top_k)
            for name, comp in self.components.items()
            if name in readable
        }
        out = [[] for _ in range(len(frame))]
        if self.stacker is not None:
            scores, coverage = self.component_scores(frame)
            design = self.stacker.design(scores, coverage, frame["lang"].tolist())
            weights = self.stacker.clf_.coef_.ravel()[: len(self.stacker.names)]
            for row in range(len(frame)):
                for col, name in enumerate(self.stacker.names):
                    contribution = float(design[row, col] * weights[col])
                    out[row].append({"feature": name, "weight": contribution, "kind": "component"})
        for items in per_component.values():
            for row, row_items in enumerate(items):
                out[row].extend(row_items)
        return out

    def save(self, model_dir: str | os.PathLike) -> Path:
        """Write the model into ``model_dir`` (created if needed); returns the folder."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        for name, comp in self.components.items():
            comp.save(model_dir, f"component-{name}")
        config: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "family": self.family,
            "components": {name: _family_of(name) for name in self.components},
            "threshold": self.threshold,
            "calibrator": self.calibrator.to_dict() if self.calibrator else None,
            "stacker": None,
            "train_config": self.config,
        }
        if self.stacker is not None:
            safe_io.dump(self.stacker.clf_, model_dir / "stacker.skops")
            config["stacker"] = {
                "names": self.stacker.names,
                "gate_by_coverage": self.stacker.gate_by_coverage,
                "languages": self.stacker.languages,
                "c": self.stacker.c,
                "means": self.stacker.means_,
                "weights": self.stacker.weights(),
            }
        text = json.dumps(config, indent=2, sort_keys=True, default=str)
        (model_dir / "config.json").write_text(text, encoding="utf-8")
        return model_dir

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> TextModel:
        """Load a model saved by :meth:`save`.

        Raises
        ------
        DataError
            When the folder lacks ``config.json``, has an unknown format, or a component file
            holds types outside the skops allowlist.
        """
        model_dir = Path(model_dir)
        config_path = model_dir / "config.json"
        if not config_path.is_file():
            raise DataError(f"{config_path}: not found; is {model_dir} a text model folder?")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{config_path}: unknown format_version {config.get('format_version')}"
            )
        classes = component_classes()
        components = {
            name: classes[family].load(model_dir, f"component-{name}")
            for name, family in config["components"].items()
        }
        _attach_cache(components, model_dir, config.get("train_config", {}))
        stacker = None
        if config["stacker"]:
            spec = config["stacker"]
            stacker = Stacker(
                names=spec["names"],
                gate_by_coverage=spec["gate_by_coverage"],
                languages=spec["languages"],
                c=spec["c"],
            )
            stacker.means_ = {k: float(v) for k, v in spec["means"].items()}
            stacker.clf_ = safe_io.load(model_dir / "stacker.skops")
        calibrator = None
        if config["calibrator"]:
            calibrator = LanguageCalibrator.from_dict(config["calibrator"])
        return cls(
            family=config["family"],
            components=components,
            stacker=stacker,
            calibrator=calibrator,
            threshold=float(config["threshold"]),
            config=config.get("train_config", {}),
        )


def _family_of(name: str) -> str:
    return "tfidf" if name == "baseline" else name


def _attach_cache(components: dict[str, Any], model_dir: Path, train_config: dict) -> None:
    """Reuse the embedding cache written beside the model, when it is there."""
    encoder = components.get("encoder")
    if encoder is None:
        return
    from wildml.text.encoders import CachedEncoder, build_encoder

    candidates = [model_dir / "embed_cache"]
    configured = (train_config.get("encoder") or {}).get("cache_dir")
    if configured and Path(configured).is_absolute():
        candidates.append(Path(configured))
    cache_dir = next((path for path in candidates if path.is_dir()), None)
    encoder.attach_encoder(
        CachedEncoder(build_encoder(encoder.encoder or {}), cache_dir=cache_dir, progress=False)
    )
