"""wildml: find online listings that offer protected-wildlife products.

The package prepares labelled listings and photos, trains a multilingual text model and a
product-photo model, fuses them into one calibrated score, and exports a scoring package that
reviewers run on new listings.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wildml")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__", "load_scorer"]


def load_scorer(path):
    """Load an exported scoring package; see :func:`wildml.score.load_scorer`."""
    from wildml.score import load_scorer as _load

    return _load(path)
