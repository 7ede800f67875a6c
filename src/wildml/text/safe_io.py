"""Saving sklearn objects with skops and loading them back against an explicit allowlist."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wildml.errors import DataError

# Every type a text model's skops files may hold beyond skops' built-in defaults. Loading
# refuses anything else, so a tampered file cannot make us build arbitrary objects.
TRUSTED_TYPES = [
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "builtins.slice",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "numpy.ndarray",
    "scipy.sparse._csr.csr_matrix",
    "collections.defaultdict",
    "builtins.int",
    "builtins.float",
]


def dump(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` in skops format."""
    import skops.io

    skops.io.dump(obj, str(path))


def load(path: str | os.PathLike) -> Any:
    """Read a skops file, trusting only :data:`TRUSTED_TYPES`.

    Raises
    ------
    DataError
        When the file is missing or holds a type outside the allowlist.
    """
    import skops.io

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found")
    untrusted = skops.io.get_untrusted_types(file=str(path))
    unknown = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unknown:
        raise DataError(f"{path}: refusing to load types outside the allowlist: {unknown}")
    return skops.io.load(str(path), trusted=[t for t in untrusted if t in TRUSTED_TYPES])
