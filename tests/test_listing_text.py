"""A listing's text and language, as prepare and the scorer both build them."""

from __future__ import annotations

import pytest

from wildml.listing_text import detect_or_keep_language, normalise_lang_code, text_fields

CFG = {"max_text_chars": 1000, "lang_detect": {"min_chars": 12, "fallback": "und"}}
TEXTS = {
    "en": "Carved ivory bangle for sale, 58 mm, message me for the price",
    "zh": "出售穿山甲片，一公斤起，价格私聊",
    "vi": "Sừng tê giác nguyên chiếc, bao test, liên hệ Zalo để biết giá",
    "th": "ขายเกล็ดตัวนิ่มแท้ ราคาถูก ส่งทั่วประเทศ",
}


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("en", "en"),
        ("EN", "en"),
        (" en-US ", "en"),
        ("en_GB", "en"),
        ("zh-Hant", "zh"),
        ("zh-TW", "zh"),
        ("zh_CN", "zh"),
        ("zh-Hans-CN", "zh"),
        ("pt-BR", "pt"),
        ("English", "en"),
        ("thai", "th"),
        ("Chinese", "zh"),
        ("Vietnamese", "vi"),
        ("Bahasa Indonesia", "id"),
        ("中文", "zh"),
        ("eng", "en"),
        ("fil", "tl"),
        ("iw", "he"),
        ("sw", "sw"),
    ],
)
def test_stated_language_is_normalised(given, code):
    assert normalise_lang_code(given) == code


@pytest.mark.parametrize("given", ["xx", "Klingon", "e", "12", "en?", "", None, "und", "qq-US"])
def test_value_naming_no_language_is_none(given):
    assert normalise_lang_code(given) is None


@pytest.mark.parametrize("lang", sorted(TEXTS))
@pytest.mark.parametrize("stated", ["", "xx", "und"])
def test_unknown_or_missing_language_is_detected(lang, stated):
    record = {"text": TEXTS[lang]}
    detect_or_keep_language(record, {"lang": stated}, CFG)
    assert (record["lang"], record["lang_source"]) == (lang, "detected")
    if stated == "xx":
        assert record["lang_note"] == "given 'xx' unknown; detected"
        assert record["lang_unknown"] == "xx"
    else:  # nothing stated ("und" is how sources say so): nothing to note
        assert record["lang_note"] == record["lang_unknown"] == ""


@pytest.mark.parametrize(("stated", "code"), [("zh-TW", "zh"), ("EN", "en"), ("Thai", "th")])
def test_known_language_is_kept_even_against_the_text(stated, code):
    record = {"text": TEXTS["vi"]}
    detect_or_keep_language(record, {"lang": stated}, CFG)
    assert (record["lang"], record["lang_source"], record["lang_note"]) == (code, "given", "")


def test_note_repeats_a_long_unknown_value_cut_and_lower_cased():
    record = {"text": "short"}
    detect_or_keep_language(record, {"lang": "Some Language Nobody Knows " * 4}, CFG)
    assert record["lang"] == "und"  # too short to detect: the fallback
    assert len(record["lang_unknown"]) == 40
    assert record["lang_unknown"].startswith("some language nobody knows")


def test_text_falls_back_to_title_and_description_and_is_normalised():
    fields = text_fields({"text": " ", "title": "ＩＶＯＲＹ  bangle", "description": "58 mm"}, CFG)
    assert fields == {
        "text": "IVORY bangle 58 mm",
        "text_original": "ＩＶＯＲＹ  bangle\n58 mm",
        "truncated": False,
    }


def test_long_text_is_truncated_and_says_so():
    fields = text_fields({"text": "ivory " * 400}, {"max_text_chars": 100})
    assert len(fields["text"]) == 100 and fields["truncated"] is True
    assert len(fields["text_original"]) == 400
