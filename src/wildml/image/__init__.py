"""The product-photo model: which wildlife product, if any, a listing's photo shows.

``ImageModel.load(dir).predict(paths)`` scores photo files; ``wildml train-image`` trains it
(:mod:`wildml.image.train`).
"""

from __future__ import annotations

from wildml.image.model import ImageModel, PhotoPrediction

__all__ = ["ImageModel", "PhotoPrediction"]
