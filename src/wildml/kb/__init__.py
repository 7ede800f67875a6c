"""The species knowledge base: species, products, terms per language, and the matcher.

``load_kb()`` reads the YAML shipped in ``wildml/kb/data`` (or a folder you name),
``Matcher(kb).match(text)`` returns :class:`Evidence` with spans in the original text, and
``KBFeatures`` turns that evidence into model features.
"""

from __future__ import annotations

from typing import Any

from wildml.kb.loader import Entry, Issue, KBError, KnowledgeBase, default_kb_dir, load_kb
from wildml.kb.matcher import Evidence, Matcher

__all__ = [
    "Entry",
    "Evidence",
    "Issue",
    "KBError",
    "KBFeatures",
    "KnowledgeBase",
    "Matcher",
    "default_kb_dir",
    "load_kb",
]


def __getattr__(name: str) -> Any:
    # scikit-learn is imported only by code that asks for the transformer
    if name == "KBFeatures":
        from wildml.kb.features import KBFeatures

        return KBFeatures
    raise AttributeError(name)
