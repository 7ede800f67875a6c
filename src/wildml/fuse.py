"""The ``fuse`` stage: one calibrated listing probability from text, photo and KB signals.

Steps, top to bottom:

1. build a feature frame per listing (:func:`build_features`): the text model's ``p_text``,
   the photo model's ``img_p_<class>`` and ``n_photos``, knowledge-base features computed
   from the listing text, and metadata (text length, language group). A missing photo or a
   missing text is its own state: an indicator column plus a neutral fill;
2. fit a stacker (logistic regression or small gradient boosting) on out-of-fold base
   predictions: cross-fitted over ``train`` when it has enough positives, else over
   ``validation`` (the rule and the choice are recorded);
3. calibrate (isotonic or sigmoid, whichever has the lower held-out log-loss);
4. set the operating threshold for ``target_recall`` and the review tiers on validation;
5. save the fitted :class:`Fuser` (skops + ``fuse.json``) and ``scores.parquet``.

The test split is never used for fitting, calibration or thresholds.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wildml import metrics
from wildml.config import load_params, resolve_path, section
from wildml.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
IMAGE_PREFIX = "img_p_"
KB_PREFIX = "kb__"
OTHER_LANG = "other"
STACKERS = ("logistic", "gbm")
CALIBRATIONS = ("auto", "isotonic", "sigmoid")
FUSE_JSON = "fuse.json"
# Probabilities enter the stacker as logits; clipping keeps 0/1 inputs finite.
_PROB_CLIP = 1e-4


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def load_listings(listings_dir: str | os.PathLike) -> pd.DataFrame:
    """Read the prepared listings DatasetDict into one frame with a ``split`` column.

    Raises
    ------
    DataError
        When the folder is missing, a split is missing, or a listing_id is in two splits.
    """
    from datasets import load_from_disk

    path = Path(listings_dir)
    if not path.exists():
        raise DataError(f"{path}: prepared listings not found (run `wildml prepare` first)")
    dataset = load_from_disk(str(path))
    frames = []
    for split in SPLITS:
        if split not in dataset:
            raise DataError(f"{path}: split '{split}' missing")
        frame = dataset[split].to_pandas()
        frame["split"] = split
        frames.append(frame)
    listings = pd.concat(frames, ignore_index=True)
    check_disjoint_splits(listings, where=str(path))
    return listings


def check_disjoint_splits(frame: pd.DataFrame, *, where: str = "listings") -> None:
    """Raise DataError when a listing_id appears more than once (for example in two splits)."""
    dup = frame["listing_id"].astype(str).duplicated(keep=False)
    if dup.any():
        rows = frame.loc[dup, ["listing_id", "split"]].head(5).to_dict("records")
        raise DataError(
            f"{where}: {int(dup.sum())} rows share a listing_id across or within splits, "
            f"e.g. {rows}; a listing must be in exactly one split"
        )


def align_scores(
    listings: pd.DataFrame, scores: pd.DataFrame, *, where: str, columns: list[str]
) -> pd.DataFrame:
    """Left-join score ``columns`` onto listings by listing_id, checking splits agree."""
    missing = [c for c in ["listing_id", *columns] if c not in scores.columns]
    if missing:
        raise DataError(f"{where}: missing columns {missing}")
    check_disjoint_splits(scores, where=where)
    keep = ["listing_id", *columns] + (["split"] if "split" in scores.columns else [])
    right = scores[keep].rename(columns={"split": "_score_split"})
    right["listing_id"] = right["listing_id"].astype(str)
    merged = listings[["listing_id", "split"]].merge(right, on="listing_id", how="left")
    if "_score_split" in merged.columns:
        known = merged["_score_split"].notna()
        clash = known & (merged["_score_split"] != merged["split"])
        if clash.any():
            example = merged.loc[clash, ["listing_id", "split", "_score_split"]].head(3)
            raise DataError(
                f"{where}: {int(clash.sum())} listings have a different split than in the "
                f"prepared data, e.g. {example.to_dict('records')}; rerun the stage"
            )
    absent = int(merged[columns[0]].isna().sum()) if columns else 0
    if absent:
        logger.warning("%s: no score for %d of %d listings", where, absent, len(merged))
    return merged.drop(columns=["_score_split"], errors="ignore")


def image_classes(image_scores: pd.DataFrame) -> list[str]:
    """Photo classes present as ``img_p_<class>`` columns, in column order."""
    return [c[len(IMAGE_PREFIX) :] for c in image_scores.columns if c.startswith(IMAGE_PREFIX)]


def make_kb_features(kb_path: str | os.PathLike | None = None) -> Any:
    """A fitted ``wildml.kb.features.KBFeatures`` (``kb_path`` None: the KB in the package)."""
    try:
        from wildml.kb.features import KBFeatures
    except ImportError as err:
        raise ConfigError(
            "fuse.inputs.kb is on but wildml.kb.features.KBFeatures cannot be imported "
            f"({err}); switch the input off or install the knowledge base"
        ) from err
    # KBFeatures reads the knowledge base, not the texts, so fitting on none is enough and
    # keeps the features of one listing independent of the batch it is scored in.
    return KBFeatures(kb_path=None if kb_path is None else str(kb_path)).fit([])


# --------------------------------------------------------------------------------------------
# Feature frame
# --------------------------------------------------------------------------------------------


def _has_text(texts: pd.Series) -> np.ndarray:
    return texts.fillna("").astype(str).str.strip().str.len().to_numpy() > 0


def build_features(
    listings: pd.DataFrame,
    p_text: np.ndarray | None = None,
    image_scores: pd.DataFrame | None = None,
    *,
    kb: Any | None = None,
    metadata: bool = True,
) -> pd.DataFrame:
    """Per-listing input features of the fuser, in the order of ``listings``.

    Parameters
    ----------
    listings
        Frame with ``listing_id``, ``text`` and (for metadata) ``lang``; one row per listing.
    p_text
        Text-model probabilities, shape (n,), aligned with ``listings``; NaN where the model
        gave none. ``None`` leaves the text signal out.
    image_scores
        The photo model's listing scores: ``listing_id``, ``n_photos``, ``img_p_<class>``
        (NaN when the listing has no usable photo). ``None`` leaves the photo signal out.
    kb
        A fitted ``KBFeatures`` transformer applied to ``text``; ``None`` leaves KB out.
    metadata
        Add ``text_len`` (log1p of characters) and ``lang``.

    Returns
    -------
    pandas.DataFrame
        ``listing_id`` and the feature columns: ``has_text``, ``p_text``, ``has_photo``,
        ``n_photos``, ``img_p_<class>``, ``kb__<name>``, ``text_len``, ``lang``. Listings
        without text get ``has_text = 0`` and ``p_text`` NaN, whatever the text model said.
    """
    texts = listings["text"].fillna("").astype(str) if "text" in listings else None
    if texts is None:
        texts = pd.Series([""] * len(listings), index=listings.index)
    has_text = _has_text(texts)
    out = pd.DataFrame({"listing_id": listings["listing_id"].astype(str).to_numpy()})
    if p_text is not None:
        p = np.asarray(p_text, dtype=np.float64).ravel()
        if p.size != len(listings):
            raise DataError(f"p_text has {p.size} values for {len(listings)} listings")
        out["has_text"] = has_text.astype(np.float64)
        out["p_text"] = np.where(has_text, p, np.nan)
    if image_scores is not None:
        out = pd.concat([out, _image_block(out["listing_id"], image_scores)], axis=1)
    if kb is not None:
        out = pd.concat([out, _kb_block(kb, texts)], axis=1)
    if metadata:
        out["has_text"] = has_text.astype(np.float64)
        out["text_len"] = np.log1p(texts.str.len().to_numpy(dtype=np.float64))
        langs = listings["lang"] if "lang" in listings else pd.Series(["und"] * len(listings))
        out["lang"] = langs.fillna("und").astype(str).to_numpy()
    return out


def _image_block(listing_ids: pd.Series, image_scores: pd.DataFrame) -> pd.DataFrame:
    classes = image_classes(image_scores)
    columns = [f"{IMAGE_PREFIX}{c}" for c in classes]
    right = image_scores[["listing_id", *columns]].copy()
    right["listing_id"] = right["listing_id"].astype(str)
    right = right.drop_duplicates("listing_id")
    n_photos = image_scores.get("n_photos", pd.Series(np.nan, index=image_scores.index))
    right["n_photos"] = pd.to_numeric(n_photos, errors="coerce").to_numpy()
    block = pd.DataFrame({"listing_id": listing_ids}).merge(right, on="listing_id", how="left")
    probs = block[columns].to_numpy(dtype=np.float64)
    has_photo = np.isfinite(probs).any(axis=1) if columns else np.zeros(len(block), bool)
    block["has_photo"] = has_photo.astype(np.float64)
    block["n_photos"] = block["n_photos"].fillna(0.0)
    return block[["has_photo", "n_photos", *columns]]


def _kb_block(kb: Any, texts: pd.Series) -> pd.DataFrame:
    values = np.asarray(kb.transform(texts.tolist()), dtype=np.float64)
    names = [f"{KB_PREFIX}{name}" for name in kb.get_feature_names_out()]
    return pd.DataFrame(values, columns=names)


# --------------------------------------------------------------------------------------------
# The fuser: encoding, stacker, calibrator, thresholds
# --------------------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _PROB_CLIP, 1 - _PROB_CLIP)
    return np.log(p / (1 - p))


class Fuser:
    """Stacked, calibrated listing probability with an operating threshold and tiers.

    Parameters
    ----------
    stacker
        ``"logistic"`` (standardised logistic regression) or ``"gbm"`` (small
        histogram gradient boosting).
    C
        Inverse L2 strength of the logistic stacker.
    calibration
        ``"auto"`` (lower held-out log-loss wins), ``"isotonic"`` or ``"sigmoid"``.
    min_isotonic
        ``"auto"`` considers isotonic calibration only when the fit set has at least this many
        listings: on fewer, its steps follow the noise of a few listings and whole groups of
        unlike listings share one probability.
    n_folds
        Folds of the cross-fitting that gives out-of-fold stacker scores.
    min_lang_count
        Languages (after ``lang_groups``) with fewer fit listings share the ``other`` level.
    lang_groups
        Optional mapping group -> list of language codes, for example ``{"zh": ["zh",
        "yue"]}``.
    random_state
        Seed of the folds and of the gradient boosting.
    """

    def __init__(
        self,
        *,
        stacker: str = "logistic",
        C: float = 1.0,
        calibration: str = "auto",
        min_isotonic: int = 1000,
        n_folds: int = 5,
        min_lang_count: int = 5,
        lang_groups: dict[str, list[str]] | None = None,
        random_state: int = 0,
    ) -> None:
        self.stacker = stacker
        self.C = C
        self.calibration = calibration
        self.min_isotonic = min_isotonic
        self.n_folds = n_folds
        self.min_lang_count = min_lang_count
        self.lang_groups = lang_groups
        self.random_state = random_state

    # ---- encoding -------------------------------------------------------------------------

    def _lang_group(self, langs: pd.Series) -> np.ndarray:
        lookup = {
            code: group for group, codes in (self.lang_groups or {}).items() for code in codes
        }
        return langs.fillna("und").astype(str).map(lambda code: lookup.get(code, code)).to_numpy()

    def _learn_encoding(self, features: pd.DataFrame) -> None:
        numeric = [c for c in features.columns if c not in ("listing_id", "lang")]
        self.feature_columns_ = numeric
        # Inputs are clipped to the range seen in fitting: a linear stacker must not
        # extrapolate (a two-word message is far shorter than any fit listing, say).
        self.feature_range_ = {}
        for column in numeric:
            values = self._column_values(features, column)
            finite = values[np.isfinite(values)]
            if finite.size:
                self.feature_range_[column] = [float(finite.min()), float(finite.max())]
        self.lang_levels_: list[str] = []
        if "lang" in features.columns:
            counts = pd.Series(self._lang_group(features["lang"])).value_counts()
            self.lang_levels_ = sorted(counts[counts >= self.min_lang_count].index.tolist())
            self.uses_lang_ = True
        else:
            self.uses_lang_ = False

    def design_matrix(self, features: pd.DataFrame) -> np.ndarray:
        """Encode a feature frame for the stacker: logits, neutral fills, language one-hot.

        Returns an array of shape (n, len(feature_names_out_)).
        """
        missing = [c for c in self.feature_columns_ if c not in features.columns]
        if self.uses_lang_ and "lang" not in features.columns:
            missing.append("lang")
        if missing:
            raise DataError(f"fuser features: missing columns {missing}")
        blocks = []
        ranges = getattr(self, "feature_range_", {})
        for column in self.feature_columns_:
            values = self._column_values(features, column)
            if column in ranges:
                values = np.clip(values, *ranges[column])
            blocks.append(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0))
        if self.uses_lang_:
            groups = self._lang_group(features["lang"])
            known = np.isin(groups, self.lang_levels_)
            for level in self.lang_levels_:
                blocks.append((groups == level).astype(np.float64))
            # Unseen or rare languages land here, so a new language never breaks scoring.
            blocks.append((~known).astype(np.float64))
        return np.column_stack(blocks) if blocks else np.zeros((len(features), 0))

    @staticmethod
    def _column_values(features: pd.DataFrame, column: str) -> np.ndarray:
        values = pd.to_numeric(features[column], errors="coerce").to_numpy(np.float64)
        if column == "p_text" or column.startswith(IMAGE_PREFIX):
            # NaN (no text / no photo) -> logit 0, i.e. p = 0.5: neutral, while the
            # has_text / has_photo indicator carries the state itself.
            values = np.where(np.isfinite(values), _logit(values), 0.0)
        return values

    @property
    def feature_names_out_(self) -> list[str]:
        """Names of the design-matrix columns."""
        names = list(self.feature_columns_)
        if self.uses_lang_:
            names += [f"lang={level}" for level in self.lang_levels_] + [f"lang={OTHER_LANG}"]
        return names

    # ---- fitting --------------------------------------------------------------------------

    def _new_stacker(self) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        if self.stacker == "logistic":
            return Pipeline(
                [
                    ("scale", StandardScaler()),
                    ("logreg", LogisticRegression(C=self.C, max_iter=2000)),
                ]
            )
        return HistGradientBoostingClassifier(
            max_depth=3, max_iter=100, learning_rate=0.1, random_state=self.random_state
        )

    def _folds(self, y: np.ndarray, groups: np.ndarray | None) -> list[tuple[np.ndarray, ...]]:
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        n_pos, n_neg = int(y.sum()), int((1 - y).sum())
        n_splits = min(self.n_folds, n_pos, n_neg)
        if n_splits < 2:
            raise DataError(
                f"fuse: need at least 2 positives and 2 negatives to cross-fit, got {n_pos} "
                f"positives and {n_neg} negatives"
            )
        if groups is not None:
            splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=self.random_state)
            return list(splitter.split(np.zeros(y.size), y, groups))
        splitter = StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state)
        return list(splitter.split(np.zeros(y.size), y))

    def _stacker_oof(self, X: np.ndarray, y: np.ndarray, folds: list) -> np.ndarray:
        oof = np.full(y.size, np.nan)
        for train_idx, test_idx in folds:
            if np.unique(y[train_idx]).size < 2:
                raise DataError("fuse: a cross-fitting fold has one class; lower fuse.n_folds")
            model = self._new_stacker().fit(X[train_idx], y[train_idx])
            oof[test_idx] = model.predict_proba(X[test_idx])[:, 1]
        return oof

    def fit(
        self,
        features: pd.DataFrame,
        labels: np.ndarray,
        *,
        groups: np.ndarray | None = None,
        holdout: tuple[pd.DataFrame, np.ndarray] | None = None,
    ) -> Fuser:
        """Fit stacker and calibrator on ``features``; choose the calibration method.

        Parameters
        ----------
        features
            Feature frame from :func:`build_features` of the fit listings (n rows).
        labels
            0/1 labels, shape (n,).
        groups
            Duplicate-group ids, shape (n,): near-duplicates stay in one fold.
        holdout
            ``(features, labels)`` of other listings on which to compare calibration
            methods. Without it the comparison is cross-validated within ``features``.

        Returns
        -------
        Fuser
            self, with ``stacker_``, ``calibrator_``, ``calibration_``, ``calibration_loss_``
            and ``oof_proba_`` (cross-fitted calibrated probabilities of the fit listings).
        """
        self._check_params()
        y = np.asarray(labels, dtype=np.int64)
        self._learn_encoding(features)
        X = self.design_matrix(features)
        folds = self._folds(y, groups)
        oof = self._stacker_oof(X, y, folds)
        self.stacker_ = self._new_stacker().fit(X, y)
        if holdout is not None:
            held_scores = self.stacker_.predict_proba(self.design_matrix(holdout[0]))[:, 1]
            losses, oof_proba = _holdout_losses(oof, y, held_scores, np.asarray(holdout[1]))
        else:
            losses, oof_proba = _crossval_losses(oof, y, folds)
        self.calibration_loss_ = losses
        self.calibration_ = self._choose(losses, y.size)
        self.calibrator_ = _fit_calibrator(self.calibration_, oof, y)
        self.oof_proba_ = oof_proba[self.calibration_]
        self.n_fit_, self.n_fit_positives_ = int(y.size), int(y.sum())
        logger.info("fuse: calibration %s (log-loss %s)", self.calibration_, losses)
        return self

    def _check_params(self) -> None:
        if self.stacker not in STACKERS:
            raise ConfigError(f"fuse.stacker must be one of {STACKERS}, got {self.stacker!r}")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(
                f"fuse.calibration must be one of {CALIBRATIONS}, got {self.calibration!r}"
            )

    def _choose(self, losses: dict[str, float], n_fit: int) -> str:
        if self.calibration != "auto":
            return self.calibration
        if n_fit < self.min_isotonic:
            logger.info(
                "fuse: %d fit listings < fuse.min_isotonic %d: sigmoid calibration",
                n_fit,
                self.min_isotonic,
            )
            return "sigmoid"
        return min(losses, key=lambda name: (losses[name], name != "sigmoid"))

    # ---- prediction -----------------------------------------------------------------------

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability that each listing offers a protected product, shape (n,)."""
        return self.predict_with_scores(features)[0]

    def predict_with_scores(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and the stacker's uncalibrated ones, each shape (n,).

        Isotonic calibration maps ranges of stacker scores onto one probability; the
        uncalibrated score orders the listings that share it.
        """
        scores = self.stacker_.predict_proba(self.design_matrix(features))[:, 1]
        return _calibrate(self.calibrator_, scores), scores

    def set_thresholds(
        self,
        labels: np.ndarray,
        probs: np.ndarray,
        *,
        target_recall: float,
        urgent_precision: float,
    ) -> Fuser:
        """Set the operating threshold (``target_recall``) and the urgent tier on held-out data.

        ``threshold_`` is the highest threshold reaching ``target_recall``; the urgent
        threshold is the lowest one whose precision is at least ``urgent_precision`` (never
        below ``threshold_``), or ``None`` when no threshold reaches it.
        """
        y = np.asarray(labels, dtype=np.int64)
        p = np.asarray(probs, dtype=np.float64)
        try:
            self.threshold_ = metrics.threshold_for_recall(y, p, target_recall)
        except ValueError as err:
            raise DataError(
                f"fuse: cannot set the operating threshold on validation: {err}"
            ) from err
        urgent = metrics.threshold_for_precision(y, p, urgent_precision)
        if urgent is None:
            logger.warning(
                "fuse: no threshold reaches precision %.2f on validation; no urgent tier",
                urgent_precision,
            )
        self.urgent_threshold_ = None if urgent is None else max(urgent, self.threshold_)
        return self

    def tier(self, probs: np.ndarray) -> np.ndarray:
        """Review tier per listing: ``urgent``, ``review`` (>= threshold) or ``low``."""
        p = np.asarray(probs, dtype=np.float64)
        out = np.where(p >= self.threshold_, "review", "low").astype(object)
        if self.urgent_threshold_ is not None:
            out[p >= self.urgent_threshold_] = "urgent"
        return out

    # ---- persistence ----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything but the fitted sklearn objects, as JSON-ready values."""
        return {
            "params": {
                "stacker": self.stacker,
                "C": self.C,
                "calibration": self.calibration,
                "min_isotonic": self.min_isotonic,
                "n_folds": self.n_folds,
                "min_lang_count": self.min_lang_count,
                "lang_groups": self.lang_groups,
                "random_state": self.random_state,
            },
            "feature_columns": self.feature_columns_,
            "feature_range": self.feature_range_,
            "uses_lang": self.uses_lang_,
            "lang_levels": self.lang_levels_,
            "feature_names_out": self.feature_names_out_,
            "calibration_method": self.calibration_,
            "calibration_log_loss": self.calibration_loss_,
            "threshold": self.threshold_,
            "urgent_threshold": self.urgent_threshold_,
            "n_fit": self.n_fit_,
            "n_fit_positives": self.n_fit_positives_,
        }

    def save(self, out_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write ``stacker.skops``, ``calibrator.skops`` and ``fuse.json`` into ``out_dir``."""
        import skops.io as sio

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        sio.dump(self.stacker_, out / "stacker.skops")
        sio.dump(self.calibrator_, out / "calibrator.skops")
        record = {"fuser": self.state(), **(extra or {})}
        path = out / FUSE_JSON
        path.write_text(json.dumps(record, indent=2, default=_json_default), encoding="utf-8")
        return path

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> Fuser:
        """Load a fuser written by :meth:`save`.

        Raises
        ------
        DataError
            When ``fuse.json`` or a skops file is missing, or a skops file holds a type
            outside the scikit-learn/numpy set the fuser writes.
        """
        folder = Path(model_dir)
        path = folder / FUSE_JSON
        if not path.is_file():
            raise DataError(f"{path}: not found (run `wildml fuse` first)")
        record = json.loads(path.read_text(encoding="utf-8"))
        state = record["fuser"]
        fuser = cls(**state["params"])
        fuser.feature_columns_ = list(state["feature_columns"])
        fuser.feature_range_ = dict(state.get("feature_range") or {})
        fuser.uses_lang_ = bool(state["uses_lang"])
        fuser.lang_levels_ = list(state["lang_levels"])
        fuser.calibration_ = state["calibration_method"]
        fuser.calibration_loss_ = state["calibration_log_loss"]
        fuser.threshold_ = float(state["threshold"])
        urgent = state["urgent_threshold"]
        fuser.urgent_threshold_ = None if urgent is None else float(urgent)
        fuser.n_fit_, fuser.n_fit_positives_ = state["n_fit"], state["n_fit_positives"]
        fuser.stacker_ = _load_skops(folder / "stacker.skops")
        fuser.calibrator_ = _load_skops(folder / "calibrator.skops")
        fuser.record_ = record
        return fuser

    def build_features(
        self,
        listings: pd.DataFrame,
        p_text: np.ndarray | None = None,
        image_scores: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Feature frame of new listings built exactly as the ``fuse`` stage built it.

        Uses the inputs and knowledge base recorded in ``fuse.json`` (a loaded fuser only):
        ``p_text`` and ``image_scores`` are required when those inputs were used.

        Raises
        ------
        DataError
            When an input the fuser was trained with is not given.
        """
        record = getattr(self, "record_", {})
        inputs = record.get("inputs", {"text": True, "image": True, "kb": True, "metadata": True})
        for name, value in (("text", p_text), ("image", image_scores)):
            if inputs.get(name) and value is None:
                raise DataError(f"fuser was trained with the {name} input: pass its scores")
        kb = None
        if inputs.get("kb"):
            kb = make_kb_features((record.get("kb") or {}).get("path"))
            expected = (record.get("kb") or {}).get("fingerprint")
            if expected is not None and getattr(kb, "kb_fingerprint_", expected) != expected:
                logger.warning("fuse: knowledge base differs from the one the fuser saw")
        return build_features(
            listings,
            p_text if inputs.get("text") else None,
            image_scores if inputs.get("image") else None,
            kb=kb,
            metadata=bool(inputs.get("metadata", True)),
        )


_SAFE_TYPE_PREFIXES = ("sklearn.", "numpy.", "builtins.")


def _load_skops(path: Path) -> Any:
    import skops.io as sio

    if not path.is_file():
        raise DataError(f"{path}: not found")
    untrusted = sio.get_untrusted_types(file=path)
    unsafe = [name for name in untrusted if not name.startswith(_SAFE_TYPE_PREFIXES)]
    if unsafe:
        raise DataError(f"{path}: refuses to load unexpected types {unsafe}")
    return sio.load(path, trusted=untrusted)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def _fit_calibrator(method: str, scores: np.ndarray, y: np.ndarray) -> Any:
    """Fit ``isotonic`` (on stacker scores) or ``sigmoid`` (Platt, on their logits)."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if method == "isotonic":
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        return model.fit(scores, y)
    return LogisticRegression(C=1e4, max_iter=1000).fit(_logit(scores).reshape(-1, 1), y)


def _calibrate(calibrator: Any, scores: np.ndarray) -> np.ndarray:
    """Apply a fitted calibrator (IsotonicRegression or Platt LogisticRegression)."""
    if hasattr(calibrator, "predict_proba"):
        return calibrator.predict_proba(_logit(scores).reshape(-1, 1))[:, 1]
    return np.clip(calibrator.predict(scores), 0.0, 1.0)


def _holdout_losses(
    oof: np.ndarray, y: np.ndarray, held_scores: np.ndarray, held_y: np.ndarray
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Calibrate on out-of-fold fit scores; compare methods by log-loss on the holdout."""
    losses, oof_proba = {}, {}
    for method in ("isotonic", "sigmoid"):
        calibrator = _fit_calibrator(method, oof, y)
        losses[method] = metrics.log_loss(held_y, _calibrate(calibrator, held_scores))
        oof_proba[method] = _calibrate(calibrator, oof)
    return losses, oof_proba


def _crossval_losses(
    oof: np.ndarray, y: np.ndarray, folds: list
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Cross-fitted calibration within the fit set: each fold calibrated by the others."""
    losses, oof_proba = {}, {}
    for method in ("isotonic", "sigmoid"):
        proba = np.full(y.size, np.nan)
        for train_idx, test_idx in folds:
            calibrator = _fit_calibrator(method, oof[train_idx], y[train_idx])
            proba[test_idx] = _calibrate(calibrator, oof[test_idx])
        losses[method] = metrics.log_loss(y, proba)
        oof_proba[method] = proba
    return losses, oof_proba


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def choose_fit_split(listings: pd.DataFrame, cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Pick the split the stacker is fitted on, by the rule in ``fuse.fit_on``.

    ``auto``: ``train`` (cross-fitted; the base models' train rows are out-of-fold) when it
    holds at least ``min_train_positives`` positives, else ``validation`` (cross-fitted
    within it). Returns the split and a record of the decision.
    """
    rule = cfg.get("fit_on", {}) or {}
    mode = str(rule.get("mode", "auto"))
    min_pos = int(rule.get("min_train_positives", 30))
    positives = {
        split: int(((listings["split"] == split) & (listings["label"] == 1)).sum())
        for split in ("train", "validation")
    }
    if mode not in ("auto", "train", "validation"):
        raise ConfigError(f"fuse.fit_on.mode must be auto, train or validation, got {mode!r}")
    chosen = mode
    if mode == "auto":
        chosen = "train" if positives["train"] >= min_pos else "validation"
    record = {
        "mode": mode,
        "rule": f"train if train positives >= {min_pos} else validation",
        "positives": positives,
        "chosen": chosen,
    }
    logger.info("fuse: stacker fitted on %s (%s)", chosen, record["rule"])
    return chosen, record


def _read_parquet(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(
            f"{path}: {what} not found (run the stage that writes it, or switch it off)"
        )
    return pd.read_parquet(path)


def stage_inputs(cfg: dict[str, Any]) -> dict[str, bool]:
    """Which inputs are switched on (``fuse.inputs``; all on by default)."""
    inputs = {"text": True, "image": True, "kb": True, "metadata": True}
    unknown = set(cfg.get("inputs") or {}) - set(inputs)
    if unknown:
        raise ConfigError(f"fuse.inputs: unknown inputs {sorted(unknown)}; use {sorted(inputs)}")
    inputs.update({k: bool(v) for k, v in (cfg.get("inputs") or {}).items()})
    return inputs


def stage_features(
    listings: pd.DataFrame, cfg: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Feature frame for every prepared listing, and a record of the inputs used."""
    inputs = stage_inputs(cfg)
    record: dict[str, Any] = {"inputs": inputs}
    p_text = None
    if inputs["text"]:
        path = resolve_path(cfg, cfg.get("text_scores", "models/text/scores.parquet"))
        scores = _read_parquet(path, "text scores")
        aligned = align_scores(listings, scores, where=str(path), columns=["p_text"])
        p_text = aligned["p_text"].to_numpy(np.float64)
    image_scores = None
    if inputs["image"]:
        path = resolve_path(cfg, cfg.get("image_scores", "models/image/listing_scores.parquet"))
        image_scores = _read_parquet(path, "photo listing scores")
        align_scores(listings, image_scores, where=str(path), columns=["n_photos"])
        record["image_classes"] = image_classes(image_scores)
    kb = None
    if inputs["kb"]:
        kb_path = cfg.get("kb_path")
        kb = make_kb_features(None if kb_path is None else resolve_path(cfg, kb_path))
        # The scorer must compute KB features with the same base: record which one.
        record["kb"] = {
            "path": None if kb_path is None else str(resolve_path(cfg, kb_path)),
            "version": getattr(kb, "kb_version_", None),
            "fingerprint": getattr(kb, "kb_fingerprint_", None),
        }
    features = build_features(listings, p_text, image_scores, kb=kb, metadata=inputs["metadata"])
    if features.shape[1] <= 1:
        raise ConfigError("fuse.inputs: every input is switched off")
    return features, record


def _fuser_from_cfg(cfg: dict[str, Any]) -> Fuser:
    return Fuser(
        stacker=str(cfg.get("stacker", "logistic")),
        C=float(cfg.get("C", 1.0)),
        calibration=str(cfg.get("calibration", "auto")),
        min_isotonic=int(cfg.get("min_isotonic", 1000)),
        n_folds=int(cfg.get("n_folds", 5)),
        min_lang_count=int(cfg.get("min_lang_count", 5)),
        lang_groups=cfg.get("lang_groups"),
        random_state=int(cfg.get("seed", 0)),
    )


def fit_stage(
    listings: pd.DataFrame, features: pd.DataFrame, cfg: dict[str, Any]
) -> tuple[Fuser, dict[str, Any]]:
    """Fit the fuser on the chosen split and set thresholds on validation (never test)."""
    labelled = listings["label"].isin([0, 1]).to_numpy()
    fit_split, fit_record = choose_fit_split(listings, cfg)
    fit_rows = labelled & (listings["split"] == fit_split).to_numpy()
    val_rows = labelled & (listings["split"] == "validation").to_numpy()
    y = listings["label"].to_numpy(np.int64)
    if int(y[val_rows].sum()) == 0:
        raise DataError(
            "fuse: the validation split has no labelled positives; thresholds and calibration "
            "need some (raise prepare.split.validation or add labelled listings)"
        )
    groups = listings["group_id"].astype(str).to_numpy() if "group_id" in listings else None
    fuser = _fuser_from_cfg(cfg)
    holdout = (features[val_rows], y[val_rows]) if fit_split == "train" else None
    fuser.fit(
        features[fit_rows].reset_index(drop=True),
        y[fit_rows],
        groups=None if groups is None else groups[fit_rows],
        holdout=holdout,
    )
    # Thresholds on validation probabilities no fitted step has seen: the fitted fuser's
    # when it learned on train, the cross-fitted ones when it learned on validation.
    val_probs = (
        fuser.oof_proba_ if fit_split == "validation" else fuser.predict(features[val_rows])
    )
    target_recall = float(cfg.get("target_recall", 0.9))
    urgent_precision = float((cfg.get("tiers") or {}).get("urgent_precision", 0.9))
    fuser.set_thresholds(
        y[val_rows], val_probs, target_recall=target_recall, urgent_precision=urgent_precision
    )
    source = "cross-fitted" if fit_split == "validation" else "held out"
    record = {
        "fit_on": fit_record,
        "threshold_source": f"validation ({source})",
        "target_recall": target_recall,
        "validation_at_threshold": metrics.precision_recall_f1(
            y[val_rows], val_probs, fuser.threshold_
        ),
        "tiers": _tier_record(fuser, urgent_precision),
    }
    return fuser, record


def _tier_record(fuser: Fuser, urgent_precision: float) -> dict[str, Any]:
    return {
        "urgent": {
            "min_p": fuser.urgent_threshold_,
            "rule": f"lowest p whose validation precision >= {urgent_precision}",
        },
        "review": {"min_p": fuser.threshold_, "rule": "operating threshold (target recall)"},
        "low": {"min_p": 0.0, "rule": "below the operating threshold"},
    }


def scores_frame(
    listings: pd.DataFrame, features: pd.DataFrame, fuser: Fuser, fit_split: str
) -> pd.DataFrame:
    """``scores.parquet`` rows: listing_id, split, p_final, tier, used_for_fit, features."""
    p_final = fuser.predict(features)
    used = (listings["split"] == fit_split) & listings["label"].isin([0, 1])
    head = pd.DataFrame(
        {
            "listing_id": features["listing_id"],
            "split": listings["split"].to_numpy(),
            "p_final": p_final,
            "tier": fuser.tier(p_final),
            "used_for_fit": used.to_numpy(),
        }
    )
    return pd.concat([head, features.drop(columns=["listing_id"])], axis=1)


def run(params_path: str | os.PathLike) -> dict[str, Any]:
    """Run the fuse stage from a params file; returns the record written to ``fuse.json``."""
    params = load_params(params_path)
    cfg = section(params, "fuse")
    listings = load_listings(resolve_path(cfg, cfg.get("listings_dir", "data/prepared/listings")))
    features, input_record = stage_features(listings, cfg)
    fuser, record = fit_stage(listings, features, cfg)
    record.update(input_record)
    frame = scores_frame(listings, features, fuser, record["fit_on"]["chosen"])
    record["tier_counts"] = {
        split: {
            str(k): int(v)
            for k, v in frame.loc[frame["split"] == split, "tier"].value_counts().items()
        }
        for split in SPLITS
    }
    out_dir = resolve_path(cfg, cfg.get("out_dir", "models/fuse"))
    fuser.save(out_dir, extra=record)
    frame.to_parquet(out_dir / "scores.parquet", index=False)
    _track(cfg, fuser, record, out_dir)
    logger.info(
        "fuse: threshold %.4f, urgent %s, fitted on %s -> %s",
        fuser.threshold_,
        fuser.urgent_threshold_,
        record["fit_on"]["chosen"],
        out_dir,
    )
    return record


def _track(cfg: dict[str, Any], fuser: Fuser, record: dict[str, Any], out_dir: Path) -> None:
    if not cfg.get("track", True):
        return
    import mlflow

    from wildml.tracking import log_params_flat, start_run

    with start_run("fuse", cfg):
        log_params_flat({k: v for k, v in cfg.items() if k not in ("experiment", "pipeline")})
        mlflow.log_metric("threshold", fuser.threshold_)
        for method, loss in fuser.calibration_loss_.items():
            mlflow.log_metric(f"calibration_log_loss.{method}", loss)
        for name, value in record["validation_at_threshold"].items():
            if value is not None:
                mlflow.log_metric(f"validation.{name}", value)
        mlflow.log_artifact(str(out_dir / FUSE_JSON))
