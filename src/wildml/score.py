"""Scoring new listings with an exported package: the :class:`Scorer` and ``load_scorer``.

A scorer is built only from a verified scoring package (``wildml export``): the text model,
photo model, knowledge-base copy and fuser inside it. New listings go through the same text
preparation as ``prepare`` (normalisation, language detection), the same feature frame as
``fuse``, and come out with a probability, a tier, a product guess and the reasons.

The batch command (``wildml score``) lives in :mod:`wildml.score_stream`; this module holds
what scores one frame of listings.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wildml.errors import PackageIntegrityError
from wildml.photos import PhotoError, resolve_inside
from wildml.score_manifest import package_digest, verify_package

logger = logging.getLogger(__name__)

ARTIFACTS = "artifacts"
SCORER_JSON = "scorer.json"
STATUS_SCORED = "scored"
STATUS_NO_PHOTO = "scored_without_photo"
STATUS_DUPLICATE = "duplicate"
STATUS_REJECTED = "rejected"
TIER_RANK = {"urgent": 0, "review": 1, "low": 2}
OUTPUT_COLUMNS = (
    "listing_id",
    "status",
    "reason",
    "duplicate_of",
    "p_final",
    "p_uncalibrated",
    "tier",
    "product_guess",
    "why",
    "reasons",
    "p_text",
    "photo_class",
    "photo_p",
    "n_photos",
    "n_photos_usable",
    "lang",
    "text",
    "photos",
)
PASSTHROUGH = ("seller_id", "platform", "url", "posted_at", "price", "currency", "country")


def artifact_dir(package_dir: Path) -> Path:
    """Folder holding the models inside a package (MLflow's ``artifacts/``)."""
    return Path(package_dir) / ARTIFACTS


class Scorer:
    """Scores listings with the models of one scoring package.

    Parameters
    ----------
    artifacts_dir
        The package's ``artifacts/`` folder (``text/``, ``image/``, ``kb/``, ``fuse/``,
        ``scorer.json``).
    digest
        The package digest from its manifest (recorded in outputs and checkpoints).
    """

    def __init__(self, artifacts_dir: str | os.PathLike, *, digest: str = "") -> None:
        from wildml.fuse import Fuser, make_kb_features
        from wildml.text import TextModel

        self.artifacts_dir = Path(artifacts_dir)
        self.digest = digest
        self.settings = json.loads((self.artifacts_dir / SCORER_JSON).read_text(encoding="utf-8"))
        self.fuser = Fuser.load(self.artifacts_dir / "fuse")
        self.inputs = dict(self.fuser.record_.get("inputs", {}))
        self.text_model = TextModel.load(self.artifacts_dir / "text")
        self.kb_features = make_kb_features(self.artifacts_dir / "kb")
        self._check_kb()
        self.matcher = self.kb_features.matcher_
        self.image_classes = list(self.fuser.record_.get("image_classes", []))
        self._image_model: Any = None

    def _check_kb(self) -> None:
        expected = (self.fuser.record_.get("kb") or {}).get("fingerprint")
        found = getattr(self.kb_features, "kb_fingerprint_", None)
        if expected and found != expected:
            raise PackageIntegrityError(
                f"{self.artifacts_dir / 'kb'}: knowledge base fingerprint {found} differs from "
                f"the one the fuser was trained with ({expected}); re-export the package"
            )

    @property
    def image_model(self) -> Any:
        """The photo model, loaded on first use (torch is slow to import)."""
        if self._image_model is None:
            from wildml.image import ImageModel

            self._image_model = ImageModel.load(self.artifacts_dir / "image")
        return self._image_model

    def score(
        self,
        frame: pd.DataFrame,
        images_root: str | os.PathLike | None = None,
        *,
        mark_duplicates: bool = True,
    ) -> pd.DataFrame:
        """Score a frame of listings, keeping its order.

        Parameters
        ----------
        frame
            One row per listing with contract fields: ``listing_id``, ``text`` (or ``title``
            and/or ``description``), optional ``lang``, ``seller_profile``, ``images`` (a list
            of paths or a ``;``-separated string) and the pass-through fields.
        images_root
            Folder that relative photo paths are resolved inside (paths leaving it are
            refused). ``None``: paths are used as given.
        mark_duplicates
            Mark reused ids and repeated listings as ``wildml score`` does. ``False`` scores
            every row on its own (how ``export`` re-scores the evaluated listings).

        Returns
        -------
        pandas.DataFrame
            Same length and order as ``frame`` (sort by ``tier`` and ``p_final`` for a review
            queue), with :data:`OUTPUT_COLUMNS` plus the pass-through fields present in
            ``frame``. ``status`` is ``scored``, ``scored_without_photo`` (photos given, none
            usable), ``duplicate`` (same text, or same photos without text, as an earlier row:
            ``duplicate_of`` names it) or ``rejected`` (no text and no usable photo, no
            listing_id, or an id used by an earlier row); ``p_final`` is NaN unless scored.
        """
        from wildml import score_stream

        if len(frame) == 0:
            return pd.DataFrame(columns=[*OUTPUT_COLUMNS, "seller_profile", *PASSTHROUGH])
        # Work on positions: a caller's index may repeat (a concatenation); it is put back.
        index = frame.index
        prepared = prepare_listings(frame.reset_index(drop=True), self.settings, images_root)
        if mark_duplicates:
            score_stream.mark_duplicates(prepared, score_stream.SeenState())
        else:
            prepared["duplicate_of"] = ""
        scored = self.score_prepared(prepared).drop(columns=["_dup_key"], errors="ignore")
        scored.index = index
        return scored

    def score_prepared(self, prepared: pd.DataFrame) -> pd.DataFrame:
        """Score listings already passed through :func:`prepare_listings`."""
        out = prepared.copy()
        skipped = out["status"].isin([STATUS_REJECTED, STATUS_DUPLICATE]).to_numpy()
        photo_stats = self._photo_block(out, ~skipped)
        usable = np.asarray([n > 0 for n in photo_stats["n_usable"]], dtype=bool)
        has_text = out["text_norm"].str.len().to_numpy() > 0
        empty = ~skipped & ~has_text & ~usable
        out.loc[empty, "status"] = STATUS_REJECTED
        out.loc[empty, "reason"] = np.where(
            out.loc[empty, "photo_issues"].map(len) > 0, "no_text_no_usable_photo", "empty_listing"
        )
        keep = ~out["status"].isin([STATUS_REJECTED, STATUS_DUPLICATE]).to_numpy()
        no_photo = keep & ~usable & (out["photo_issues"].map(len) > 0).to_numpy()
        out.loc[no_photo, "status"] = STATUS_NO_PHOTO
        out["n_photos"] = out["photos_listed"]
        out["n_photos_usable"] = photo_stats["n_usable"]
        for column in ("p_final", "p_uncalibrated", "p_text", "photo_p"):
            out[column] = np.nan
        for column in ("tier", "product_guess", "why", "reasons", "photo_class"):
            out[column] = ""
        if keep.any():
            self._score_rows(out, keep, photo_stats)
        out["reason"] = [
            _reason_text(r, i) for r, i in zip(out["reason"], out["photo_issues"], strict=True)
        ]
        return out.drop(columns=["photo_issues", "photo_paths", "photos_listed", "text_norm"])

    def _photo_block(self, out: pd.DataFrame, wanted: np.ndarray) -> pd.DataFrame:
        """Run the photo model once over the photos of ``wanted`` rows; max per class."""
        classes = self.image_classes
        if out.empty:
            return pd.DataFrame({"n_usable": [], "img": []}, index=out.index)
        paths = sorted({p for row in out.loc[wanted, "photo_paths"] for p in row})
        per_photo: dict[str, np.ndarray] = {}
        if paths and self.inputs.get("image", True):
            batch = int(self.settings.get("image_batch_size", 32))
            prediction = self.image_model.predict(paths, batch_size=batch)
            model_classes = list(self.image_model.classes)
            order = [model_classes.index(c) for c in classes]
            for path, status, probs in zip(
                paths, prediction.status, prediction.probs, strict=True
            ):
                per_photo[path] = probs[order] if status == "ok" else status
        rows = []
        for index, listed in zip(out.index, out["photo_paths"], strict=True):
            good = [per_photo[p] for p in listed if isinstance(per_photo.get(p), np.ndarray)]
            for p in listed:
                if isinstance(per_photo.get(p), str):
                    out.at[index, "photo_issues"] = [*out.at[index, "photo_issues"], per_photo[p]]
            maxima = np.max(good, axis=0) if good else np.full(len(classes), np.nan)
            rows.append({"n_usable": len(good), "img": maxima})
        return pd.DataFrame(rows, index=out.index)

    def _score_rows(self, out: pd.DataFrame, keep: np.ndarray, photos: pd.DataFrame) -> None:
        from wildml.fuse import build_features

        rows = out[keep]
        keys = [f"r{i}" for i in range(len(rows))]
        text_frame = pd.DataFrame(
            {
                "text": rows["text_norm"].to_numpy(),
                "seller_profile": rows["seller_profile"].to_numpy(),
                "lang": rows["lang"].to_numpy(),
            }
        )
        p_text = self.text_model.predict_proba(text_frame) if self.inputs.get("text") else None
        image_scores = None
        if self.inputs.get("image"):
            img = np.vstack(photos.loc[rows.index, "img"].to_numpy()) if len(rows) else None
            image_scores = pd.DataFrame(
                img, columns=[f"img_p_{c}" for c in self.image_classes]
            ).assign(listing_id=keys, n_photos=photos.loc[rows.index, "n_usable"].to_numpy())
        listings = pd.DataFrame(
            {"listing_id": keys, "text": rows["text_norm"].to_numpy(), "lang": rows["lang"]}
        )
        features = build_features(
            listings.reset_index(drop=True),
            p_text,
            image_scores,
            kb=self.kb_features if self.inputs.get("kb") else None,
            metadata=bool(self.inputs.get("metadata", True)),
        )
        p_final, p_raw = self.fuser.predict_with_scores(features)
        out.loc[keep, "p_final"] = p_final
        out.loc[keep, "p_uncalibrated"] = p_raw
        out.loc[keep, "tier"] = self.fuser.tier(p_final)
        if p_text is not None:
            out.loc[keep, "p_text"] = np.where(features["p_text"].notna(), p_text, np.nan)
        self._explain(out, keep, text_frame, photos)

    def _explain(
        self, out: pd.DataFrame, keep: np.ndarray, text_frame: pd.DataFrame, photos: pd.DataFrame
    ) -> None:
        """Fill reasons (JSON), the short ``why``, photo class and the product guess."""
        top_k = int(self.settings.get("top_text_features", 5))
        ngrams = self._text_features(text_frame, top_k)
        # Plain lists, one column write each: per-cell writes into pandas' Arrow-backed string
        # columns copy the column every time.
        texts, norms = out.loc[keep, "text"].tolist(), out.loc[keep, "text_norm"].tolist()
        p_texts = out.loc[keep, "p_text"].tolist()
        images = photos.loc[out.index[keep], "img"].tolist()
        filled: dict[str, list[Any]] = {
            k: [] for k in ("reasons", "why", "product_guess", "photo_class", "photo_p")
        }
        for position, text in enumerate(texts):
            evidence = unique_evidence(self.matcher.match(text))
            photo = self._photo_reason(images[position])
            reasons = {
                "kb": evidence,
                "text": ngrams[position] if norms[position] else [],
                "photo": photo,
                "p_text": _finite(p_texts[position]),
            }
            filled["reasons"].append(json.dumps(reasons, ensure_ascii=False))
            filled["why"].append(why_text(reasons))
            filled["product_guess"].append(guess_product(evidence, photo, self.settings))
            filled["photo_class"].append(photo["class"] if photo else "")
            filled["photo_p"].append(photo["p"] if photo else np.nan)
        for column, values in filled.items():
            out.loc[keep, column] = values

    def _text_features(self, text_frame: pd.DataFrame, top_k: int) -> list[list[dict]]:
        """Top n-grams of the TF-IDF part (cheap; encoder parts have no readable terms)."""
        items: list[list[dict]] = [[] for _ in range(len(text_frame))]
        for name, component in self.text_model.components.items():
            if name in ("tfidf", "baseline") and hasattr(component, "explain"):
                for row, found in enumerate(component.explain(text_frame, top_k)):
                    items[row].extend(
                        {"feature": it["feature"], "weight": round(float(it["weight"]), 4)}
                        for it in found
                        if abs(float(it["weight"])) > 0
                    )
        return items

    def _photo_reason(self, maxima: np.ndarray) -> dict[str, Any] | None:
        if maxima is None or not np.isfinite(maxima).any():
            return None
        best = int(np.nanargmax(maxima))
        return {"class": self.image_classes[best], "p": round(float(maxima[best]), 4)}


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, 6) if math.isfinite(number) else None


def unique_evidence(found: list[Any]) -> list[dict[str, Any]]:
    """Evidence as dicts, one per (span, product), in text order."""
    seen, out = set(), []
    for ev in sorted(found, key=lambda ev: (ev.start, ev.end, ev.product)):
        if (ev.start, ev.end, ev.product) not in seen:
            seen.add((ev.start, ev.end, ev.product))
            out.append(_evidence_dict(ev))
    return out


def _evidence_dict(ev: Any) -> dict[str, Any]:
    return {
        "term": ev.term,
        "product": ev.product,
        "lang": ev.lang,
        "kind": ev.kind,
        "status": ev.status,
        "start": int(ev.start),
        "end": int(ev.end),
        "matched_text": ev.matched_text,
    }


def _reason_text(reason: str, issues: list[str]) -> str:
    parts = [reason] if reason else []
    if issues:
        parts.append("photos: " + ", ".join(issues))
    return "; ".join(parts)


def guess_product(
    evidence: list[dict[str, Any]], photo: dict[str, Any] | None, settings: dict[str, Any]
) -> str:
    """Most likely product: confirmed KB terms first, then a confident photo, then any term."""
    positive = set(
        settings.get("photo_positive_classes", ["ivory", "pangolin_scale", "rhino_horn"])
    )
    for status in ("confirmed", "neutral"):
        counts: dict[str, int] = {}
        for ev in evidence:
            if ev["status"] == status:
                counts[ev["product"]] = counts.get(ev["product"], 0) + 1
        if counts:
            return max(sorted(counts), key=counts.__getitem__)
        if status == "confirmed" and photo and photo["class"] in positive and photo["p"] >= 0.5:
            return photo["class"]
    return ""


def why_text(reasons: dict[str, Any], max_terms: int = 3) -> str:
    """One short line a reviewer can read: KB terms, strongest n-grams, photo class."""
    parts = []
    terms, shown_terms = [], set()
    for ev in reasons.get("kb", []):
        key = (ev["matched_text"].casefold(), ev["product"])
        if ev["status"] != "defused" and key not in shown_terms and len(terms) < max_terms:
            shown_terms.add(key)
            terms.append(ev)
    if terms:
        shown = ", ".join(
            f"'{ev['matched_text']}' ({ev['product']}"
            + (f", {ev['kind'].replace('_', ' ')}" if ev["kind"] != "plain" else "")
            + ")"
            for ev in terms
        )
        parts.append(f"terms: {shown}")
    defused = [ev for ev in reasons.get("kb", []) if ev["status"] == "defused"]
    if defused:
        parts.append(f"defused: '{defused[0]['matched_text']}'")
    # Word and character n-grams can read the same ('ld' twice): show each label once.
    labels = dict.fromkeys(
        _feature_label(it["feature"]) for it in reasons.get("text", []) if it["weight"] > 0
    )
    if labels:
        parts.append("text: " + ", ".join(list(labels)[:max_terms]))
    photo = reasons.get("photo")
    if photo:
        parts.append(f"photo: {photo['class']} {photo['p']:.2f}")
    return "; ".join(parts) or "no specific evidence"


def _feature_label(feature: str) -> str:
    """``word__old bangle`` -> ``'old bangle'``; seller-profile n-grams say so."""
    kind, sep, term = feature.partition("__")
    if not sep:
        return f"'{feature}'"
    return f"profile '{term.strip()}'" if kind == "profile" else f"'{term.strip()}'"


def prepare_listings(
    frame: pd.DataFrame, settings: dict[str, Any], images_root: str | os.PathLike | None
) -> pd.DataFrame:
    """Apply ``prepare``'s text handling and resolve photos, one output row per input row.

    Returns a frame with ``listing_id``, ``text`` (as written, for display), ``text_norm``
    (the model's input), ``seller_profile``, ``lang``, ``photos`` (as given),
    ``photo_paths`` (resolved), ``photo_issues``, ``status``, ``reason`` and pass-through
    fields.
    """
    from wildml.listing_text import detect_or_keep_language, text_fields
    from wildml.normalise import normalise_text

    prep_cfg = {k: settings[k] for k in ("max_text_chars", "lang_detect") if k in settings}
    from wildml.contract import LISTING_FIELDS

    rows = []
    for raw in frame.to_dict("records"):
        raw = {k: ("" if is_missing(v) else v) for k, v in raw.items()}
        containers = [
            k for k in LISTING_FIELDS if isinstance(raw.get(k), list | tuple | dict | np.ndarray)
        ]
        if containers and not raw.get("_field_error"):
            # A frame from Python may hold lists where one text belongs: refuse, never guess.
            raw["_field_error"] = "bad_field_type: " + ", ".join(
                f"{k!r} is a {type(raw[k]).__name__}" for k in containers
            )
        fields = text_fields({k: str(v) for k, v in raw.items() if k != "images"}, prep_cfg)
        record: dict[str, Any] = {"text_norm": fields["text"], "text": fields["text_original"]}
        record["seller_profile"] = normalise_text(str(raw.get("seller_profile", "")))
        # prepare detects the language of the normalised text: same input, same answer.
        lang_holder = {"text": fields["text"]}
        detect_or_keep_language(lang_holder, raw, prep_cfg)
        record["lang"] = lang_holder["lang"]
        lang_note = str(lang_holder.get("lang_note", "") or "")
        record["listing_id"] = str(raw.get("listing_id", "")).strip()
        record.update({name: str(raw.get(name, "")).strip() for name in PASSTHROUGH})
        record.update(_photos(raw.get("images"), images_root))
        record["status"], record["reason"] = "", ""
        field_error = str(raw.get("_field_error", "") or "")
        if field_error:
            record["status"], record["reason"] = STATUS_REJECTED, field_error
        elif not record["listing_id"]:
            record["status"], record["reason"] = STATUS_REJECTED, "missing_id"
        elif lang_note:
            record["reason"] = f"lang: {lang_note}"
        rows.append(record)
    out = pd.DataFrame(rows, index=frame.index)
    if out.empty:
        columns = ["listing_id", "text", "text_norm", "status", "photo_paths", "photos_listed"]
        out = pd.DataFrame(columns=columns)
    out["status"] = out["status"].where(out["status"] != "", STATUS_SCORED)
    return out


def is_missing(value: Any) -> bool:
    """True for None and NaN: a value absent from its record (a JSON key, a Parquet null)."""
    if value is None:
        return True
    return isinstance(value, float) and math.isnan(value)


def split_photo_cell(cell: Any, separator: str = ";") -> list[str]:
    """Photo paths from a list, a JSON list string or a ``;``-separated string."""
    from wildml.readers import _split_paths

    if hasattr(cell, "tolist") and not isinstance(cell, str):
        cell = cell.tolist()
    return _split_paths(cell, separator)


def _photos(cell: Any, images_root: str | os.PathLike | None) -> dict[str, Any]:
    """Resolve a listing's photos inside the images root; unusable ones become issues."""
    listed = split_photo_cell(cell)
    paths, issues = [], []
    for relative in listed:
        try:
            if images_root is None:
                path = Path(relative).resolve()
                if not path.is_file():
                    raise PhotoError("missing", str(path))
            else:
                path = resolve_inside(images_root, relative)
        except PhotoError as err:
            issues.append(err.reason)
            continue
        except (ValueError, OSError):  # a NUL byte, or a name the file system refuses
            issues.append("bad_path")
            continue
        if str(path) not in paths:
            paths.append(str(path))
    return {
        "photos": ";".join(listed),
        "photos_listed": len(listed),
        "photo_paths": paths,
        "photo_issues": issues,
    }


def load_scorer(path: str | os.PathLike, *, verify: bool = True) -> Scorer:
    """Load an exported scoring package after checking every file against its manifest.

    Parameters
    ----------
    path
        The package folder written by ``wildml export`` (``models/scorer``).
    verify
        Check the manifest first (turn off only for a package you just verified yourself).

    Returns
    -------
    Scorer
        Call ``.score(dataframe)`` on it.

    Raises
    ------
    PackageIntegrityError
        When a file is changed, missing or extra, naming it.
    """
    package_dir = Path(path)
    record = verify_package(package_dir) if verify else {"files": {}}
    warn_if_code_differs(record)
    scorer = Scorer(artifact_dir(package_dir), digest=package_digest(record))
    scorer.manifest = record
    return scorer


def code_differences(record: dict[str, Any]) -> list[str]:
    """Package sources (``code/wildml/...`` in the manifest) that differ from the running ones."""
    from wildml.score_manifest import sha256_file

    running = Path(__file__).resolve().parent
    differ = []
    for rel, entry in record.get("files", {}).items():
        if not rel.startswith("code/wildml/") or not rel.endswith(".py"):
            continue
        here = running / rel.removeprefix("code/wildml/")
        if not here.is_file() or sha256_file(here) != entry["sha256"]:
            differ.append(rel.removeprefix("code/"))
    return sorted(differ)


def warn_if_code_differs(record: dict[str, Any]) -> None:
    """Warn when the installed wildml is not the code the package was exported with."""
    differ = code_differences(record)
    if differ:
        # Known limitation: the scorer runs the installed wildml, not the copy inside the
        # package; when they differ, scores may drift from the evaluated ones. Install the
        # wildml version in manifest.json (or re-export) before scoring for real.
        logger.warning(
            "the installed wildml differs from the package's code in %d files (%s); scores may "
            "differ from the evaluated ones",
            len(differ),
            ", ".join(differ[:3]),
        )
