"""The matcher's shortcuts lose nothing: the fast path gives the evidence of the full path."""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildml.kb import Matcher, fold, load_kb

os.environ.setdefault("OMP_NUM_THREADS", "1")

_MATCHER = Matcher()
_KB = load_kb()
_WORDS = sorted({e.text for e in _KB.entries})
# characters sellers disguise terms with, plus ordinary punctuation, digits and other scripts
_NOISE = "ivory象牙 .-_,#1!0@|$€4\u200b\u00adабвеорсухνοΙＩｖ鱗片ก่ิ๑ 🐘🦏xyz'’"


def _same(text: str) -> None:
    fast = _MATCHER._match(text, None, fast=True)
    full = _MATCHER._match(text, None, fast=False)
    assert fast == full, text


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_WORDS),
            st.text(alphabet=_NOISE, max_size=4),
            st.sampled_from([" ", "", ", ", ". ", "-", "#"]),
        ),
        max_size=12,
    ).map("".join)
)
def test_fast_path_equals_full_path_on_kb_words_and_noise(text):
    _same(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fast_path_equals_full_path_on_any_text(text):
    _same(text)


def test_fast_path_equals_full_path_on_benchmark_corpus():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_matcher.py"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    spec = importlib.util.spec_from_file_location("bench_matcher", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    listings = bench.make_listings(600, seed=3)
    found = 0
    for text in listings:
        fast = _MATCHER.match(text)
        assert fast == _MATCHER._match(text, None, fast=False), text
        found += len(fast)
    assert found > 50  # the corpus names products: the comparison is not vacuous


def test_fast_path_equals_full_path_on_disguised_terms():
    rng = random.Random(0)
    terms = [e.text for e in _KB.terms()]
    for term in terms:
        chars = list(term)
        at = rng.randrange(len(chars))
        chars.insert(at, rng.choice(" .-\u200b1"))
        for text in (term, "".join(chars), f"Bán {term} giá tốt", f"#{term}"):
            _same(text)
            _same(text.upper())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_fast_fold_equals_reference_fold(text):
    assert fold.fold_full(text) == fold.fold_full_reference(text)


def test_fold_keeps_the_characters_the_prefilter_looks_for():
    # the non-Latin prefilter searches the folded form for zero-width and Thai characters
    for ch in [*fold.ZERO_WIDTH, *(chr(cp) for cp in range(0x0E01, 0x0E4F))]:
        assert fold.fold_full(ch) == ch
