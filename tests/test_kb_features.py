"""KBFeatures: sklearn transformer over the matcher's evidence."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from wildml.kb import KBFeatures, load_kb

TEXTS = [
    "Genuine elephant ivory bangle for sale, DM me",
    "faux ivory resin figurine",
    "i.v.o.r.y beads",
    "出售穿山甲鳞片",
    "Brand new phone for sale",
    "",
]


@pytest.fixture(scope="module")
def fitted() -> KBFeatures:
    return KBFeatures().fit(TEXTS)


def test_shape_and_names(fitted):
    out = fitted.transform(TEXTS)
    names = list(fitted.get_feature_names_out())
    n_products = len(load_kb().products)
    assert out.shape == (len(TEXTS), n_products * 5 + 2) == (len(TEXTS), len(names))
    assert out.dtype == np.float32
    assert names[-2:] == ["any_confirmed", "any_defused"]
    col = {n: i for i, n in enumerate(names)}
    assert out[0, col["ivory__confirmed"]] == 1 and out[0, col["any_confirmed"]] == 1
    assert out[1, col["ivory__defused"]] == 1 and out[1, col["any_defused"]] == 1
    assert out[2, col["ivory__obfuscated"]] == 1 and out[2, col["ivory__neutral"]] == 1
    assert out[3, col["pangolin_scale__confirmed"]] == 1
    assert not out[4].any() and not out[5].any()


def test_accepts_dataframe_and_series(fitted):
    frame = pd.DataFrame({"text": TEXTS, "lang": ["en"] * len(TEXTS)})
    np.testing.assert_array_equal(fitted.transform(frame), fitted.transform(TEXTS))
    np.testing.assert_array_equal(fitted.transform(frame["text"]), fitted.transform(TEXTS))


def test_clone_and_params():
    est = KBFeatures(binary=True)
    assert est.get_params() == {"binary": True, "kb_path": None, "text_column": "text"}
    copy = clone(est)
    assert copy.get_params() == est.get_params() and not hasattr(copy, "matcher_")
    copy.set_params(binary=False)
    assert copy.binary is False and est.binary is True


def test_pickle_rebuilds_matcher_without_storing_it(fitted):
    state = fitted.__getstate__()
    assert "matcher_" not in state
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(TEXTS), fitted.transform(TEXTS))


def test_works_in_pipeline():
    y = np.array([1, 0, 1, 1, 0, 0])
    pipe = make_pipeline(KBFeatures(), LogisticRegression()).fit(TEXTS, y)
    assert pipe.predict_proba(TEXTS).shape == (len(TEXTS), 2)


def test_skops_round_trip(fitted):
    import skops.io as sio

    blob = sio.dumps(fitted)
    assert sio.get_untrusted_types(data=blob) == ["wildml.kb.features.KBFeatures"]
    restored = sio.loads(blob, trusted=["wildml.kb.features.KBFeatures"])
    np.testing.assert_array_equal(restored.transform(TEXTS), fitted.transform(TEXTS))
