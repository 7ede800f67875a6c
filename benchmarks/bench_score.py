"""Batch scoring speed and memory: ``wildml score`` against the bare models it wraps.

Generates listings by recombining titles, descriptions and photos of the bundled sample
(every text made unique, so none is skipped as a duplicate), then measures in one process:

- listings/s of the whole streaming run (read, prepare, score, explain, checkpoint, merge,
  write CSV) for text-only and with-photo listings;
- the sum of the bare forward passes on the same listings (text model, KB features, photo
  model, fuser) and the overhead ratio of the streaming run over it;
- peak resident memory of a text-only run in a fresh subprocess at two input sizes.

Every measurement starts from a freshly loaded package, so no text embedding computed by one
measurement is reused by another; the text-only and with-photo sets have different texts,
and every with-photo listing has its own copy of its photo.

The multilingual encoder (about 6 listings/s per core here) dominates both the streaming run
and the bare models, and makes 100,000 listings a run of hours on this machine. The memory
measurement can therefore use another package: ``--memory-package tiny`` builds, in a
temporary folder, the small TF-IDF package the scoring tests use, whose streaming costs are
the same code paths at a far higher rate.

The same small package serves the speed runs with ``--package tiny``: with the encoder out of
the way, what the streaming run adds (reading, preparation, explanations, checkpoints, merge,
CSV) is no longer hidden behind the slowest model.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_score.py --package models/scorer|tiny \\
        [--n-text 10000] [--n-photo 10000] [--memory-sizes 10000,100000] \\
        [--memory-package same|tiny|PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


def generate(n: int, with_photo: bool, seed: int = 7) -> pd.DataFrame:
    """``n`` listings recombined from sample pieces; photos from the sample when asked."""
    raw = pd.read_csv(SAMPLE / "listings.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    titles = raw["title"].to_numpy()
    descriptions = raw["description"].str.slice(0, 400).to_numpy()
    photos = sorted(
        p.relative_to(SAMPLE).as_posix()
        for p in (SAMPLE / "photos").glob("*.jpg")
        if "broken" not in p.name
    )
    pick = rng.integers(0, len(raw), size=(n, 3))
    return pd.DataFrame(
        {
            "listing_id": [f"bench-{i:07d}" for i in range(n)],
            "title": titles[pick[:, 0]],
            "description": [f"{d} ref {i}" for i, d in enumerate(descriptions[pick[:, 1]])],
            "lang": raw["lang"].to_numpy()[pick[:, 1]],
            "seller_profile": raw["seller_profile"].to_numpy()[pick[:, 2]],
            "images": [photos[i % len(photos)] if with_photo else "" for i in pick[:, 2]],
        }
    )


def unique_photos(frame: pd.DataFrame, folder: Path) -> None:
    """Give every listing its own copy of its photo, so that no photo is decoded twice.

    The sample has a few hundred photos; shared between thousands of listings, the streaming
    run would decode each once per chunk while the bare pass decodes it per listing.
    """
    (folder / "photos").mkdir(exist_ok=True)
    for row, relative in enumerate(frame["images"]):
        if relative:
            copy = f"photos/bench-{row:07d}.jpg"
            shutil.copyfile(SAMPLE / relative, folder / copy)
            frame.at[row, "images"] = copy


class Stopwatch:
    """Wall and CPU seconds of the blocks timed with it, by name.

    CPU time counts this process only, so it barely moves when other jobs load the shared
    machine; wall time is what a reviewer waits. Both ratios are reported.
    """

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def time(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu


def bare_seconds(package: Path, frame: pd.DataFrame, images_root: Path) -> Stopwatch:
    """Time each model's forward pass on already-prepared inputs (no I/O, no reasons)."""
    from wildml.fuse import build_features
    from wildml.score import load_scorer, prepare_listings

    scorer = load_scorer(package)

    prepared = prepare_listings(frame, scorer.settings, images_root)
    text = pd.DataFrame(
        {"text": prepared["text_norm"], "seller_profile": prepared["seller_profile"]}
    ).assign(lang=prepared["lang"].to_numpy())
    clock = Stopwatch()
    with clock.time("text"):
        p_text = scorer.text_model.predict_proba(text)
    with clock.time("kb"):
        scorer.kb_features.transform(prepared["text_norm"].tolist())
    # Every listing's photos, repeats included: the streaming run decodes each listing's own.
    paths = [p for row in prepared["photo_paths"] for p in row]
    if paths:
        with clock.time("image"):
            scorer.image_model.predict(paths, batch_size=int(scorer.settings["image_batch_size"]))
    classes = scorer.image_classes
    image_scores = pd.DataFrame(
        {"listing_id": prepared["listing_id"], "n_photos": 0}
        | {f"img_p_{c}": np.nan for c in classes}
    )
    features = build_features(
        prepared.reset_index(drop=True), p_text, image_scores, kb=scorer.kb_features
    )
    with clock.time("fuser"):
        scorer.fuser.predict(features)
    return clock


def warm_up(package: Path, frame: pd.DataFrame, images_root: Path) -> float:
    """Load the package and score a few listings once, untimed by the runs that follow.

    Both runs then start with the libraries imported: otherwise the first one measured would
    also pay for importing torch, scikit-learn and skops. Returns the seconds this took.
    """
    from wildml.score import load_scorer

    start = time.perf_counter()
    load_scorer(package).score(frame, images_root=images_root)
    return time.perf_counter() - start


def streaming_seconds(package: Path, listings: Path, out: Path, images_root: Path) -> Stopwatch:
    """Wall and CPU time of the whole ``wildml score`` job on a file."""
    from wildml.score_stream import ScoreJob, score_inputs

    job = ScoreJob(
        inputs=[listings],
        package_dir=package,
        out_path=out,
        images_root=images_root,
        chunk_size=500,
    )
    clock = Stopwatch()
    with clock.time("streaming"):
        score_inputs(job)
    return clock


MEMORY_CHILD = """
import resource, sys
from pathlib import Path
from wildml.score_stream import ScoreJob, score_inputs
job = ScoreJob(inputs=[Path(sys.argv[2])], package_dir=Path(sys.argv[1]),
               out_path=Path(sys.argv[3]), chunk_size=500)
score_inputs(job)
# VmHWM is this process's own peak; ru_maxrss would also count the parent's memory at fork.
status = Path("/proc/self/status")
if status.is_file():
    print(status.read_text().split("VmHWM:")[1].split()[0])
else:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mib(package: Path, n: int, folder: Path) -> float:
    """Peak resident memory (MiB) of a fresh process scoring ``n`` text-only listings."""
    listings = folder / f"mem-{n}.csv"
    generate(n, with_photo=False, seed=n).to_csv(listings, index=False)
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(package), str(listings), str(folder / "m.csv")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
    )
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def bench_kind(package: Path, n: int, with_photo: bool, folder: Path) -> dict:
    frame = generate(n, with_photo, seed=11 if with_photo else 7)
    if with_photo:
        unique_photos(frame, folder)
    listings = folder / f"bench-{'photo' if with_photo else 'text'}.csv"
    frame.to_csv(listings, index=False)
    load_seconds = warm_up(package, frame.head(20), folder)
    streaming = streaming_seconds(package, listings, folder / "queue.csv", folder)
    bare = bare_seconds(package, frame, folder)
    wall, cpu = streaming.wall["streaming"], streaming.cpu["streaming"]
    bare_wall, bare_cpu = sum(bare.wall.values()), sum(bare.cpu.values())
    return {
        "kind": "with_photo" if with_photo else "text_only",
        "n": n,
        "first_load_s": round(load_seconds, 2),
        "listings_per_s": n / wall,
        "bare_listings_per_s": n / bare_wall,
        "bare_seconds": {k: round(v, 2) for k, v in bare.wall.items()},
        "overhead_ratio": wall / bare_wall,
        "cpu_listings_per_s": n / cpu,
        "bare_cpu_listings_per_s": n / bare_cpu,
        "bare_cpu_seconds": {k: round(v, 2) for k, v in bare.cpu.items()},
        "cpu_overhead_ratio": cpu / bare_cpu,
    }


def resolve_package(choice: str, folder: Path) -> Path:
    """A package path, or ``tiny``: the tests' small TF-IDF package, built once in ``folder``."""
    if choice != "tiny":
        return Path(choice)
    root, mlflow_dir = folder / "tiny", folder / "tiny-mlflow"
    if not root.is_dir():
        sys.path.insert(0, str(REPO / "tests"))
        from test_score_support import build_project

        root.mkdir()
        mlflow_dir.mkdir()
        build_project(root, mlflow_dir)
    return root / "models" / "scorer"


def resolve_memory_package(choice: str, package: Path, folder: Path) -> Path:
    """The package of the memory runs (see the module docstring)."""
    return package if choice == "same" else resolve_package(choice, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--package",
        default=str(REPO / "models" / "scorer"),
        help="package of the speed runs: a path, or tiny (the tests' TF-IDF package, built here)",
    )
    parser.add_argument("--n-text", type=int, default=10_000)
    parser.add_argument("--n-photo", type=int, default=10_000)
    parser.add_argument("--memory-sizes", default="10000,100000")
    parser.add_argument(
        "--memory-package",
        default="same",
        help="package of the memory runs: same (as --package), tiny (built here), or a path",
    )
    args = parser.parse_args()
    if args.package != "tiny" and not (Path(args.package) / "manifest.json").is_file():
        sys.exit(f"{args.package}: no scoring package; run `dvc repro` (or `wildml export`)")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        folder = Path(tmp)
        args.package = resolve_package(args.package, folder)
        print(f"speed runs with {args.package}", flush=True)
        for n, with_photo in ((args.n_text, False), (args.n_photo, True)):
            if n > 0:
                results.append(bench_kind(args.package, n, with_photo, folder))
                print(json.dumps(results[-1]), flush=True)
        sizes = [int(s) for s in args.memory_sizes.split(",") if s.strip()]
        memory_package = resolve_memory_package(args.memory_package, args.package, folder)
        print(f"memory runs with {memory_package}", flush=True)
        peaks = {}
        for n in sizes:
            peaks[n] = peak_rss_mib(memory_package, n, folder)
            print(json.dumps({"memory_n": n, "peak_rss_mib": round(peaks[n], 1)}), flush=True)
    for row in results:
        print(
            f"{row['kind']:>10}: {row['listings_per_s']:8.1f} listings/s streaming, "
            f"{row['bare_listings_per_s']:8.1f} bare models, "
            f"overhead x{row['overhead_ratio']:.2f} (wall); CPU time: "
            f"{row['cpu_listings_per_s']:.1f} vs {row['bare_cpu_listings_per_s']:.1f} listings/s, "
            f"overhead x{row['cpu_overhead_ratio']:.2f}"
        )
    for n, peak in peaks.items():
        print(f"peak RSS, {n:>7} text-only listings: {peak:7.1f} MiB")
    if len(peaks) >= 2:
        first, last = peaks[sizes[0]], peaks[sizes[-1]]
        print(f"memory ratio {sizes[-1]} / {sizes[0]} listings: x{last / first:.2f}")


if __name__ == "__main__":
    main()
