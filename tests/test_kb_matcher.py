"""The knowledge-base matcher: positives found per language, look-alikes defused, exact spans."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildml.kb import Evidence, Matcher


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher()


def _only(matcher: Matcher, text: str, product: str) -> Evidence:
    found = [e for e in matcher.match(text) if e.product == product]
    assert found, f"no {product} evidence in {text!r}: {matcher.match(text)}"
    return found[0]


# (lang, text, matched text, product, kind, status)
POSITIVES = [
    (
        "en",
        "Genuine elephant ivory bangle for sale, DM me",
        "elephant ivory",
        "ivory",
        "plain",
        "confirmed",
    ),
    (
        "en",
        "pre-ban ivory netsuke, price negotiable",
        "pre-ban ivory",
        "ivory",
        "code_word",
        "confirmed",
    ),
    ("en", "i.v.o.r.y beads for sale", "i.v.o.r.y", "ivory", "obfuscated", "confirmed"),
    ("en", "Selling 1v0ry tusks, whatsapp", "1v0ry tusks", "ivory", "obfuscated", "confirmed"),
    ("en", "Real іvоrу bangle, ship worldwide", "іvоrу", "ivory", "obfuscated", "confirmed"),
    (
        "en",
        "pangolin scales 5 kg wholesale",
        "pangolin scales",
        "pangolin_scale",
        "plain",
        "confirmed",
    ),
    ("en", "🦏 horn powder for sale", "🦏", "rhino_horn", "code_word", "confirmed"),
    ("zh-Hans", "出售象牙手镯，价格私聊", "象牙", "ivory", "plain", "confirmed"),
    ("zh-Hans", "白塑料手镯 出售 加微", "白塑料", "ivory", "code_word", "confirmed"),
    ("zh-Hans", "出售象 牙手镯", "象 牙", "ivory", "obfuscated", "confirmed"),
    ("zh-Hans", "炮山甲 现货 包邮", "炮山甲", "pangolin_scale", "plain", "confirmed"),
    ("zh-Hant", "穿山甲鱗片 現貨 私訊", "穿山甲鱗片", "pangolin_scale", "plain", "confirmed"),
    ("zh-Hant", "白塑膠手鐲 售價私訊", "白塑膠", "ivory", "code_word", "confirmed"),
    ("zh-Hant", "出售犀 角 粉", "犀 角 粉", "rhino_horn", "obfuscated", "confirmed"),
    (
        "vi",
        "Bán sừng tê giác nguyên chiếc, liên hệ zalo",
        "sừng tê giác",
        "rhino_horn",
        "plain",
        "confirmed",
    ),
    ("vi", "can ban nga voi gia re", "nga voi", "ivory", "plain", "confirmed"),
    ("vi", "bán n-g-à v-o-i giá tốt", "n-g-à v-o-i", "ivory", "obfuscated", "confirmed"),
    (
        "vi",
        "xuyên sơn giáp, liên hệ zalo",
        "xuyên sơn giáp",
        "pangolin_scale",
        "plain",
        "confirmed",
    ),
    ("th", "ขายงาช้างแท้ ราคาถูก", "งาช้าง", "ivory", "plain", "confirmed"),
    ("th", "ขายเกล็ดนิ่ม พร้อมส่ง", "เกล็ดนิ่ม", "pangolin_scale", "plain", "confirmed"),
    ("th", "ขายงา\u200bช้าง ราคาถูก", "งา\u200bช้าง", "ivory", "obfuscated", "confirmed"),
    ("id", "Jual gading gajah asli, harga nego", "gading gajah", "ivory", "plain", "confirmed"),
    ("id", "jual g4ding gajah", "g4ding gajah", "ivory", "obfuscated", "confirmed"),
    (
        "id",
        "sisik trenggiling siap kirim",
        "sisik trenggiling",
        "pangolin_scale",
        "plain",
        "confirmed",
    ),
    (
        "fr",
        "Vends ivoire d’éléphant, prix à débattre",
        "ivoire d’éléphant",
        "ivory",
        "plain",
        "confirmed",
    ),
    ("fr", "Vends 1voire ancien", "1voire ancien", "ivory", "obfuscated", "confirmed"),
    (
        "fr",
        "corne de rhinocéros à vendre",
        "corne de rhinocéros",
        "rhino_horn",
        "plain",
        "confirmed",
    ),
    (
        "pt",
        "Vendo presa de elefante, preço bom",
        "presa de elefante",
        "ivory",
        "plain",
        "confirmed",
    ),
    ("pt", "Vendo m@rfim de elefante", "m@rfim de elefante", "ivory", "obfuscated", "confirmed"),
    (
        "pt",
        "escamas de pangolim à venda",
        "escamas de pangolim",
        "pangolin_scale",
        "plain",
        "confirmed",
    ),
    (
        "es",
        "Vendo cuerno de rinoceronte, envíos",
        "cuerno de rinoceronte",
        "rhino_horn",
        "plain",
        "confirmed",
    ),
    (
        "es",
        "Vendo c.u.e.r.n.o de rinoceronte",
        "c.u.e.r.n.o de rinoceronte",
        "rhino_horn",
        "obfuscated",
        "confirmed",
    ),
    (
        "es",
        "Se vende buche de totoaba, precio",
        "buche de totoaba",
        "totoaba_maw",
        "plain",
        "confirmed",
    ),
]


@pytest.mark.parametrize(("lang", "text", "matched", "product", "kind", "status"), POSITIVES)
def test_positive_found_with_exact_span(matcher, lang, text, matched, product, kind, status):
    ev = _only(matcher, text, product)
    assert text[ev.start : ev.end] == ev.matched_text == matched
    assert (ev.kind, ev.status) == (kind, status), ev
    if lang != "en" and kind == "plain":
        assert ev.lang == lang


# (lang, text, product, rule prefix)
LOOKALIKES = [
    ("en", "faux ivory resin figurine for sale", "ivory", "imitation"),
    ("en", "ivory colour wedding dress for sale", "ivory", "colour"),
    ("en", "vegetable ivory (tagua) buttons for sale", "ivory", "lookalike_material"),
    ("en", "Customs seized 2 tonnes of ivory at the port", "ivory", "news_report"),
    ("en", "Ivory Coast holiday photos", "ivory", "place_name"),
    ("en", "rhino beetle larvae for sale", "rhino_horn", "other_animal"),
    ("zh-Hans", "仿象牙树脂摆件 出售", "ivory", "imitation"),
    ("zh-Hans", "海关查获象牙100公斤", "ivory", "news_report"),
    ("zh-Hans", "象牙白衬衫 包邮", "ivory", "colour"),
    ("zh-Hant", "廣角鏡頭 出售", "rhino_horn", "lookalike_product"),
    ("vi", "vòng tay màu ngà, giá rẻ", "ivory", "colour"),
    ("vi", "Công an bắt giữ 2 tấn ngà voi", "ivory", "news_report"),
    ("th", "กำไลสีงาช้าง ราคาถูก", "ivory", "colour"),
    ("id", "gelang gading imitasi, harga murah", "ivory", "imitation"),
    ("id", "Polisi menyita sisik trenggiling", "pangolin_scale", "news_report"),
    ("fr", "Robe couleur ivoire à vendre", "ivory", "colour"),
    ("pt", "Vestido branco marfim à venda", "ivory", "colour"),
    ("es", "Se vende collar color marfil", "ivory", "colour"),
    ("es", "Aduana: decomiso de colmillos de elefante", "ivory", "news_report"),
]


@pytest.mark.parametrize(("lang", "text", "product", "rule"), LOOKALIKES)
def test_lookalike_defused(matcher, lang, text, product, rule):
    ev = _only(matcher, text, product)
    assert ev.status == "defused", ev
    assert ev.rule is not None and ev.rule.startswith(rule + ":"), ev.rule
    assert text[ev.start : ev.end] == ev.matched_text


@pytest.mark.parametrize(
    "text",
    [
        "Brand new wedding dress, size 10, for sale",
        "出售二手手机，价格私聊",
        "tiger balm for sale, 20g",
        "Bán điện thoại giá rẻ",
        "tôi thích đi du lịch ở Nga",  # "Nga" (Russia) is not "ngà"
        "ขายเสื้อผ้า ราคาถูก",
        "🐘 cute elephant sticker",
    ],
)
def test_no_evidence_in_ordinary_listings(matcher, text):
    assert [e for e in matcher.match(text) if e.status != "defused"] == []


def test_not_fake_is_confirming_not_defusing(matcher):
    ev = _only(matcher, "real ivory bangle, not fake, for sale", "ivory")
    assert ev.status == "confirmed"


def test_position_rule_faux_only_before(matcher):
    text = "Selling real 1vory bangle, faux ivory also"
    statuses = [e.status for e in matcher.match(text)]
    assert statuses == ["confirmed", "defused"]


def test_emoji_needs_product_context(matcher):
    assert matcher.match("🐘🐘 love elephants") == []
    assert _only(matcher, "🐘 bangle for sale", "ivory").kind == "code_word"


def test_lang_hint_picks_entry(matcher):
    assert _only(matcher, "pangolin à vendre", "pangolin_scale").lang == "en"
    assert matcher.match("pangolin à vendre", lang="fr")[0].lang == "fr"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_never_crashes_and_spans_in_text(text):
    for ev in _MATCHER.match(text):
        assert 0 <= ev.start < ev.end <= len(text)
        assert text[ev.start : ev.end] == ev.matched_text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ivory象牙 .-_1!0@|\u200bабвеорсух", max_size=80))
def test_obfuscation_alphabet_spans_in_text(text):
    for ev in _MATCHER.match(text):
        assert 0 <= ev.start < ev.end <= len(text)
        assert text[ev.start : ev.end] == ev.matched_text


_MATCHER = Matcher()


@pytest.mark.parametrize(
    ("text", "product"),
    [
        ("Resin bangle, it is not ivory, for sale", "ivory"),
        ("É resina, não é marfim. Vendo", "ivory"),
        ("Es cuerno de búfalo, no es marfil. Vendo", "ivory"),
        ("树脂手镯，不是象牙，出售", "ivory"),
        ("Nhựa resin, không phải ngà voi. Bán", "ivory"),
        ("Asli tanduk kerbau, bukan gading. Jual", "ivory"),
    ],
)
def test_negated_term_defused(matcher, text, product):
    ev = _only(matcher, text, product)
    assert ev.status == "defused" and ev.rule.startswith("negation:"), ev


def test_hashtag_compounds(matcher):
    text = "New in! #mammothivory #forsale #wallart"
    ev = _only(matcher, text, "ivory")
    assert ev.matched_text == "ivory" and text[ev.start : ev.end] == "ivory"
    assert ev.status == "confirmed"
