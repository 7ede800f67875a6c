"""Photo labels: manifest classes, weak labels from listings, classes with too few photos."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from wildml.errors import ConfigError
from wildml.image.labels import LabelScheme, class_counts, label_photos, trained_classes

CLASSES = ("ivory", "pangolin_scale", "rhino_horn", "other")


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "photo_class": ["ivory", "bone", "resin", "", "", "", "", "walrus_tusk"],
            "listing_label": [-1, -1, -1, 1, 1, 0, -1, -1],
            "listing_product": ["", "", "", "pangolin_scale", "", "", "", ""],
        }
    )


@pytest.mark.parametrize(
    ("weak", "expected"),
    [
        (True, ["ivory", "other", "other", "pangolin_scale", "ivory", "other", None, None]),
        (False, ["ivory", "other", "other", None, None, None, None, None]),
    ],
)
def test_labels_from_manifests_and_listings(weak: bool, expected: list) -> None:
    scheme = LabelScheme.from_config(
        {
            "classes": list(CLASSES),
            "weak_labels": weak,
            "class_map": {"bone": "other", "resin": "other"},
        }
    )

    out = label_photos(_frame(), scheme)

    assert [CLASSES[t] if t >= 0 else None for t in out["target"]] == expected
    assert out["label_source"].tolist()[:4] == ["manifest"] * 3 + ["weak" if weak else ""]


def test_unknown_manifest_class_is_warned_and_left_unlabelled(caplog) -> None:
    scheme = LabelScheme.from_config({"classes": list(CLASSES)})

    with caplog.at_level(logging.WARNING):
        out = label_photos(_frame(), scheme)

    assert out["target"].iloc[-1] == -1
    assert "walrus_tusk" in caplog.text


def test_class_map_onto_unknown_class_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown classes"):
        LabelScheme.from_config({"classes": list(CLASSES), "class_map": {"bone": "bones"}})


def test_classes_with_too_few_photos_are_split_off_with_a_warning(caplog) -> None:
    counts = class_counts([0, 0, 0, 3, 3, 3, 1, -1], CLASSES)

    with caplog.at_level(logging.WARNING):
        kept, missing = trained_classes(counts, 2, "other")

    assert counts == {"ivory": 3, "pangolin_scale": 1, "rhino_horn": 0, "other": 3}
    assert kept == ["ivory", "other"] and missing == ["pangolin_scale", "rhino_horn"]
    assert "'rhino_horn': 0" in caplog.text


def test_fewer_than_two_trainable_classes_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="min_photos_per_class"):
        trained_classes({"ivory": 9, "other": 1}, 5, "other")
