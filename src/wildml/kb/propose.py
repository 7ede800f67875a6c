"""Candidate terms from labelled listings, for an expert to review and add to the base.

Word n-grams (space-delimited scripts) and character n-grams (CJK and Thai runs) are counted
per listing; those much more frequent among positives than negatives, and not already covered
by the knowledge base, are written out as a YAML snippet in the layout of ``terms/*.yaml``,
with ``source: TODO`` so that ``wildml kb validate`` refuses them until someone cites a source.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from wildml.errors import DataError
from wildml.kb.fold import fold_base
from wildml.kb.loader import KnowledgeBase

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
_CJK_THAI_RUN = re.compile(r"[\u0e00-\u0e7f\u3400-\u9fff\uf900-\ufaff]+")
_MASK = re.compile(r"\{\{[A-Z]+\}\}")


@dataclass(frozen=True)
class Candidate:
    """One proposed term with its evidence in the data."""

    term: str
    lang: str
    pos_count: int
    neg_count: int
    score: float


def read_labelled(
    data_path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    product: str | None = None,
) -> tuple[list[str], list[int], list[str] | None]:
    """Read (texts, labels, langs) from a CSV with text/label columns or a prepared HF dataset.

    With ``product`` and a ``product`` column, positives of other products are left out.

    Raises
    ------
    DataError
        When the path is missing or lacks the columns.
    """
    import pandas as pd

    path = Path(data_path)
    if path.is_dir():
        from datasets import DatasetDict, concatenate_datasets, load_from_disk

        ds = load_from_disk(str(path))
        if isinstance(ds, DatasetDict):
            ds = concatenate_datasets([ds[s] for s in ds])
        frame = ds.to_pandas()
    elif path.is_file():
        frame = pd.read_csv(path)
    else:
        raise DataError(f"{path}: no such CSV file or dataset folder")
    for column in (text_column, label_column):
        if column not in frame.columns:
            raise DataError(f"{path}: column '{column}' not found (have {list(frame.columns)})")
    frame = frame[frame[label_column].isin([0, 1, "0", "1"])]
    if product is not None and "product" in frame.columns:
        # positives of other products are neither evidence for nor against this one
        other = (frame[label_column].astype(int) == 1) & (frame["product"].fillna("") != product)
        frame = frame[~other]
    texts = frame[text_column].fillna("").astype(str).tolist()
    labels = frame[label_column].astype(int).tolist()
    langs = frame["lang"].fillna("und").astype(str).tolist() if "lang" in frame else None
    return texts, labels, langs


def _grams(text: str, max_n: int) -> set[str]:
    """Word 1..max_n-grams and CJK/Thai character 2..4-grams of a folded listing."""
    folded = fold_base(_MASK.sub(" ", text))
    words = _WORD.findall(_CJK_THAI_RUN.sub(" ", folded))
    grams = {
        " ".join(words[i : i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1)
    }
    for run in _CJK_THAI_RUN.findall(folded):
        grams |= {run[i : i + n] for n in (2, 3, 4) for i in range(len(run) - n + 1)}
    return {g for g in grams if len(g) >= 2}


def _script_lang(gram: str) -> str:
    if re.search(r"[\u0e00-\u0e7f]", gram):
        return "th"
    if re.search(r"[\u3400-\u9fff]", gram):
        return "zh-Hans"
    return "und"


def propose(
    kb: KnowledgeBase,
    texts: list[str],
    labels: list[int],
    langs: list[str] | None = None,
    *,
    min_count: int = 3,
    max_n: int = 2,
    top_k: int = 50,
) -> list[Candidate]:
    """Rank n-grams by smoothed log-odds of appearing in a positive vs a negative listing.

    N-grams that are, contain, or lie inside a knowledge-base key are left out.
    """
    pos, neg = Counter(), Counter()
    lang_of: dict[str, Counter] = {}
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        grams = _grams(text, max_n)
        (pos if label == 1 else neg).update(grams)
        if label == 1 and langs is not None:
            for g in grams:
                lang_of.setdefault(g, Counter())[langs[i]] += 1
    n_pos, n_neg = max(1, labels.count(1)), max(1, labels.count(0))
    known = {e.key for e in kb.entries}
    out: list[Candidate] = []
    for gram, a in pos.items():
        if a < min_count or _covered(gram, known):
            continue
        b = neg.get(gram, 0)
        score = math.log((a + 0.5) / (n_pos - a + 0.5)) - math.log((b + 0.5) / (n_neg - b + 0.5))
        if score <= 0:
            continue
        lang = lang_of[gram].most_common(1)[0][0] if gram in lang_of else _script_lang(gram)
        out.append(Candidate(gram, lang, a, b, round(score, 3)))
    out.sort(key=lambda c: (-c.score, -c.pos_count, c.term))
    return out[:top_k]


def _covered(gram: str, known: set[str]) -> bool:
    if gram in known:
        return True
    return any(k in gram or (len(gram) >= 3 and gram in k) for k in known if len(k) >= 2)


def to_yaml(candidates: list[Candidate], product: str, data_name: str) -> str:
    """The candidates as a ``terms/<product>.yaml`` snippet, counts in comments."""
    header = (
        f"# Candidate terms for '{product}' proposed from {data_name}.\n"
        "# Each line: positives / negatives containing it and the log-odds score. Keep only\n"
        "# terms that name the product, set kind and confidence, and cite a real source\n"
        "# (sources.yaml) in place of TODO; `wildml kb validate` rejects TODO.\n"
    )
    by_lang: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_lang.setdefault(c.lang, []).append(c)
    lines = [header, f"product: {product}", "languages:"]
    for lang, items in by_lang.items():
        lines += [f"  {lang}:", "    terms:"]
        for c in items:
            entry = yaml.safe_dump(
                {"term": c.term, "kind": "code_word", "source": "TODO", "confidence": 0.3},
                allow_unicode=True,
                default_flow_style=True,
                sort_keys=False,
                width=1000,
            ).strip()
            lines.append(
                f"      - {entry}  # pos {c.pos_count}, neg {c.neg_count}, score {c.score}"
            )
    return "\n".join(lines) + "\n"
