"""Ligatures (``ﬁ``, ``ﬂ``, ``ﬀ`` ...) neither hide terms nor context words from the matcher."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wildml.kb.matcher import Matcher, _ligatures

LIGATURES = {"ffi": "ﬃ", "ffl": "ﬄ", "ff": "ﬀ", "fi": "ﬁ", "fl": "ﬂ", "st": "ﬆ"}
_PLAIN = re.compile("|".join(LIGATURES))  # longest first: ffi before ff before fi


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher()


def summary(evidence) -> list[tuple]:
    """What a reviewer reads of each hit, without the offsets."""
    return [(e.term, e.product, e.lang, e.kind, e.status, e.rule) for e in evidence]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a term with "fi" in it: lost entirely when written with the ligature
        ("Marﬁl de elefante, se vende, precio 200 usd", [("marfil de elefante", "confirmed")]),
        # a defusing context word with "fi": the term was confirmed instead of defused
        ("Artiﬁcial ivory bangle for sale", [("ivory", "defused")]),
        # a look-alike material ("buffalo horn", "corne de buffle") and a news word
        ("Rhino horn or buﬀalo horn? Water buﬀalo horn bangle", [("rhino horn", "defused")]),
        ("Corne de rhinocéros, corne de buﬄe", [("corne de rhinocéros", "defused")]),
        ("Rhino horn conﬁscated by customs", [("rhino horn", "defused")]),
    ],
    ids=["term", "defuser", "look-alike", "ffl", "news"],
)
def test_ligature_gives_the_evidence_of_the_nfkc_form(matcher, text, expected):
    nfkc = unicodedata.normalize("NFKC", text)
    found = matcher.match(text)
    assert summary(found) == summary(matcher.match(nfkc))
    assert [(e.term, e.status) for e in found] == expected
    for e in found:
        assert text[e.start : e.end] == e.matched_text


def test_span_covers_the_ligature_as_written(matcher):
    text = "Real marﬁl de elefante"
    (evidence,) = matcher.match(text)
    assert evidence.matched_text == "marﬁl de elefante"
    assert (evidence.start, evidence.end) == (5, 22)


def test_ligature_table_covers_every_code_point():
    """The blocks scanned for ligatures hold all of them, in this Python's Unicode."""
    everywhere = {}
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if not ch.isalpha() or not unicodedata.decomposition(ch).startswith("<"):
            continue
        wide = unicodedata.normalize("NFKC", ch)
        if len(wide) > 1 and all(c.isalnum() for c in wide):
            everywhere[ch] = wide
    assert _ligatures() == everywhere
    assert {"ﬁ": "fi", "ﬂ": "fl", "ĳ": "ij"}.items() <= everywhere.items()


WORDS = [
    "marfil de elefante", "artificial", "buffalo horn", "confiscated", "figurine", "fish maw",
    "stuffed animal", "traffic", "best offer", "for sale", "ivory", "fine", "office", "flakes",
    "waffle", "first", "bangle", "price", "100 usd", "vòng ngà", "ngà voi", "giả",
]  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=8),
    joints=st.lists(st.sampled_from([" ", ", ", ". ", "\n", " - "]), min_size=8, max_size=8),
    data=st.data(),
)
def test_random_ligatures_change_nothing_but_offsets(matcher, words, joints, data):
    plain = words[0] + "".join(j + w for j, w in zip(joints, words[1:], strict=False))
    # write a random choice of the "ff", "fi", "st" ... sequences as ligatures
    pieces, at = [], 0
    for m in _PLAIN.finditer(plain):
        pieces.append(plain[at : m.start()])
        ligate = data.draw(st.booleans())
        pieces.append(LIGATURES[m.group()] if ligate else m.group())
        at = m.end()
    text = "".join(pieces) + plain[at:]
    assert unicodedata.normalize("NFKC", text) == unicodedata.normalize("NFKC", plain)
    found, reference = matcher.match(text), matcher.match(plain)
    assert summary(found) == summary(reference)
    assert summary(matcher._match(text, None, fast=False)) == summary(reference)
    for e, r in zip(found, reference, strict=True):
        assert text[e.start : e.end] == e.matched_text
        assert unicodedata.normalize("NFKC", e.matched_text) == r.matched_text
