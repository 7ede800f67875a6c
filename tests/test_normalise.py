"""The text normaliser: canonical, idempotent, and safe on any Unicode."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildml import normalise
from wildml.normalise import has_undecodable, normalise_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＩＶＯＲＹ　ｂａｎｇｌｅ", "IVORY bangle"),  # full-width letters and space
        ("ivo\u200bry", "ivory"),  # zero-width space inside a word
        ("象\u200d牙 手镯", "象牙 手镯"),
        ("  many\t\tspaces\n\nand lines  ", "many spaces and lines"),
        ("ngà\u0000voi", "ngà voi"),  # control character becomes a space
        ("nga\u0300 voi", "ngà voi"),  # combining accent composes
        ("\ufeffBOM first", "BOM first"),
        ("", ""),
        (None, ""),
    ],
)
def test_examples(raw, expected):
    assert normalise_text(raw) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_idempotent_and_clean(text):
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert once == once.strip()
    assert "  " not in once
    for char in once:
        category = unicodedata.category(char)
        assert category not in ("Cc", "Cf", "Cs", "Co", "Cn"), repr(char)
        assert not (char.isspace() and char != " ")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1))
def test_letters_survive(text):
    """Letters and digits are never deleted, only folded (NFKC may expand some).

    The Hangul fillers are letters by category but show nothing: they are removed on purpose.
    """
    assert normalise_text(text) != "" or all(
        c in normalise._INVISIBLE or unicodedata.normalize("NFKC", c).strip() == "" for c in text
    )


def test_undecodable_detection():
    broken = b"ivory \xff\xfe bangle".decode("utf-8", "surrogateescape")
    assert has_undecodable(broken)
    assert not has_undecodable("ivory bangle 象牙")


def _slow_pass(text: str) -> str:
    """One normalisation pass through the character-by-character path only."""
    cleaned = unicodedata.normalize("NFKC", normalise._clean_chars(text))
    return normalise._WHITESPACE.sub(" ", cleaned).strip()


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.characters(),
            st.sampled_from([*sorted(normalise._INVISIBLE), "\t", "\n", "\u00a0", "\u3000"]),
            st.sampled_from(["\u0301", "\u00a8", "\u2028", "\x85", "\x1f", " ", "a", "象"]),
        )
    )
)
def test_fast_path_matches_the_character_by_character_pass(text):
    assert normalise._one_pass(text) == _slow_pass(text)


@pytest.mark.parametrize(
    "text",
    ["plain ivory bangle", "line\nbreaks\tand\u00a0spaces", "filler\u3164inside", "a\u00a0\u00a8"],
)
def test_fast_path_examples_match(text):
    assert normalise._one_pass(text) == _slow_pass(text)
