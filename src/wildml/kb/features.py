"""Knowledge-base evidence as model features: an sklearn transformer."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from wildml.kb.loader import load_kb
from wildml.kb.matcher import Matcher

logger = logging.getLogger(__name__)

_PER_PRODUCT = ("confirmed", "defused", "code_word", "obfuscated", "neutral")


class KBFeatures(TransformerMixin, BaseEstimator):
    """Count knowledge-base evidence per product.

    Columns, per product of the base (in ``products.yaml`` order):
    ``<product>__confirmed``, ``__defused``, ``__neutral`` (hits by status),
    ``__code_word``, ``__obfuscated`` (hits by kind, whatever their status); then
    ``any_confirmed`` and ``any_defused`` (0/1).

    The fitted matcher is not pickled: it is rebuilt from the knowledge base when the object is
    unpickled, and a warning is logged if the base changed since ``fit``.

    Parameters
    ----------
    kb_path
        Knowledge-base folder; ``None`` uses the base shipped in the package.
    binary
        Report 0/1 presence instead of counts.
    text_column
        Column to read when ``transform`` is given a DataFrame.
    """

    def __init__(
        self, *, kb_path: str | None = None, binary: bool = False, text_column: str = "text"
    ) -> None:
        self.kb_path = kb_path
        self.binary = binary
        self.text_column = text_column

    def fit(self, X: Any = None, y: Any = None) -> KBFeatures:
        """Load the knowledge base and build the matcher; ``X`` and ``y`` are not used."""
        kb = load_kb(self.kb_path)
        self.matcher_ = Matcher(kb)
        self.products_ = list(kb.products)
        self.kb_version_ = kb.version
        self.kb_fingerprint_ = kb.fingerprint
        self.feature_names_ = [f"{p}__{k}" for p in self.products_ for k in _PER_PRODUCT] + [
            "any_confirmed",
            "any_defused",
        ]
        self.n_features_out_ = len(self.feature_names_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return an array of shape (n_listings, n_features), float32."""
        texts = self._texts(X)
        out = np.zeros((len(texts), self.n_features_out_), dtype=np.float32)
        column = {p: i * len(_PER_PRODUCT) for i, p in enumerate(self.products_)}
        offset = {k: j for j, k in enumerate(_PER_PRODUCT)}
        any_c, any_d = self.n_features_out_ - 2, self.n_features_out_ - 1
        for row, text in enumerate(texts):
            for ev in self.matcher_.match(text):
                base = column.get(ev.product)
                if base is None:
                    continue
                out[row, base + offset[ev.status]] += 1
                if ev.kind in ("code_word", "obfuscated"):
                    out[row, base + offset[ev.kind]] += 1
                out[row, any_c] = max(out[row, any_c], float(ev.status == "confirmed"))
                out[row, any_d] = max(out[row, any_d], float(ev.status == "defused"))
        if self.binary:
            np.minimum(out, 1.0, out=out)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns."""
        return np.asarray(self.feature_names_, dtype=object)

    def _texts(self, X: Any) -> list[str]:
        if hasattr(X, "columns"):
            X = X[self.text_column]
        if isinstance(X, str):
            raise TypeError("KBFeatures.transform expects a list of texts, not one string")
        return [t if isinstance(t, str) else "" for t in _iterate(X)]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("matcher_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "kb_fingerprint_" in state:
            kb = load_kb(self.kb_path)
            if kb.fingerprint != self.kb_fingerprint_:
                logger.warning(
                    "knowledge base changed since fit (version %s -> %s); using the new one",
                    self.kb_version_,
                    kb.version,
                )
            self.matcher_ = Matcher(kb)


def _iterate(X: Iterable[Any]) -> Iterable[Any]:
    return X.tolist() if hasattr(X, "tolist") else X
