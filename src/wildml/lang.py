"""Offline language identification for listings that do not state their language."""

from __future__ import annotations

import functools
import logging
import re

logger = logging.getLogger(__name__)

# Scripts that settle the language on their own; py3langid is then only a tie-breaker.
_THAI = re.compile(r"[\u0e00-\u0e7f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LETTER = re.compile(r"\w", re.UNICODE)


# Languages the detector may answer with. Restricting the set stops short marketplace posts
# from being labelled with rare languages that merely share a few character n-grams.
DEFAULT_LANGUAGES = (
    "en", "zh", "vi", "th", "id", "ms", "fr", "pt", "es", "de", "it", "nl", "ru", "ja", "ko",
    "ar", "hi", "tl", "sw", "tr", "pl", "km", "lo", "my",
)  # fmt: skip
# Masked mentions and links, raw links, handles, retweet markers and hash signs say nothing
# about the language and confuse the detector on short posts.
_NOISE = re.compile(r"\{\{\w+\}\}|https?://\S+|www\.\S+|@\w+|\bRT\b|#")


@functools.lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...] = DEFAULT_LANGUAGES):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = set(identifier.nb_classes)
    identifier.set_languages([lang for lang in languages if lang in known])
    return identifier


def detect_lang(
    text: str,
    *,
    min_chars: int = 12,
    min_confidence: float = 0.3,
    fallback: str = "und",
    languages: tuple[str, ...] = DEFAULT_LANGUAGES,
) -> tuple[str, float]:
    """Guess the ISO 639-1 language of ``text``.

    Parameters
    ----------
    text
        Normalised listing text.
    min_chars
        Texts with fewer letters than this get ``fallback``: a guess would be noise.
    min_confidence
        Below this normalised probability the result is ``fallback``.
    fallback
        Code for "unknown".
    languages
        Codes the statistical detector may return (scripts such as Thai or Han are decided
        before it, whatever this list holds).

    Returns
    -------
    (lang, confidence)
    """
    text = _NOISE.sub(" ", text)
    letters = len(_LETTER.findall(text))
    if letters == 0:
        return fallback, 0.0
    script = _script_language(text, letters)
    if script:
        return script, 1.0
    if letters < min_chars:
        return fallback, 0.0
    lang, prob = _identifier(tuple(languages)).classify(text)
    if prob < min_confidence:
        return fallback, float(prob)
    return str(lang), float(prob)


def _script_language(text: str, letters: int) -> str | None:
    """Return a language when one script dominates the letters, else None."""
    counts = {
        "th": len(_THAI.findall(text)),
        "ja": len(_KANA.findall(text)),
        "ko": len(_HANGUL.findall(text)),
        "zh": len(_HAN.findall(text)),
    }
    if counts["ja"] >= 2:
        return "ja"
    for lang in ("th", "ko", "zh"):
        if counts[lang] >= max(2, 0.3 * letters):
            return lang
    return None
