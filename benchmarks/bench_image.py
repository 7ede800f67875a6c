"""Photos per second through ImageModel.predict (files on disk) vs the bare backbone forward.

The bare forward runs on pre-made tensors in the same process, so the ratio is the cost of
decoding, EXIF handling, resizing and normalising on top of the network itself.

    python benchmarks/bench_image.py                      # synthetic 384x288 JPEGs
    python benchmarks/bench_image.py --model-dir models/image --photos-dir DIR --n 64
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wildml.image.backbone import BackboneSpec, build_backbone
from wildml.image.model import ImageModel, PhotoClassifier

CLASSES = ["ivory", "pangolin_scale", "rhino_horn", "other"]


def _model(model_dir: str | None) -> ImageModel:
    if model_dir:
        return ImageModel.load(model_dir)
    spec = BackboneSpec()
    network = PhotoClassifier(build_backbone(spec, pretrained=True), len(CLASSES))
    config = {"classes": CLASSES, "trained_classes": CLASSES, "backbone": spec.to_dict()}
    return ImageModel(network, config)


def _photos(photos_dir: str | None, n: int, tmp: Path) -> list[str]:
    if photos_dir:
        files = sorted(p for p in Path(photos_dir).iterdir() if p.is_file())
        return [str(p) for p in files[:n]]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        pixels = rng.integers(0, 255, (288, 384, 3), dtype=np.uint8)
        path = tmp / f"photo_{i}.jpg"
        Image.fromarray(pixels).save(path, "JPEG", quality=85)
        paths.append(str(path))
    return paths


def _rate(fn, n_items: int, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN kernels
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return n_items * repeats / (time.perf_counter() - start)


def main() -> None:
    """Run the benchmark and print photos/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir")
    parser.add_argument("--photos-dir")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = _model(args.model_dir)
    size = model.spec.image_size
    with tempfile.TemporaryDirectory() as tmp:
        paths = _photos(args.photos_dir, args.n, Path(tmp))
        n = len(paths)
        print(f"{n} photos, image size {size}, {args.threads} threads, backbone {model.spec.name}")
        for batch in (1, 32):
            tensors = torch.randn(min(batch, n), 3, size, size)

            def bare(tensors: torch.Tensor = tensors) -> None:
                with torch.inference_mode():
                    for start in range(0, n, len(tensors)):
                        model.network.backbone(tensors[: min(len(tensors), n - start)])

            def full(batch: int = batch) -> None:
                model.predict(paths, batch_size=batch)

            bare_rate = _rate(bare, n, 1)
            full_rate = _rate(full, n, 1)
            print(
                f"batch {batch:>2}: predict {full_rate:6.1f} photos/s, bare backbone "
                f"{bare_rate:6.1f} photos/s, predict/bare = {full_rate / bare_rate:.2f} "
                f"(overhead of loading + transforms {bare_rate / full_rate - 1:+.0%})"
            )


if __name__ == "__main__":
    main()
