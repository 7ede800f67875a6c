"""Offline language detection for listings without a stated language."""

from __future__ import annotations

import pytest

from wildml.lang import detect_lang


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Carved bangle for sale, ships worldwide, message me for the price", "en"),
        ("出售老手镯，保真，价格私聊，全国包邮", "zh"),
        ("Bán vòng tay cũ, hàng đẹp, giá tốt, liên hệ qua Zalo", "vi"),
        ("ขายกำไลข้อมือของเก่า สภาพดี ราคาคุยกันได้", "th"),
        ("Jual gelang antik, kondisi bagus, harga nego, kirim ke seluruh Indonesia", "id"),
        ("À vendre bracelet ancien, très bon état, envoi possible partout en France", "fr"),
        ("Vendo pulseira antiga, ótimo estado, envio para todo o Brasil", "pt"),
        ("Vendo pulsera antigua, muy buen estado, envío a toda España", "es"),
    ],
)
def test_languages_of_the_sample(text, lang):
    assert detect_lang(text)[0] == lang


@pytest.mark.parametrize("text", ["", "   ", "🐘🐘", "12345", "ok"])
def test_too_little_text_is_unknown(text):
    assert detect_lang(text)[0] == "und"


def test_masks_and_links_are_ignored():
    assert detect_lang("{{MENTION}} {{URL}} http://example.com/x @someone #tag")[0] == "und"
