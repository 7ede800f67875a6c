"""Folding: the matching form of a listing's text, with a way back to the original offsets.

Sellers disguise terms (``ＩＶＯＲＹ``, ``iv0ry``, ``i.v.o.r.y``, Cyrillic ``іvоrу``, ``象 牙``,
traditional ``鱗片`` for simplified ``鳞片``, ``nga voi`` without its diacritics). The matcher
looks for knowledge-base terms in up to four folded forms of a listing:

``base``
    one character in, one character out (``str.translate`` with a table built once): NFKC
    (full-width and mathematical letters), casefold, Latin diacritics dropped, traditional to
    simplified Chinese (OpenCC ``t2s``, per character), Cyrillic and Greek look-alikes to Latin.
    Offsets are the original offsets.
``skeleton``
    ``base`` with digit and symbol stand-ins collapsed onto the letters they imitate
    (``1 ! | l`` -> ``i``, ``0`` -> ``o``, ``@ 4`` -> ``a`` ...), also one to one. This is the
    form every listing is scanned in (one automaton pass); the base form of a matched span
    tells whether a stand-in was used.
``squeezed``
    the skeleton with separators removed (spaces, dots, dashes, zero-width characters), with
    an index array back to the original positions. Built only when the one pass found a gate
    key (the first three letters of a term split by one separator, ``i.v.o``, or a CJK term
    split by a space, ``象 牙``) or the text has a zero-width character: scanning a second form
    for every listing would halve the throughput.

``fold_full`` builds the skeleton form of raw text in one step (a byte table for ASCII text, a
NumPy code-point lookup otherwise); ``fold_full_reference`` is the same mapping by
``str.translate``, kept for tests.

Terms are folded with the same functions, so a term and its disguises meet in the same form.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np

# Characters that sellers put inside a word to break it apart, and ordinary spaces.
SEPARATORS = frozenset(
    " \t\n\r\f\v.-_*·•|/\\~,'\"`^:;=+()[]{}<>…‧・、。，．\u3000\u00a0"
    "\u00ad\u200b\u200c\u200d\u2060\ufeff\ufe0f"
)

_HOMOGLYPHS = {
    # Cyrillic look-alikes of Latin letters (lower and upper case)
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y",
    "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ɩ": "i", "ı": "i",
    # Greek look-alikes
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ζ": "z", "μ": "u",
}  # fmt: skip

# Stand-ins for letters, applied only in the skeleton form (they would break prices otherwise).
_SKELETON = {
    "1": "i", "!": "i", "|": "i", "l": "i", "¡": "i", "0": "o", "3": "e", "€": "e",
    "4": "a", "@": "a", "5": "s", "$": "s", "7": "t", "+": "t", "8": "b", "9": "g",
    "6": "g",
}  # fmt: skip

_FOLD_RANGES = (
    (0x0000, 0x0250),  # Latin, Latin-1, Latin Extended-A/B
    (0x0370, 0x0530),  # Greek, Cyrillic
    (0x1E00, 0x1F00),  # Latin Extended Additional (Vietnamese)
    (0x2000, 0x2070),  # general punctuation (NFKC spaces and dots)
    (0x2100, 0x2150),  # letter-like symbols
    (0x2460, 0x2500),  # circled letters and digits
    (0x3000, 0x3001),  # ideographic space
    (0xFF00, 0xFFF0),  # full-width forms
    (0x1D400, 0x1D800),  # mathematical alphanumerics (bold, italic, script ...)
    (0x1F130, 0x1F18A),  # squared and negative squared letters
)
_CJK_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))
_COMMON_RANGES = (
    _FOLD_RANGES
    + _CJK_RANGES
    + (
        (0x0E00, 0x0E80),  # Thai
        (0x2070, 0x2460),  # super/subscripts, currency, arrows, maths
        (0x2500, 0x2800),  # box drawing, shapes, dingbats
        (0x3000, 0x3100),  # CJK punctuation, kana
        (0xAC00, 0xD7A4),  # Hangul syllables
        (0xFE00, 0xFE10),  # variation selectors
        (0x1F000, 0x1FB00),  # emoji and pictographs
    )
)

# Separators that split a word in the squeezed-form gate keys (see ``gate_keys``).
GATE_SEPARATORS = (" ", ".", "-", "_", "*", "·", "•", "/", ",", "~", "'", "+")
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
_ZERO_WIDTH_RE = re.compile("[" + "".join(ZERO_WIDTH) + "]")


def _strip_marks(text: str) -> str:
    """Drop combining marks (Latin diacritics); ``đ`` has no decomposition, so map it."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("đ", "d")


def _fold_char(ch: str) -> str:
    """Fold one non-CJK character; may return the character itself."""
    folded = unicodedata.normalize("NFKC", ch).casefold()
    folded = _strip_marks(folded)
    return "".join(_HOMOGLYPHS.get(c, c) for c in folded)


@functools.cache
def _t2s_pairs() -> dict[int, str]:
    """Traditional -> simplified Chinese, one character at a time, from OpenCC ``t2s``."""
    import opencc

    converter = opencc.OpenCC("t2s")
    chars = [chr(cp) for lo, hi in _CJK_RANGES for cp in range(lo, hi)]
    converted = converter.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):
        raise RuntimeError("OpenCC t2s changed the number of lines; cannot build the table")
    return {
        ord(src): dst
        for src, dst in zip(chars, converted, strict=True)
        if dst != src and len(dst) == 1
    }


@functools.cache
def base_table() -> dict[int, str]:
    """The ``str.translate`` table of the base form (one character to exactly one)."""
    table: dict[int, str] = {}
    for lo, hi in _FOLD_RANGES:
        for cp in range(lo, hi):
            ch = chr(cp)
            folded = _fold_char(ch)
            if len(folded) == 1 and folded != ch:
                table[cp] = folded
            elif len(folded) != 1 and ch.isalpha():
                # e.g. "ß" -> "ss": keep the offsets one to one with a single-letter stand-in
                table[cp] = folded[:1] or ch
    for cp in range(0x1F1E6, 0x1F200):  # regional indicator letters, used as a letter font
        table[cp] = chr(ord("a") + cp - 0x1F1E6)
    for quote in "\u2018\u2019\u201b\u02bc\u2032\u00b4\uff07":  # typographic apostrophes
        table[ord(quote)] = "'"
    table.update(_t2s_pairs())
    return table


@functools.cache
def skeleton_table() -> dict[int, str]:
    """The table that turns a base-form string into its skeleton form."""
    return {ord(k): v for k, v in _SKELETON.items()}


def fold_base(text: str) -> str:
    """Return the base form of ``text`` (same length, same offsets)."""
    if text.isascii():
        return text.lower()
    return text.translate(base_table())


@functools.cache
def _skeleton_bytes() -> bytes:
    """Lower case and skeleton stand-ins for ASCII bytes; bytes >= 0x80 left alone, so the
    table can run over UTF-8 without breaking multi-byte sequences."""
    table = bytearray(range(256))
    for cp in range(ord("A"), ord("Z") + 1):
        table[cp] = cp + 32
    for cp in range(128):
        ch = chr(table[cp])
        table[cp] = ord(_SKELETON.get(ch, ch))
    return bytes(table)


@functools.cache
def full_table() -> dict[int, str]:
    """Base folding and skeleton stand-ins in one ``str.translate`` table."""
    skeleton = _SKELETON
    table = {cp: skeleton.get(ch, ch) for cp, ch in base_table().items()}
    for cp in range(128):
        ch = chr(cp).lower()
        table.setdefault(cp, skeleton.get(ch, ch))
    for src, dst in skeleton.items():
        table.setdefault(ord(src), dst)
    # str.translate pays for a lookup miss with an internal KeyError, which costs far more
    # than a hit: map the characters listings are made of to themselves explicitly.
    for lo, hi in _COMMON_RANGES:
        for cp in range(lo, hi):
            table.setdefault(cp, chr(cp))
    return table


@functools.cache
def _full_array() -> np.ndarray:
    """``full_table`` as a code-point lookup array covering all of Unicode (4.4 MB)."""
    table = np.arange(0x110000, dtype=np.uint32)
    items = [(cp, ord(ch)) for cp, ch in full_table().items() if ord(ch) != cp]
    src, dst = zip(*items, strict=True)
    table[np.array(src)] = np.array(dst, dtype=np.uint32)
    return table


def fold_full(text: str) -> str:
    """The skeleton form of raw ``text`` in one step (same length, same offsets).

    Non-ASCII text goes through a NumPy lookup over its UTF-32 code points: ``str.translate``
    with a dict pays a Python lookup per character and takes about twice as long.
    """
    if text.isascii():
        return text.encode("ascii").translate(_skeleton_bytes()).decode("ascii")
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return _full_array()[points].tobytes().decode("utf-32-le", "surrogatepass")


def fold_full_reference(text: str) -> str:
    """``fold_full`` by ``str.translate``: slower, kept as the reference the fast one is
    tested against."""
    return text.translate(full_table())


def fold_skeleton(base: str) -> str:
    """Return the skeleton form of an already base-folded string (same length)."""
    return base.translate(skeleton_table())


_KEPT_RUN = re.compile("[^" + re.escape("".join(sorted(SEPARATORS))) + "]+")


def squeeze(form: str) -> tuple[str, list[int]]:
    """Remove separators; return the squeezed string and, per character, its original index."""
    runs = [m.span() for m in _KEPT_RUN.finditer(form)]
    index = [i for start, end in runs for i in range(start, end)]
    return "".join([form[start:end] for start, end in runs]), index


def has_zero_width(text: str) -> bool:
    """Whether ``text`` hides a zero-width character (or soft hyphen) anywhere."""
    return _ZERO_WIDTH_RE.search(text) is not None


def gate_keys(key: str) -> list[str]:
    """Strings whose presence suggests the folded ``key`` was written split apart.

    Latin-script keys: the first three letters of each of their words with one separator
    between each (``i.v.o``, ``r.i.n`` for ``cuerno de rino``); CJK and Thai keys: their first
    two characters with a separator (``象 牙``).
    """
    starts = [tuple(w[:3]) for w in key.split() if len(w) >= 3]
    squeezed_key = squeeze_key(key)
    if len(squeezed_key) < 2:
        return []
    if is_spaced_letter(squeezed_key[0]):
        return [f"{a}{sep}{b}{sep}{c}" for a, b, c in starts for sep in GATE_SEPARATORS]
    a, b = squeezed_key[:2]
    return [f"{a}{sep}{b}" for sep in (*GATE_SEPARATORS, "\u3000")]


def fold_key(term: str) -> str:
    """The base form of a knowledge-base term, with runs of spaces made one space."""
    return " ".join(fold_base(unicodedata.normalize("NFC", term)).split())


def skeleton_key(term: str) -> str:
    """The skeleton form of a knowledge-base term."""
    return fold_skeleton(fold_key(term))


def squeeze_key(key: str) -> str:
    """A folded key with its separators removed, for the squeezed forms."""
    return "".join(ch for ch in key if ch not in SEPARATORS)


def is_spaced_letter(ch: str) -> bool:
    """Whether ``ch`` is a letter of a script that separates words with spaces."""
    return ch.isalpha() and (ch < "\u0e00" or "\u1e00" <= ch < "\u2000")
