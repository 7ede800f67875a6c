"""Disguises the one-pass scan used to miss: single inner splits, bare Vietnamese context words
and digits or symbols inside a Thai word."""

from __future__ import annotations

import os

import pytest

from wildml.kb import Matcher

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher()


def _find(matcher: Matcher, text: str, product: str) -> list:
    return [e for e in matcher.match(text) if e.product == product]


# (lang, text, matched text, product, status)
SPLIT_ONCE = [
    ("en", "ivo ry bangle for sale", "ivo ry", "ivory", "confirmed"),
    ("en", "i-vory beads for sale", "i-vory", "ivory", "confirmed"),
    ("en", "pango lin scales for sale", "pango lin scales", "pangolin_scale", "confirmed"),
    ("vi", "vòng ng à, giá tốt", "vòng ng à", "ivory", "confirmed"),
    ("id", "sisik treng giling siap kirim", "sisik treng giling", "pangolin_scale", "confirmed"),
    ("fr", "corne de rhino céros à vendre", "corne de rhino céros", "rhino_horn", "confirmed"),
    ("pt", "vendo marf.im de elefante", "marf.im de elefante", "ivory", "confirmed"),
]


@pytest.mark.parametrize(("lang", "text", "matched", "product", "status"), SPLIT_ONCE)
def test_single_inner_split_found(matcher, lang, text, matched, product, status):
    found = _find(matcher, text, product)
    assert found, f"no {product} in {text!r}"
    ev = found[0]
    assert text[ev.start : ev.end] == ev.matched_text == matched
    assert (ev.kind, ev.status) == ("obfuscated", status), ev


@pytest.mark.parametrize(
    "text",
    [
        "I vory much like it",  # a lone letter next to a word is a word, not half a term
        "ivor y beads",  # Spanish "y" after a word
        "I very much like it, a vory nice day",
        "tôi thích đi du lịch ở Ng a",
    ],
)
def test_split_does_not_join_real_words(matcher, text):
    assert matcher.match(text) == []


@pytest.mark.parametrize(
    ("text", "status", "rule"),
    [
        ("ban nga voi, lh 0909", "confirmed", "sale_word:bán"),
        ("nga voi nhua, giao hang", "defused", "lookalike_material:nhựa"),
        ("vong tay mau nga voi", "defused", "colour:màu ngà"),
        # bare "gia" is both giá (price) and giả (fake): it decides nothing
        ("nga voi gia", "neutral", None),
        ("nga voi gia re", "confirmed", "price:giá rẻ"),
    ],
)
def test_vietnamese_context_words_without_diacritics(matcher, text, status, rule):
    ev = _find(matcher, text, "ivory")[0]
    assert (ev.status, ev.rule) == (status, rule), ev


def test_vietnamese_bare_context_only_in_bare_listings(matcher):
    # a listing typed with diacritics writes "bán" for sale: its "ban" is another word
    ev = _find(matcher, "ban ngà voi", "ivory")[0]
    assert ev.status == "neutral", ev


@pytest.mark.parametrize(
    ("text", "matched", "product"),
    [
        ("ขายเกล็ดตัวน1่ม พร้อมส่ง", "เกล็ดตัวน1่ม", "pangolin_scale"),  # digit for a vowel
        ("ขายเกล็ดตัว.นิ่ม", "เกล็ดตัว.นิ่ม", "pangolin_scale"),  # symbol inserted
        ("ขายงาช้@ง ราคาถูก", "งาช้@ง", "ivory"),
        ("ขายงาช้1าง", "งาช้1าง", "ivory"),
    ],
)
def test_thai_digit_or_symbol_inside_word(matcher, text, matched, product):
    ev = _find(matcher, text, product)[0]
    assert text[ev.start : ev.end] == ev.matched_text == matched
    assert (ev.kind, ev.status) == ("obfuscated", "confirmed"), ev


def test_thai_price_digits_invent_nothing(matcher):
    assert matcher.match("ขายเสื้อ ราคา1บาท ส่งฟรี") == []
