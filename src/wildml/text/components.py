"""The scoring parts a text model is built from; each maps listings to a log-odds score.

Every component follows the sklearn estimator contract (keyword-only params, ``fit`` returns
self, learned state ends in ``_``), takes a listing frame (see :func:`wildml.text.frame.as_frame`)
and returns an uncalibrated log-odds from ``decision_function``. ``save``/``load`` write only
safe formats: skops for sklearn objects, JSON for settings.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from wildml.text import safe_io
from wildml.text.frame import as_frame

logger = logging.getLogger(__name__)

# Word tokens for the coverage check: runs of letters/digits, or single CJK/Thai characters,
# which are written without spaces.
_WORD = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff]|[^\W_]{2,}", re.UNICODE)
_MAX_CHARS = 20_000  # a listing longer than this is cut before n-grams: the tail adds noise


def _head(class_weight: str | None, c: float, seed: int | None) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight=class_weight, max_iter=2000, random_state=seed)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")


class TfidfComponent(BaseEstimator):
    """Char (``char_wb`` 2-5) and word (1-2) n-gram TF-IDF with a weighted logistic regression.

    Parameters
    ----------
    analyzers
        Any of ``"char"`` and ``"word"``; the baseline uses ``("word",)``.
    use_profile
        Add word n-grams of the seller's profile as separate features.
    c
        Inverse regularisation of the logistic regression.
    max_features
        Vocabulary cap per vectorizer.
    class_weight
        ``"balanced"`` weighs the rare positives up; None for none.
    random_state
        Seed of the solver.
    """

    def __init__(
        self,
        *,
        analyzers: tuple[str, ...] = ("char", "word"),
        use_profile: bool = False,
        c: float = 4.0,
        max_features: int = 200_000,
        class_weight: str | None = "balanced",
        random_state: int | None = None,
    ) -> None:
        self.analyzers = analyzers
        self.use_profile = use_profile
        self.c = c
        self.max_features = max_features
        self.class_weight = class_weight
        self.random_state = random_state

    def _vectorizers(self) -> list[tuple[str, TfidfVectorizer, str]]:
        common = {"sublinear_tf": True, "max_features": self.max_features, "lowercase": True}
        parts = []
        if "char" in self.analyzers:
            char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, **common)
            parts.append(("char", char, "text"))
        if "word" in self.analyzers:
            word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1, **common)
            parts.append(("word", word, "text"))
        if self.use_profile:
            profile = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, **common)
            parts.append(("profile", profile, "seller_profile"))
        return parts

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> TfidfComponent:
        """Fit vectorizers and the classifier on listings ``frame`` with 0/1 labels ``y``."""
        return self.fit_features(self.featurize(frame), y)

    def fit_features(self, inputs: pd.DataFrame, y: np.ndarray) -> TfidfComponent:
        """Fit on the output of :meth:`featurize`."""
        features = ColumnTransformer(self._vectorizers(), sparse_threshold=1.0)
        self.pipeline_ = Pipeline(
            [("features", features), ("clf", _head(self.class_weight, self.c, self.random_state))]
        )
        self._last_matrix = self._feature_names = None  # belong to the previous fit
        self.pipeline_.fit(inputs, np.asarray(y))
        self.vocabulary_ = self._word_vocabulary()
        return self

    def decision_features(self, inputs: pd.DataFrame) -> np.ndarray:
        """Log-odds from the output of :meth:`featurize`, shape (n,)."""
        matrix = self._matrix(inputs)
        clf = self.pipeline_.named_steps["clf"]
        return clf.decision_function(matrix).astype(np.float64)

    def _matrix(self, inputs: pd.DataFrame) -> Any:
        """TF-IDF rows of ``inputs``; the last result is kept, since scoring asks for the
        score and then the explanation of the same listings."""
        key = hash((tuple(inputs["text"]), tuple(inputs["seller_profile"])))
        last = getattr(self, "_last_matrix", None)
        if last is not None and last[0] == key:
            return last[1]
        matrix = self.pipeline_.named_steps["features"].transform(inputs).tocsr()
        self._last_matrix = (key, matrix)
        return matrix

    def featurize(self, frame: Any) -> pd.DataFrame:
        """The model's input: the listing frame with over-long texts cut."""
        return self._inputs(frame)

    def _inputs(self, frame: Any) -> pd.DataFrame:
        frame = as_frame(frame)
        frame["text"] = frame["text"].str.slice(0, _MAX_CHARS)
        frame["seller_profile"] = frame["seller_profile"].str.slice(0, _MAX_CHARS)
        return frame

    def _word_vocabulary(self) -> frozenset[str]:
        names = self.pipeline_.named_steps["features"].get_feature_names_out()
        words = set()
        for name in names:
            part, _, term = name.partition("__")
            if part in ("char", "word"):
                words.update(_WORD.findall(term.lower()))
        return frozenset(words)

    def decision_function(self, frame: Any) -> np.ndarray:
        """Log-odds of each listing, shape (n,)."""
        return self.decision_features(self._inputs(frame))

    def coverage(self, frame: Any) -> np.ndarray:
        """Share of each text's word tokens that the model saw in training, shape (n,).

        Near 0 for a language the training data lacks: the n-gram score then says little.
        """
        out = np.zeros(len(frame), dtype=np.float64)
        for row, text in enumerate(as_frame(frame)["text"]):
            tokens = _WORD.findall(text[:_MAX_CHARS].lower())
            if tokens:
                out[row] = sum(token in self.vocabulary_ for token in tokens) / len(tokens)
        return out

    def explain(self, frame: Any, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """Top n-grams present in each listing, by weight x tf-idf (both signs)."""
        coef = self.pipeline_.named_steps["clf"].coef_.ravel()
        names = getattr(self, "_feature_names", None)
        if names is None:
            names = self._feature_names = self.pipeline_.named_steps[
                "features"
            ].get_feature_names_out()
        matrix = self._matrix(self._inputs(frame))
        out = []
        for row in range(matrix.shape[0]):
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            cols, values = matrix.indices[start:end], matrix.data[start:end]
            contrib = coef[cols] * values
            order = np.argsort(-np.abs(contrib))[:top_k]
            out.append(
                [
                    {"feature": str(names[cols[i]]), "weight": float(contrib[i]), "kind": "ngram"}
                    for i in order
                ]
            )
        return out

    def _fitted_vectorizers(self) -> dict[str, TfidfVectorizer]:
        features = self.pipeline_.named_steps["features"]
        return {name: features.named_transformers_[name] for name, _, _ in self._vectorizers()}

    def save(self, model_dir: Path, name: str) -> None:
        """Write ``<name>.skops`` and ``<name>.json`` into ``model_dir``.

        The n-gram vocabularies go to the JSON file as term lists: skops takes minutes on a
        dict of tens of thousands of entries, JSON a fraction of a second.
        """
        vectorizers = self._fitted_vectorizers()
        vocabularies = {part: v.vocabulary_ for part, v in vectorizers.items()}
        terms = {
            part: sorted(vocab, key=vocab.__getitem__) for part, vocab in vocabularies.items()
        }
        try:
            for vectorizer in vectorizers.values():
                vectorizer.vocabulary_ = {}
            safe_io.dump(self.pipeline_, model_dir / f"{name}.skops")
        finally:
            for part, vectorizer in vectorizers.items():
                vectorizer.vocabulary_ = vocabularies[part]
        payload = {
            "params": _jsonable(self.get_params()),
            "vocabulary": sorted(self.vocabulary_),
            "ngram_terms": terms,
        }
        _write_json(model_dir / f"{name}.json", payload)

    @classmethod
    def load(cls, model_dir: Path, name: str) -> TfidfComponent:
        """Read a component written by :meth:`save`."""
        meta = json.loads((model_dir / f"{name}.json").read_text(encoding="utf-8"))
        params = meta["params"]
        params["analyzers"] = tuple(params["analyzers"])
        component = cls(**params)
        component.pipeline_ = safe_io.load(model_dir / f"{name}.skops")
        for part, vectorizer in component._fitted_vectorizers().items():
            vectorizer.vocabulary_ = {term: i for i, term in enumerate(meta["ngram_terms"][part])}
        component.vocabulary_ = frozenset(meta["vocabulary"])
        return component


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


MEMORY_VECTORS = 20_000


class EncoderComponent(BaseEstimator):
    """A frozen multilingual sentence encoder with a trained logistic-regression head.

    Parameters
    ----------
    encoder
        Encoder params (see :func:`wildml.text.encoders.build_encoder`).
    use_profile
        Embed the seller's profile too and append its vector.
    c
        Inverse regularisation of the head.
    class_weight, random_state
        As for the TF-IDF component.
    """

    def __init__(
        self,
        *,
        encoder: dict[str, Any] | None = None,
        use_profile: bool = False,
        c: float = 1.0,
        class_weight: str | None = "balanced",
        random_state: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.use_profile = use_profile
        self.c = c
        self.class_weight = class_weight
        self.random_state = random_state
        self._cached: Any = None

    def attach_encoder(self, cached_encoder: Any) -> EncoderComponent:
        """Use an already-built (and cached) encoder instead of building one on first use."""
        self._cached = cached_encoder
        return self

    def _encoder(self) -> Any:
        if self._cached is None:
            from wildml.text.encoders import CachedEncoder, build_encoder

            # A loaded model scores stream after stream: keep a bounded set of vectors
            # in memory so a long scoring run does not grow with its input.
            self._cached = CachedEncoder(
                build_encoder(self.encoder or {}), progress=False, memory_limit=MEMORY_VECTORS
            )
        return self._cached

    def embed(self, frame: Any) -> np.ndarray:
        """Embedding of each listing, shape (n, dim) or (n, 2 * dim) with the profile."""
        frame = as_frame(frame)
        vectors = self._encoder().encode(frame["text"].tolist())
        if self.use_profile:
            profile = self._encoder().encode(frame["seller_profile"].tolist())
            vectors = np.hstack([vectors, profile])
        return vectors

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> EncoderComponent:
        """Embed ``frame`` and fit the head on 0/1 labels ``y``."""
        return self.fit_features(self.embed(frame), y)

    def featurize(self, frame: Any) -> np.ndarray:
        """The head's input: see :meth:`embed`."""
        return self.embed(frame)

    def fit_features(self, vectors: np.ndarray, y: np.ndarray) -> EncoderComponent:
        """Fit the head on precomputed embeddings (cross-fitting reuses one embedding pass)."""
        self.head_ = Pipeline(
            [
                ("scale", StandardScaler()),
                ("clf", _head(self.class_weight, self.c, self.random_state)),
            ]
        )
        self.head_.fit(vectors, np.asarray(y))
        return self

    def decision_function(self, frame: Any) -> np.ndarray:
        """Log-odds of each listing, shape (n,)."""
        return self.decision_features(self.embed(frame))

    def decision_features(self, vectors: np.ndarray) -> np.ndarray:
        """Log-odds from precomputed embeddings, shape (n,)."""
        return self.head_.decision_function(vectors).astype(np.float64)

    def explain(self, frame: Any, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """The encoder's log-odds as one item per listing (embeddings have no readable terms)."""
        scores = self.decision_function(frame)
        return [[{"feature": "encoder", "weight": float(z), "kind": "encoder"}] for z in scores]

    def save(self, model_dir: Path, name: str) -> None:
        """Write ``<name>.skops`` (the head) and ``<name>.json`` (encoder settings)."""
        safe_io.dump(self.head_, model_dir / f"{name}.skops")
        _write_json(model_dir / f"{name}.json", {"params": self.get_params()})

    @classmethod
    def load(cls, model_dir: Path, name: str) -> EncoderComponent:
        """Read a component written by :meth:`save`."""
        meta = json.loads((model_dir / f"{name}.json").read_text(encoding="utf-8"))
        component = cls(**meta["params"])
        component.head_ = safe_io.load(model_dir / f"{name}.skops")
        return component


_KB_KINDS = ("confirmed", "defused", "code_word", "obfuscated", "neutral")


class KBComponent(BaseEstimator):
    """Knowledge-base evidence counts with a logistic regression on top.

    Parameters
    ----------
    product_agnostic
        Sum the per-product counts into one count per status/kind, so evidence for a product
        absent from the labelled data (pangolin scales, rhino horn) weighs like ivory evidence.
        With False, per-product columns are used as well.
    use_profile
        Add the same counts computed on the seller's profile.
    kb_path
        Knowledge-base folder; None uses the shipped one.
    c, class_weight, random_state
        As for the TF-IDF component.
    """

    def __init__(
        self,
        *,
        product_agnostic: bool = True,
        use_profile: bool = False,
        kb_path: str | None = None,
        c: float = 1.0,
        class_weight: str | None = "balanced",
        random_state: int | None = None,
    ) -> None:
        self.product_agnostic = product_agnostic
        self.use_profile = use_profile
        self.kb_path = kb_path
        self.c = c
        self.class_weight = class_weight
        self.random_state = random_state

    def _featurizer(self) -> Any:
        if getattr(self, "featurizer_", None) is None:
            from wildml.kb.features import KBFeatures

            self.featurizer_ = KBFeatures(kb_path=self.kb_path).fit()
        return self.featurizer_

    def features(self, frame: Any) -> np.ndarray:
        """Evidence features of each listing, shape (n, n_features), float64."""
        frame = as_frame(frame)
        parts = [self._summarise(frame["text"].tolist())]
        if self.use_profile:
            parts.append(self._summarise(frame["seller_profile"].tolist()))
        return np.hstack(parts)

    def feature_names(self) -> list[str]:
        """Names of the columns of :meth:`features`."""
        names = [f"kb_{kind}" for kind in _KB_KINDS] + ["any_confirmed", "any_defused"]
        if not self.product_agnostic:
            names += list(self._featurizer().get_feature_names_out()[:-2])
        if self.use_profile:
            names += [f"profile_{name}" for name in names]
        return names

    def _summarise(self, texts: list[str]) -> np.ndarray:
        featurizer = self._featurizer()
        raw = featurizer.transform([text[:_MAX_CHARS] for text in texts]).astype(np.float64)
        names = list(featurizer.get_feature_names_out())
        per_product = raw[:, :-2]
        totals = [
            per_product[:, [i for i, n in enumerate(names[:-2]) if n.endswith(f"__{kind}")]].sum(1)
            for kind in _KB_KINDS
        ]
        parts = [np.log1p(np.column_stack(totals)), raw[:, -2:]]
        if not self.product_agnostic:
            parts.append(np.log1p(per_product))
        return np.hstack(parts)

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> KBComponent:
        """Fit the head on evidence of ``frame`` and 0/1 labels ``y``."""
        return self.fit_features(self.features(frame), y)

    def featurize(self, frame: Any) -> np.ndarray:
        """The head's input: see :meth:`features`."""
        return self.features(frame)

    def fit_features(self, features: np.ndarray, y: np.ndarray) -> KBComponent:
        """Fit the head on the output of :meth:`featurize`."""
        self.head_ = _head(self.class_weight, self.c, self.random_state)
        self.head_.fit(features, np.asarray(y))
        return self

    def decision_features(self, features: np.ndarray) -> np.ndarray:
        """Log-odds from the output of :meth:`featurize`, shape (n,)."""
        return self.head_.decision_function(features).astype(np.float64)

    def decision_function(self, frame: Any) -> np.ndarray:
        """Log-odds of each listing, shape (n,)."""
        return self.decision_features(self.features(frame))

    def evidence(self, frame: Any) -> list[list[Any]]:
        """Matched knowledge-base evidence of each listing's text."""
        matcher = self._featurizer().matcher_
        return [matcher.match(text[:_MAX_CHARS]) for text in as_frame(frame)["text"]]

    def explain(self, frame: Any, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """Matched terms per listing, confirmed first, weighted by the head's coefficient."""
        coef = dict(zip(self.feature_names(), self.head_.coef_.ravel(), strict=False))
        out = []
        for hits in self.evidence(frame):
            items = [
                {
                    "feature": f"{ev.matched_text} ({ev.product}, {ev.status}, {ev.kind})",
                    "weight": float(coef.get(f"kb_{ev.status}", 0.0)),
                    "kind": "kb",
                    "term": ev.term,
                    "product": ev.product,
                    "status": ev.status,
                    "rule": ev.rule,
                    "start": ev.start,
                    "end": ev.end,
                }
                for ev in hits
            ]
            items.sort(key=lambda item: -abs(item["weight"]))
            out.append(items[:top_k])
        return out

    def save(self, model_dir: Path, name: str) -> None:
        """Write ``<name>.skops`` (the head) and ``<name>.json`` (settings, KB fingerprint)."""
        safe_io.dump(self.head_, model_dir / f"{name}.skops")
        featurizer = self._featurizer()
        _write_json(
            model_dir / f"{name}.json",
            {
                "params": self.get_params(),
                "kb_version": str(featurizer.kb_version_),
                "kb_fingerprint": str(featurizer.kb_fingerprint_),
            },
        )

    @classmethod
    def load(cls, model_dir: Path, name: str) -> KBComponent:
        """Read a component written by :meth:`save`; warns when the base changed since."""
        meta = json.loads((model_dir / f"{name}.json").read_text(encoding="utf-8"))
        component = cls(**meta["params"])
        component.head_ = safe_io.load(model_dir / f"{name}.skops")
        if str(component._featurizer().kb_fingerprint_) != meta["kb_fingerprint"]:
            logger.warning(
                "knowledge base changed since training (%s -> %s): KB scores will differ",
                meta["kb_version"],
                component._featurizer().kb_version_,
            )
        return component
