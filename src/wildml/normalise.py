"""Text normalisation for listings: one canonical form for models, the original for display.

The canonical form is Unicode NFKC with zero-width and control characters removed and runs of
white space collapsed to one space. NFKC folds full-width letters and compatibility forms that
sellers use to slip past keyword filters, without changing what the text says.
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width and invisible formatting characters that split words without showing anything.
_INVISIBLE = {
    "\u00ad",  # soft hyphen
    "\u034f",  # combining grapheme joiner
    "\u061c",  # Arabic letter mark
    "\u115f",
    "\u1160",
    "\u17b4",
    "\u17b5",
    "\u180e",  # Mongolian vowel separator
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u2060",
    "\u2061",
    "\u2062",
    "\u2063",
    "\u2064",
    "\u3164",  # Hangul filler
    "\ufeff",
    "\uffa0",
}
_WHITESPACE = re.compile(r"\s+")
# The invisible characters that str.isprintable() accepts (fillers, combining joiners).
_PRINTABLE_INVISIBLE = re.compile(
    "[" + "".join(c for c in sorted(_INVISIBLE) if c.isprintable()) + "]"
)


def _clean_char(char: str) -> str:
    if char in _INVISIBLE:
        return ""
    category = unicodedata.category(char)
    if category == "Cc" or char in "\u2028\u2029":
        return " "
    if category == "Cf" or category == "Cs":
        # Remaining format characters (bidi controls, tags) and lone surrogates left by
        # undecodable input carry no meaning for a reader.
        return ""
    if category == "Co" or category == "Cn":
        return ""
    return char


def _clean_chars(text: str) -> str:
    """Drop or blank what :func:`_clean_char` would, one character at a time."""
    return "".join(_clean_char(char) for char in text)


def _one_pass(text: str) -> str:
    # Most listings hold nothing to clean but line breaks and tabs. White space is collapsed
    # at the end anyway, so collapsing it first and finding the rest printable proves that
    # the character-by-character pass would change nothing else, at C speed.
    spaced = " ".join(text.split())
    if spaced.isprintable() and not _PRINTABLE_INVISIBLE.search(spaced):
        cleaned = spaced
    else:
        cleaned = _clean_chars(text)
    cleaned = unicodedata.normalize("NFKC", cleaned)
    return _WHITESPACE.sub(" ", cleaned).strip()


def normalise_text(text: str | None) -> str:
    """Return the canonical form of a listing text.

    Parameters
    ----------
    text
        Any string; ``None`` is treated as empty.

    Returns
    -------
    str
        NFKC-normalised text without zero-width, control, private-use or unassigned code
        points, with white space collapsed to single spaces and stripped at both ends. The
        function is idempotent.
    """
    if not text:
        return ""
    result = _one_pass(text)
    # NFKC can expose a character that the first pass would have removed (rare
    # compatibility decompositions); repeat until nothing changes.
    for _ in range(3):
        again = _one_pass(result)
        if again == result:
            break
        result = again
    return result


# Bytes that are not valid UTF-8 are kept as code points in plane 16's private-use area
# (U+10FF80..U+10FFFF, one per byte) so that a whole table can still be parsed and the rows
# holding them found and rejected. No real listing uses that range.
_MARK_BASE = 0x10FF00
_SURROGATE = re.compile("[\udc80-\udcff]")
_MARKED = re.compile("[\U0010ff80-\U0010ffff]")


def mark_undecodable(raw: bytes) -> str:
    """Decode UTF-8, turning each invalid byte into a marker that :func:`has_undecodable` sees."""
    text = raw.decode("utf-8", "surrogateescape")
    return _SURROGATE.sub(lambda match: chr(_MARK_BASE + ord(match.group()) - 0xDC00), text)


def has_undecodable(text: str | None) -> bool:
    """True when the text holds bytes that were not valid UTF-8 (marked or as surrogates)."""
    if not text:
        return False
    return bool(_MARKED.search(text) or _SURROGATE.search(text))
