"""Broken and odd photos through ImageModel.predict: a reason each, never a crashed batch."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from wildml.image.backbone import BackboneSpec, build_backbone  # noqa: E402
from wildml.image.data import PhotoDataset, collate_photos, eval_transform  # noqa: E402
from wildml.image.model import ImageModel, PhotoClassifier  # noqa: E402

CLASSES = ["ivory", "pangolin_scale", "rhino_horn", "other"]


def _jpeg_bytes(size=(64, 48), color=(200, 180, 150)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _write_bad(kind: str, path: Path) -> Path:
    if kind == "truncated":
        data = _jpeg_bytes((256, 256))
        path.write_bytes(data[: len(data) // 3])
    elif kind == "not_an_image":
        path.write_bytes(b"this is not a photo at all, just text\n" * 20)
    elif kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "too_many_pixels":
        # A 1-bit PNG of 8000 x 6000 compresses to a few KB but declares 48 MP.
        Image.new("1", (8000, 6000)).save(path, "PNG")
    elif kind == "too_small":
        Image.new("RGB", (8, 8), (10, 10, 10)).save(path, "PNG")
    elif kind == "missing":
        pass
    return path


def _write_odd(kind: str, path: Path) -> Path:
    if kind == "exif_rotated":
        image = Image.new("RGB", (80, 40), (120, 90, 60))
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees when shown
        image.save(path, "JPEG", exif=exif)
    elif kind == "palette":
        Image.new("RGB", (40, 40), (10, 200, 30)).convert("P").save(path, "PNG")
    elif kind == "alpha":
        Image.new("RGBA", (40, 40), (10, 200, 30, 100)).save(path, "PNG")
    elif kind == "cmyk":
        Image.new("CMYK", (40, 40), (0, 50, 100, 0)).save(path, "JPEG")
    elif kind == "sixteen_bit":
        Image.new("I;16", (40, 40), 40000).save(path, "PNG")
    elif kind == "gif_animated":
        frames = [Image.new("P", (40, 40), i * 40) for i in range(3)]
        frames[0].save(path, "GIF", save_all=True, append_images=frames[1:])
    elif kind == "webp":
        Image.new("RGB", (40, 40), (90, 90, 200)).save(path, "WEBP")
    return path


BAD = ["truncated", "not_an_image", "empty_file", "too_many_pixels", "too_small", "missing"]
ODD = ["exif_rotated", "palette", "alpha", "cmyk", "sixteen_bit", "gif_animated", "webp"]


@pytest.fixture(scope="module")
def model() -> ImageModel:
    torch.manual_seed(0)
    spec = BackboneSpec(image_size=64)
    network = PhotoClassifier(build_backbone(spec, pretrained=False), 3)
    config = {
        "classes": CLASSES,
        "trained_classes": ["ivory", "pangolin_scale", "other"],
        "missing_classes": ["rhino_horn"],
        "fallback_probs": {"rhino_horn": 0.0},
        "backbone": spec.to_dict(),
        "photo_limits": {"max_bytes": 1_000_000, "max_pixels": 40_000_000, "min_side": 16},
    }
    return ImageModel(network, config)


@pytest.mark.parametrize("kind", BAD)
def test_bad_photo_gets_its_reason_and_nan(kind: str, tmp_path: Path, model: ImageModel) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg_bytes())
    bad = _write_bad(kind, tmp_path / f"bad_{kind}.img")

    result = model.predict([good, bad, good], batch_size=2)

    assert result.status == ["ok", kind, "ok"]
    assert np.isnan(result.probs[1]).all() and np.isnan(result.embeddings[1]).all()
    assert np.allclose(result.probs[[0, 2]].sum(axis=1), 1.0)
    assert np.allclose(result.probs[0], result.probs[2])


@pytest.mark.parametrize("kind", ODD)
def test_odd_but_valid_photo_is_scored(kind: str, tmp_path: Path, model: ImageModel) -> None:
    path = _write_odd(kind, tmp_path / f"odd_{kind}.img")

    result = model.predict([path])

    assert result.status == ["ok"]
    assert result.probs.shape == (1, len(CLASSES))
    assert result.embeddings.shape == (1, 1280)
    assert np.isfinite(result.probs).all() and result.probs[0].sum() == pytest.approx(1.0)


def test_class_left_out_of_head_keeps_its_column(tmp_path: Path, model: ImageModel) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg_bytes())

    probs = model.predict([path]).probs

    assert model.classes == CLASSES
    assert probs[0, CLASSES.index("rhino_horn")] == 0.0


def test_exif_orientation_is_applied_before_the_transform(tmp_path: Path) -> None:
    path = _write_odd("exif_rotated", tmp_path / "r.jpg")
    dataset = PhotoDataset([path], transform=lambda image: image.size)

    assert dataset[0]["image"] == (40, 80)


def test_collate_skips_bad_items_and_reports_them(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg_bytes())
    bad = _write_bad("not_an_image", tmp_path / "bad.jpg")
    dataset = PhotoDataset(
        [bad, good, bad], eval_transform(32, (0.5,) * 3, (0.5,) * 3), targets=[0, 1, 2]
    )

    batch = collate_photos([dataset[i] for i in range(3)])

    assert batch.images.shape == (1, 3, 32, 32)
    assert batch.index == [1] and batch.targets.tolist() == [1]
    assert batch.failed == [(0, "not_an_image"), (2, "not_an_image")]


def test_file_over_the_byte_limit_is_refused(tmp_path: Path, model: ImageModel) -> None:
    path = tmp_path / "big.png"
    # Noise does not compress: about 3 MB, over the model's 1 MB limit.
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1000, 1000, 3), np.uint8)).save(
        path, "PNG"
    )

    assert model.predict([path]).status == ["file_too_large"]


def test_worker_processes_give_the_same_result(tmp_path: Path, model: ImageModel) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg_bytes())
    paths = [good, _write_bad("empty_file", tmp_path / "e.jpg"), good]

    inline = model.predict(paths, batch_size=2)
    workers = model.predict(paths, batch_size=2, num_workers=1)

    assert workers.status == inline.status
    assert np.array_equal(workers.probs, inline.probs, equal_nan=True)
