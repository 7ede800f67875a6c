"""The multilingual text classifier: TF-IDF, frozen-encoder, knowledge-base and stacked models.

``TextModel.load(dir)`` reads what the ``train_text`` stage saved; see ``docs/text-model.md``.
"""

from __future__ import annotations

from wildml.text.model import TextModel

__all__ = ["TextModel"]
