"""Loading and validating the knowledge base: clear errors that name the file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wildml.kb import KBError, default_kb_dir, load_kb


@pytest.fixture()
def kb_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped knowledge base."""
    return Path(shutil.copytree(default_kb_dir(), tmp_path / "kb"))


def _append_term(path: Path, lang_block: str, entry: str) -> None:
    text = path.read_text(encoding="utf-8")
    marker = f"  {lang_block}:\n    terms:\n"
    assert marker in text
    path.write_text(text.replace(marker, marker + f"      - {entry}\n", 1), encoding="utf-8")


def test_shipped_kb_is_valid():
    kb = load_kb()
    assert kb.errors == []
    assert {"ivory", "pangolin_scale", "rhino_horn"} <= set(kb.products)
    assert len(kb.products) >= 9
    for product in kb.products.values():
        assert all(kb.codes[c].field == "term" for c in product.cites_terms)


@pytest.mark.parametrize("product", ["ivory", "pangolin_scale", "rhino_horn"])
@pytest.mark.parametrize("lang", ["en", "zh-Hans", "zh-Hant", "vi", "th", "id", "fr", "pt", "es"])
def test_core_products_cover_every_language(product, lang):
    kb = load_kb()
    assert kb.terms(product, lang), f"{product} has no {lang} terms"
    contexts = {(e.lang, e.category) for e in kb.entries if e.product is None}
    assert {(lang, "confirm"), (lang, "defuse")} <= contexts


def test_every_entry_cites_a_known_source():
    kb = load_kb()
    assert all(e.source in kb.sources and 0 <= e.confidence <= 1 for e in kb.entries)


def test_bad_yaml_names_file_and_line(kb_copy):
    path = kb_copy / "terms" / "ivory.yaml"
    path.write_text("product: ivory\nlanguages:\n  en: [unclosed\n", encoding="utf-8")
    with pytest.raises(KBError, match=r"terms/ivory\.yaml:\d+: error: not valid YAML"):
        load_kb(kb_copy)


def test_missing_field_names_file_and_line(kb_copy):
    path = kb_copy / "terms" / "rhino_horn.yaml"
    _append_term(
        path, "fr", "{term: corne de rhino en poudre, kind: plain, source: plain-language}"
    )
    with pytest.raises(KBError) as err:
        load_kb(kb_copy)
    message = str(err.value)
    assert "terms/rhino_horn.yaml:" in message and "confidence" in message
    assert "Field required" in message


def test_unknown_product_reference(kb_copy):
    (kb_copy / "terms" / "unicorn_horn.yaml").write_text(
        "product: unicorn_horn\nlanguages:\n  en:\n    terms:\n"
        "      - {term: unicorn horn, source: plain-language, confidence: 0.5}\n",
        encoding="utf-8",
    )
    with pytest.raises(KBError, match=r"terms/unicorn_horn\.yaml:1: error: unknown product"):
        load_kb(kb_copy)


def test_unknown_species_and_code(kb_copy):
    path = kb_copy / "products.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "species: [panthera_tigris]", "species: [panthera_tigriss]"
    )
    path.write_text(text.replace("cites_terms: [SWI]", "cites_terms: [SWX]"), encoding="utf-8")
    with pytest.raises(KBError) as err:
        load_kb(kb_copy)
    assert "unknown species 'panthera_tigriss'" in str(err.value)
    assert "'SWX' is not a CITES trade-term code" in str(err.value)


def test_conflicting_term_names_both_places(kb_copy):
    path = kb_copy / "terms" / "ivory.yaml"
    _append_term(
        path, "en", "{term: Rhino Horn, kind: plain, source: plain-language, confidence: 0.5}"
    )
    with pytest.raises(KBError) as err:
        load_kb(kb_copy)
    message = str(err.value)
    assert "conflicting term" in message and "rhino horn" in message.lower()
    assert "terms/ivory.yaml:" in message and "terms/rhino_horn.yaml:" in message


def test_duplicate_term_after_folding(kb_copy):
    path = kb_copy / "terms" / "ivory.yaml"
    _append_term(
        path, "en", "{term: ＥＬＥＰＨＡＮＴ  Ivory, source: plain-language, confidence: 0.5}"
    )
    with pytest.raises(KBError, match=r"duplicate term"):
        load_kb(kb_copy)


def test_unknown_source(kb_copy):
    path = kb_copy / "terms" / "ivory.yaml"
    _append_term(path, "en", "{term: tusk ivory, source: TODO, confidence: 0.3}")
    with pytest.raises(KBError, match=r"unknown source 'TODO'"):
        load_kb(kb_copy)


def test_missing_required_language_is_reported_not_raised_when_lenient(kb_copy):
    path = kb_copy / "terms" / "pangolin_scale.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  th:\n")
    end = text.index("  id:\n")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    kb = load_kb(kb_copy, strict=False)
    assert any("no terms in required language 'th'" in str(i) for i in kb.errors)
    with pytest.raises(KBError, match=r"products\.yaml"):
        load_kb(kb_copy)
