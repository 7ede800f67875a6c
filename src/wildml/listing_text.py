"""A listing's text and language, prepared the same way for training and for scoring.

``prepare`` builds training listings with these functions and ``wildml score`` builds new
listings with them, so a listing gets the same model input and the same language tag in both.

A language the source states is kept when it names a language: ``EN``, ``en-US``, ``en_GB``,
``eng`` and ``English`` all become ``en``, ``zh-Hant``, ``zh-TW`` and ``Chinese`` become
``zh``. A stated value that names no ISO 639-1 language (``xx``, ``n/a``, ``und``) is not
trusted: the language is detected from the text and the record says so in ``lang_note``
(``und``, "undetermined", counts as no statement at all).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from wildml.lang import DEFAULT_LANGUAGES, detect_lang
from wildml.normalise import normalise_text

logger = logging.getLogger(__name__)

# Every ISO 639-1 code (the deprecated iw/in/ji are mapped to he/id/yi below).
_ISO_639_1_CODES = """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv
    cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr
    ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw
    ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv
    ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr
    ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi
    yo za zh zu
"""
ISO_639_1 = frozenset(_ISO_639_1_CODES.split())

# Names and three-letter codes sources use for the languages the detector and the knowledge
# base know (lang.DEFAULT_LANGUAGES), lower-cased.
LANGUAGE_ALIASES: dict[str, str] = {
    "iw": "he", "in": "id", "ji": "yi",
    "english": "en", "eng": "en",
    "chinese": "zh", "mandarin": "zh", "cantonese": "zh", "zho": "zh", "chi": "zh",
    "cmn": "zh", "yue": "zh", "中文": "zh", "汉语": "zh", "漢語": "zh", "普通话": "zh",
    "vietnamese": "vi", "vie": "vi", "tiếng việt": "vi", "tieng viet": "vi",
    "thai": "th", "tha": "th", "ไทย": "th", "ภาษาไทย": "th",
    "indonesian": "id", "bahasa indonesia": "id", "ind": "id",
    "malay": "ms", "bahasa melayu": "ms", "msa": "ms", "may": "ms", "zsm": "ms",
    "french": "fr", "français": "fr", "francais": "fr", "fra": "fr", "fre": "fr",
    "portuguese": "pt", "português": "pt", "portugues": "pt", "por": "pt",
    "spanish": "es", "español": "es", "espanol": "es", "castellano": "es", "spa": "es",
    "german": "de", "deutsch": "de", "deu": "de", "ger": "de",
    "italian": "it", "italiano": "it", "ita": "it",
    "dutch": "nl", "nederlands": "nl", "nld": "nl", "dut": "nl",
    "russian": "ru", "русский": "ru", "rus": "ru",
    "japanese": "ja", "日本語": "ja", "jpn": "ja",
    "korean": "ko", "한국어": "ko", "kor": "ko",
    "arabic": "ar", "العربية": "ar", "ara": "ar",
    "hindi": "hi", "हिन्दी": "hi", "hin": "hi",
    "tagalog": "tl", "filipino": "tl", "tgl": "tl", "fil": "tl",
    "swahili": "sw", "kiswahili": "sw", "swa": "sw",
    "turkish": "tr", "türkçe": "tr", "tur": "tr",
    "polish": "pl", "polski": "pl", "pol": "pl",
    "khmer": "km", "khm": "km",
    "lao": "lo",
    "burmese": "my", "myanmar": "my", "mya": "my", "bur": "my",
}  # fmt: skip
_SUBTAG = re.compile(r"[-_\s]+")
# "undetermined" (ISO 639-2), what a source writes when it does not know: detected, no note.
_NOT_STATED = frozenset({"und"})
# The longest stated value repeated in a note or a report key; longer ones are cut.
_NOTE_CHARS = 40


def text_fields(raw: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The model's text of a listing and the text as written.

    Parameters
    ----------
    raw
        One listing's contract fields; ``text`` is used, else ``title`` and ``description``
        joined by a line break.
    cfg
        Text settings: ``max_text_chars`` (default 100 000) caps the normalised text.

    Returns
    -------
    dict
        ``text`` (normalised, see :func:`wildml.normalise.normalise_text`, at most
        ``max_text_chars`` characters), ``text_original`` (as written, at most four times that)
        and ``truncated`` (whether the normalised text was cut).
    """
    text_raw = str(raw.get("text", "") or "")
    if not text_raw.strip():
        parts = [str(raw.get(name, "") or "") for name in ("title", "description")]
        text_raw = "\n".join(part for part in parts if part.strip())
    text = normalise_text(text_raw)
    limit = int(cfg.get("max_text_chars", 100_000))
    return {
        "text": text[:limit],
        "text_original": text_raw[: 4 * limit],
        "truncated": len(text) > limit,
    }


def normalise_lang_code(value: object) -> str | None:
    """The ISO 639-1 code a stated language names, or None when it names none.

    Case, white space, region and script subtags are ignored (``EN``, ``en-US``, ``en_GB``,
    ``zh-Hant``, ``zh-TW``); English and native names and three-letter codes of the languages
    the project supports are understood (``English``, ``中文``, ``vie``).

    Examples
    --------
    >>> [normalise_lang_code(v) for v in ("EN", "zh-Hant", "pt_BR", "Thai", "xx", "")]
    ['en', 'zh', 'pt', 'th', None, None]
    """
    text = " ".join(str(value or "").split()).casefold()
    if not text:
        return None
    if text in LANGUAGE_ALIASES:
        return LANGUAGE_ALIASES[text]
    primary = _SUBTAG.split(text, maxsplit=1)[0]
    primary = LANGUAGE_ALIASES.get(primary, primary)
    return primary if primary in ISO_639_1 else None


def detect_or_keep_language(
    record: dict[str, Any], raw: Mapping[str, Any], cfg: Mapping[str, Any]
) -> None:
    """Set a listing's language: the stated one when it is known, else detected from the text.

    Parameters
    ----------
    record
        The listing being built; must hold its normalised ``text``. Changed in place: ``lang``
        (an ISO 639-1 code, or ``lang_detect.fallback`` when detection cannot tell),
        ``lang_source`` (``given`` or ``detected``), ``lang_note`` (``""``, or
        ``given 'xx' unknown; detected``) and ``lang_unknown`` (the unknown stated value,
        lower-cased and cut to 40 characters, ``""`` otherwise).
    raw
        The listing's contract fields; ``lang`` is the stated language.
    cfg
        Settings; ``lang_detect`` holds ``min_chars``, ``min_confidence``, ``fallback`` and
        ``languages`` for :func:`wildml.lang.detect_lang`.
    """
    stated = " ".join(str(raw.get("lang", "") or "").split())
    code = normalise_lang_code(stated)
    record["lang_note"], record["lang_unknown"] = "", ""
    if code is not None:
        record["lang"], record["lang_source"] = code, "given"
        return
    record["lang"], record["lang_source"] = _detect(record["text"], cfg), "detected"
    if stated and stated.casefold() not in _NOT_STATED:
        shown = stated.casefold()[:_NOTE_CHARS]
        record["lang_unknown"] = shown
        record["lang_note"] = f"given {shown!r} unknown; detected"


def _detect(text: str, cfg: Mapping[str, Any]) -> str:
    options = cfg.get("lang_detect") or {}
    lang, _confidence = detect_lang(
        text,
        min_chars=int(options.get("min_chars", 12)),
        min_confidence=float(options.get("min_confidence", 0.3)),
        fallback=str(options.get("fallback", "und")),
        languages=tuple(options.get("languages") or DEFAULT_LANGUAGES),
    )
    return lang
