"""Draw the generated photos of the bundled sample in ``data/sample/photos/``.

Every photo is a stylised drawing made here from shapes and noise, not a photograph of a real
product. The listing photos are the ones that ``data/sample/listings.csv`` and
``data/sample/new_listings.csv`` reference (``photos/<kind>_<nnn>.jpg``); the kind in the name
decides what is drawn, and a seed derived from the name decides the variation, so rerunning the
script rewrites the same bytes. The photo-only manifest (``photo_manifest.csv``) gets its own
photos under ``photos/manifest/``, and one deliberately truncated JPEG exercises the loaders.

Run after ``scripts/make_sample_listings.py``::

    python scripts/make_sample_photos.py            # writes into data/sample/
    python scripts/make_sample_photos.py --out DIR  # writes elsewhere (same layout)

Only Pillow and numpy are needed.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SEED = 20261204
SIZE = 192
CANVAS = 384  # drawn at twice the size, then downsampled for smooth edges
QUALITY = 85
N_MANIFEST_PER_LABEL = {
    "ivory": 10,
    "bone": 9,
    "resin": 8,
    "pangolin_scale": 9,
    "rhino_horn": 8,
    "horn": 8,
    "other": 8,
}
PHOTO_NAME = re.compile(r"^photos/([a-z_]+?)_(\d{3})\.jpg$")

Rgb = tuple[int, int, int]
Painter = Callable[[ImageDraw.ImageDraw, np.random.Generator], None]


def _jitter(rng: np.random.Generator, base: Rgb, spread: int) -> Rgb:
    """Return ``base`` with each channel moved by up to ``spread``."""
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in base)


def _ivory_tone(rng: np.random.Generator) -> Rgb:
    return _jitter(rng, (236, 226, 196), 14)


def _background(rng: np.random.Generator) -> Image.Image:
    """A plain, gradient, wood or cloth background, so the backdrop carries no label."""
    style = rng.integers(0, 4)
    base = np.array(_jitter(rng, (150, 140, 130), 90), dtype=np.float32)
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32) / CANVAS
    arr = np.ones((CANVAS, CANVAS, 3), np.float32) * base
    if style == 1:
        other = np.array(_jitter(rng, (120, 120, 120), 100), dtype=np.float32)
        t = (xx * rng.uniform(0, 1) + yy * rng.uniform(0, 1))[..., None]
        arr = arr * (1 - t / 2) + other * (t / 2)
    elif style == 2:
        wood = np.array(_jitter(rng, (140, 95, 60), 30), dtype=np.float32)
        rings = np.sin((yy * rng.uniform(20, 60) + np.sin(xx * 6) * 2) * math.pi)[..., None]
        arr = wood * (0.85 + 0.15 * rings)
    elif style == 3:
        weave = (np.sin(xx * CANVAS / 7) * np.sin(yy * CANVAS / 7))[..., None]
        arr = arr * (0.93 + 0.07 * weave)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _grain(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple, tone: Rgb) -> None:
    """Fine parallel lines with a faint cross-hatch, the look of carved ivory."""
    x0, y0, x1, y1 = box
    darker = tuple(max(0, c - 22) for c in tone)
    for i in range(int(rng.integers(8, 16))):
        y = y0 + (y1 - y0) * (i + rng.uniform(0, 1)) / 16
        draw.line([(x0, y), (x1, y + rng.uniform(-8, 8))], fill=darker, width=1)
    for _ in range(int(rng.integers(3, 7))):
        x = x0 + (x1 - x0) * rng.uniform(0, 1)
        draw.arc([x - 40, y0, x + 40, y1], 200, 340, fill=darker, width=1)


def _bangle(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb, finish: str) -> None:
    cx, cy = rng.uniform(150, 234, size=2)
    rx, ry = rng.uniform(80, 140), rng.uniform(50, 130)
    width = int(rng.uniform(18, 40))
    box = [cx - rx, cy - ry, cx + rx, cy + ry]
    draw.ellipse(box, outline=tone, width=width)
    if finish == "grain":
        for k in range(int(rng.integers(6, 14))):
            inset = width * k / 14
            ring = [box[0] + inset, box[1] + inset, box[2] - inset, box[3] - inset]
            draw.arc(
                ring,
                rng.uniform(0, 360),
                rng.uniform(0, 360),
                fill=tuple(max(0, c - 20) for c in tone),
                width=1,
            )
    elif finish == "pits":
        for _ in range(int(rng.integers(25, 60))):
            a = rng.uniform(0, 2 * math.pi)
            r = 1 - rng.uniform(0, width) / max(rx, ry)
            x, y = cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)
            draw.ellipse([x - 2, y - 1, x + 2, y + 1], fill=(90, 80, 60))
    else:  # glossy resin: a bright highlight and a few bubbles
        draw.arc(box, 200, 250, fill=(255, 255, 250), width=max(3, width // 4))
        for _ in range(int(rng.integers(3, 9))):
            a = rng.uniform(0, 2 * math.pi)
            x, y = cx + (rx - width / 2) * math.cos(a), cy + (ry - width / 2) * math.sin(a)
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(250, 250, 245))


def _figurine(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb, grain: bool):
    cx = rng.uniform(150, 234)
    base_y = rng.uniform(300, 350)
    h = rng.uniform(180, 260)
    body = [cx - h * 0.28, base_y - h * 0.7, cx + h * 0.28, base_y]
    draw.rounded_rectangle(body, radius=int(h * 0.12), fill=tone)
    head_r = h * 0.16
    head_y = base_y - h * 0.7 - head_r * 0.8
    draw.ellipse([cx - head_r, head_y - head_r, cx + head_r, head_y + head_r], fill=tone)
    draw.rectangle([cx - h * 0.35, base_y - 12, cx + h * 0.35, base_y + 8], fill=tone)
    shade = tuple(max(0, c - 45) for c in tone)
    for _ in range(int(rng.integers(3, 7))):
        y = rng.uniform(body[1] + 10, body[3] - 10)
        draw.arc([body[0], y - 20, body[2], y + 20], 20, 160, fill=shade, width=2)
    if grain:
        _grain(draw, rng, body, tone)


def _tusk(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb) -> None:
    pts_top, pts_bottom = [], []
    bend = rng.uniform(40, 110)
    thick = rng.uniform(28, 50)
    for i in range(21):
        t = i / 20
        x = 50 + t * 290
        y = 260 - bend * math.sin(t * math.pi * 0.9)
        w = thick * (1 - t) + 2
        pts_top.append((x, y - w))
        pts_bottom.append((x, y + w))
    draw.polygon(pts_top + pts_bottom[::-1], fill=tone)
    _grain(draw, rng, (50, 150, 340, 310), tone)
    draw.rectangle([40, 200, 56, 320], fill=_jitter(rng, (150, 110, 80), 20))


def _beads(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb, dots: bool) -> None:
    n = int(rng.integers(9, 18))
    cx, cy, r = rng.uniform(170, 214), rng.uniform(170, 214), rng.uniform(90, 140)
    bead = rng.uniform(14, 24)
    for i in range(n):
        a = 2 * math.pi * i / n
        x, y = cx + r * math.cos(a), cy + r * 0.8 * math.sin(a)
        draw.ellipse(
            [x - bead, y - bead, x + bead, y + bead],
            fill=_jitter(rng, tone, 6),
            outline=tuple(max(0, c - 40) for c in tone),
        )
        if dots:
            draw.point(
                [(x + rng.uniform(-6, 6), y + rng.uniform(-6, 6)) for _ in range(4)],
                fill=(80, 70, 50),
            )


def _chopsticks(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb) -> None:
    for k in range(int(rng.integers(2, 7))):
        x = 110 + k * rng.uniform(18, 30)
        draw.polygon([(x, 40), (x + 14, 40), (x + 10, 350), (x + 4, 350)], fill=tone)
        draw.line([(x + 7, 40), (x + 7, 340)], fill=tuple(max(0, c - 15) for c in tone))


def _plate_shape(x: float, y: float, s: float, angle: float) -> list[tuple[float, float]]:
    """A rounded shield outline, the silhouette of one pangolin scale."""
    pts = []
    for i in range(16):
        t = i / 15 * math.pi
        px, py = s * math.cos(t), -s * 0.2 + s * 0.9 * math.sin(t)
        pts.append((px, py))
    pts.append((0, -s * 0.9))
    ca, sa = math.cos(angle), math.sin(angle)
    return [(x + px * ca - py * sa, y + px * sa + py * ca) for px, py in pts]


def _scales(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb, loose: bool):
    s = rng.uniform(16, 30)
    if loose:
        for _ in range(int(rng.integers(25, 60))):
            x, y = rng.normal(192, 60), rng.normal(210, 45)
            draw.polygon(
                _plate_shape(x, y, s * rng.uniform(0.7, 1.2), rng.uniform(0, 6.3)),
                fill=_jitter(rng, tone, 18),
                outline=tuple(c // 2 for c in tone),
            )
        return
    for row in range(8):
        for col in range(9):
            x = 20 + col * s * 1.7 + (row % 2) * s * 0.85
            y = 40 + row * s * 1.1
            draw.polygon(
                _plate_shape(x, y, s, 0.0),
                fill=_jitter(rng, tone, 14),
                outline=tuple(c // 2 for c in tone),
            )
            draw.line([(x, y - s * 0.5), (x, y + s * 0.5)], fill=tuple(c * 3 // 4 for c in tone))


def _holder(draw: ImageDraw.ImageDraw, rng: np.random.Generator, kind: str) -> None:
    """A palm, a plastic bag or a dish under loose items."""
    if kind == "palm":
        skin = _jitter(rng, (214, 170, 140), 25)
        draw.ellipse([70, 140, 320, 360], fill=skin)
        for k in range(4):
            draw.rounded_rectangle([90 + k * 55, 40, 130 + k * 55, 200], radius=18, fill=skin)
    elif kind == "bag":
        draw.polygon([(60, 120), (330, 110), (350, 370), (40, 370)], fill=(215, 218, 222))
        draw.line([(60, 120), (330, 110)], fill=(180, 180, 190), width=4)
    elif kind == "dish":
        draw.ellipse(
            [40, 150, 344, 350],
            fill=_jitter(rng, (235, 235, 235), 15),
            outline=(120, 120, 130),
            width=4,
        )


def _horn_cone(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb) -> None:
    base_w = rng.uniform(100, 160)
    h = rng.uniform(200, 300)
    cx, base_y = rng.uniform(160, 224), rng.uniform(320, 360)
    lean = rng.uniform(-50, 50)
    pts = [(cx - base_w / 2, base_y)]
    for i in range(1, 11):
        t = i / 10
        pts.append((cx - base_w / 2 * (1 - t) + lean * t * t, base_y - h * t))
    for i in range(10, -1, -1):
        t = i / 10
        pts.append((cx + base_w / 2 * (1 - t) ** 1.4 + lean * t * t, base_y - h * t))
    draw.polygon(pts, fill=tone)
    fibre = tuple(max(0, c - 25) for c in tone)
    for _ in range(int(rng.integers(12, 26))):
        u = rng.uniform(-0.45, 0.45)
        draw.line(
            [
                (cx + u * base_w, base_y - 4),
                (cx + u * base_w * 0.3 + lean * 0.6, base_y - h * 0.75),
            ],
            fill=fibre,
            width=1,
        )


def _powder(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb) -> None:
    _holder(draw, rng, "dish")
    for _ in range(1500):
        x, y = rng.normal(192, 55), rng.normal(250, 22)
        c = _jitter(rng, tone, 20)
        draw.point((x, y), fill=c)
    draw.ellipse([130, 220, 254, 280], fill=tone)


def _cup(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb) -> None:
    top = rng.uniform(80, 120)
    draw.polygon([(80, top), (304, top - 20), (230, 320), (160, 320)], fill=tone)
    draw.ellipse([80, top - 40, 304, top + 20], fill=tuple(max(0, c - 30) for c in tone))
    draw.rectangle([150, 320, 240, 345], fill=tone)
    for _ in range(10):
        x = rng.uniform(140, 250)
        draw.line([(x, top + 10), (x - 10, 310)], fill=tuple(max(0, c - 20) for c in tone))


def _comb(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb) -> None:
    x0, y0 = rng.uniform(40, 80), rng.uniform(110, 150)
    draw.rounded_rectangle([x0, y0, x0 + 280, y0 + 70], radius=20, fill=tone)
    for k in range(28):
        x = x0 + 8 + k * 9.5
        draw.rectangle([x, y0 + 60, x + 5, y0 + 170], fill=tone)
    for _ in range(6):  # the light bands of buffalo horn
        y = rng.uniform(y0 + 5, y0 + 60)
        draw.line(
            [(x0 + 10, y), (x0 + 270, y + rng.uniform(-5, 5))],
            fill=_jitter(rng, (170, 140, 100), 30),
            width=3,
        )


def _bone_piece(draw: ImageDraw.ImageDraw, rng: np.random.Generator, tone: Rgb) -> None:
    y = rng.uniform(150, 230)
    draw.rounded_rectangle([90, y - 18, 300, y + 18], radius=12, fill=tone)
    for x in (90, 300):
        draw.ellipse([x - 40, y - 50, x + 10, y], fill=tone)
        draw.ellipse([x - 40, y, x + 10, y + 50], fill=tone)
    for _ in range(40):
        draw.point((rng.uniform(90, 300), y + rng.uniform(-15, 15)), fill=(110, 95, 70))


def _fish_scales(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(60, 120))):
        x, y, r = rng.normal(192, 70), rng.normal(200, 60), rng.uniform(6, 12)
        c = _jitter(rng, (200, 205, 210), 30)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=c, outline=(150, 160, 170))


def _plush(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    colour = [(240, 150, 190), (120, 170, 230), (150, 150, 160), (200, 170, 120)]
    tone = _jitter(rng, colour[int(rng.integers(0, 4))], 15)
    draw.ellipse([80, 150, 300, 330], fill=tone)
    draw.ellipse([220, 90, 340, 210], fill=tone)
    for dx in (250, 300):
        draw.ellipse([dx - 8, 130, dx + 8, 146], fill=(20, 20, 20))
    draw.ellipse([180, 60, 260, 150], fill=tuple(min(255, c + 25) for c in tone))
    for x in (110, 250):
        draw.rounded_rectangle([x, 300, x + 40, 350], radius=12, fill=tone)


def _phone(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    x0 = rng.uniform(100, 150)
    draw.rounded_rectangle([x0, 50, x0 + 140, 340], radius=22, fill=_jitter(rng, (40, 40, 50), 30))
    draw.rectangle([x0 + 10, 75, x0 + 130, 310], fill=_jitter(rng, (60, 110, 190), 60))


def _shirt(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    c = _jitter(rng, (120, 120, 120), 110)
    draw.polygon(
        [
            (120, 70),
            (264, 70),
            (340, 130),
            (300, 170),
            (270, 150),
            (270, 340),
            (114, 340),
            (114, 150),
            (84, 170),
            (44, 130),
        ],
        fill=c,
    )
    draw.ellipse([165, 55, 219, 95], fill=tuple(max(0, v - 40) for v in c))


def _bowl(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    c = _jitter(rng, (200, 120, 80), 70)
    draw.chord([70, 90, 314, 330], 0, 180, fill=c)
    draw.ellipse([70, 180, 314, 240], fill=tuple(max(0, v - 50) for v in c))
    for k in range(5):
        draw.arc([90 + k * 4, 120, 294 - k * 4, 320], 20, 160, fill=(250, 250, 240), width=2)


def _vials(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    for k in range(int(rng.integers(2, 5))):
        x = 90 + k * 60
        draw.rounded_rectangle([x, 100, x + 40, 320], radius=10, fill=(225, 230, 235))
        draw.rectangle(
            [x + 4, rng.uniform(170, 250), x + 36, 316], fill=_jitter(rng, (190, 170, 40), 30)
        )
        draw.rectangle([x - 2, 88, x + 42, 110], fill=(60, 60, 60))


def _casque(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    draw.rounded_rectangle([90, 120, 300, 280], radius=30, fill=_jitter(rng, (225, 190, 70), 20))
    draw.rounded_rectangle([90, 120, 180, 280], radius=30, fill=_jitter(rng, (200, 50, 40), 20))


def _tortoiseshell(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    draw.ellipse([60, 80, 324, 320], fill=_jitter(rng, (200, 140, 60), 20))
    for _ in range(40):
        x, y, r = rng.uniform(90, 300), rng.uniform(110, 290), rng.uniform(6, 22)
        draw.ellipse([x - r, y - r * 0.7, x + r, y + r * 0.7], fill=_jitter(rng, (90, 50, 20), 20))


def _saiga(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    tone = _jitter(rng, (225, 205, 150), 15)
    _horn_cone(draw, rng, tone)
    for k in range(12):  # the ridged rings of saiga horn
        y = 330 - k * 17
        draw.arc([140, y - 10, 250, y + 10], 0, 180, fill=tuple(c - 40 for c in tone), width=2)


def _bone_tone(rng: np.random.Generator) -> Rgb:
    return _jitter(rng, (225, 215, 185), 18)


def _resin_tone(rng: np.random.Generator) -> Rgb:
    return _jitter(rng, (242, 236, 214), 10)


def _scale_tone(rng: np.random.Generator) -> Rgb:
    return _jitter(rng, (125, 90, 55), 25)


def _rhino_tone(rng: np.random.Generator) -> Rgb:
    return _jitter(rng, (120, 108, 92), 20)


def _pick(rng: np.random.Generator, painters: list[Painter]) -> Painter:
    return painters[int(rng.integers(0, len(painters)))]


def _ivory(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    tone = _ivory_tone(rng)
    _pick(
        rng,
        [
            lambda d, r: _bangle(d, r, tone, "grain"),
            lambda d, r: _figurine(d, r, tone, True),
            lambda d, r: _tusk(d, r, tone),
            lambda d, r: _beads(d, r, tone, False),
            lambda d, r: _chopsticks(d, r, tone),
        ],
    )(draw, rng)


def _bone(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    tone = _bone_tone(rng)
    _pick(
        rng,
        [
            lambda d, r: _bangle(d, r, tone, "pits"),
            lambda d, r: _figurine(d, r, tone, False),
            lambda d, r: _beads(d, r, tone, True),
            lambda d, r: _bone_piece(d, r, tone),
        ],
    )(draw, rng)


def _resin(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    tone = _resin_tone(rng)
    _pick(
        rng,
        [
            lambda d, r: _bangle(d, r, tone, "gloss"),
            lambda d, r: _figurine(d, r, tone, False),
            lambda d, r: _beads(d, r, tone, False),
        ],
    )(draw, rng)


def _pangolin(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    tone = _scale_tone(rng)
    style = int(rng.integers(0, 4))
    if style == 0:
        _scales(draw, rng, tone, loose=False)
        return
    _holder(draw, rng, ["palm", "bag", "dish"][style - 1])
    _scales(draw, rng, tone, loose=True)


def _rhino(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    tone = _rhino_tone(rng)
    _pick(
        rng,
        [
            lambda d, r: _horn_cone(d, r, tone),
            lambda d, r: _horn_cone(d, r, tone),
            lambda d, r: _powder(d, r, _jitter(r, (170, 160, 145), 12)),
            lambda d, r: _cup(d, r, tone),
        ],
    )(draw, rng)


def _horn(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    tone = _jitter(rng, (55, 40, 30), 20)
    _pick(
        rng,
        [
            lambda d, r: _comb(d, r, tone),
            lambda d, r: _cup(d, r, tone),
            lambda d, r: _horn_cone(d, r, _jitter(r, (40, 35, 30), 15)),
        ],
    )(draw, rng)


def _other(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    _pick(rng, [_phone, _shirt, _bowl])(draw, rng)


def _tiger_bone(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    _bone_piece(draw, rng, _jitter(rng, (215, 200, 160), 15))


PAINTERS: dict[str, Painter] = {
    "ivory": _ivory,
    "bone": _bone,
    "resin": _resin,
    "pangolin_scale": _pangolin,
    "rhino_horn": _rhino,
    "horn": _horn,
    "other": _other,
    "fishscale": lambda d, r: _fish_scales(d, r),
    "plush": lambda d, r: _plush(d, r),
    "tiger_part": _tiger_bone,
    "hornbill_casque": lambda d, r: _casque(d, r),
    "hawksbill_shell": lambda d, r: _tortoiseshell(d, r),
    "bear_bile": lambda d, r: _vials(d, r),
    "saiga_horn": lambda d, r: _saiga(d, r),
}


def _finish(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate, crop, relight and add sensor noise, then shrink to the final size."""
    img = img.rotate(
        float(rng.uniform(-35, 35)),
        resample=Image.BICUBIC,
        fillcolor=tuple(int(c) for c in np.asarray(img)[2, 2]),
    )
    zoom = rng.uniform(0.75, 1.0)
    side = int(CANVAS * zoom)
    x0, y0 = rng.integers(0, CANVAS - side + 1, size=2)
    img = img.crop((int(x0), int(y0), int(x0) + side, int(y0) + side)).resize(
        (SIZE, SIZE), Image.LANCZOS
    )
    arr = np.asarray(img).astype(np.float32)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    angle = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0.05, 0.3) * (
        (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle)
    )
    arr = arr * light[..., None] * rng.uniform(0.8, 1.15)
    arr += rng.normal(0, rng.uniform(1.0, 3.5), arr.shape)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.uniform() < 0.4:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return out


def draw_photo(kind: str, name: str) -> Image.Image:
    """Draw one photo of ``kind``; the same ``name`` always gives the same picture."""
    rng = np.random.default_rng([SEED, zlib.crc32(name.encode("utf-8"))])
    img = _background(rng)
    PAINTERS[kind](ImageDraw.Draw(img), rng)
    return _finish(img, rng)


def referenced_photos(sample_dir: Path) -> list[tuple[str, str]]:
    """(relative path, kind) of every drawable photo the listing tables reference."""
    found: dict[str, str] = {}
    for table in ("listings.csv", "new_listings.csv"):
        path = sample_dir / table
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                for rel in filter(None, (row.get("images") or "").split(";")):
                    match = PHOTO_NAME.match(rel.strip())
                    if match and match.group(1) in PAINTERS:
                        found[rel.strip()] = match.group(1)
    return sorted(found.items())


def write_manifest(sample_dir: Path, out_dir: Path) -> int:
    """Draw the photo-only manifest and write ``photo_manifest.csv``; return the photo count."""
    rows = []
    (out_dir / "photos" / "manifest").mkdir(parents=True, exist_ok=True)
    for label, count in N_MANIFEST_PER_LABEL.items():
        for i in range(count):
            rel = f"photos/manifest/{label}_{i:03d}.jpg"
            draw_photo(label, "manifest/" + rel).save(out_dir / rel, quality=QUALITY)
            rows.append((rel, label))
    with (out_dir / "photo_manifest.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "label"])
        writer.writerows(rows)
    return len(rows)


def write_broken(out_dir: Path) -> None:
    """A JPEG cut off after 40 % of its bytes: loaders must report it, not crash."""
    from io import BytesIO

    buf = BytesIO()
    draw_photo("ivory", "broken").save(buf, format="JPEG", quality=QUALITY)
    data = buf.getvalue()
    (out_dir / "photos" / "broken_truncated.jpg").write_bytes(data[: len(data) * 2 // 5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--sample-dir", type=Path, default=root / "data" / "sample")
    parser.add_argument("--out", type=Path, default=None, help="defaults to --sample-dir")
    args = parser.parse_args()
    out_dir = args.out or args.sample_dir
    (out_dir / "photos").mkdir(parents=True, exist_ok=True)
    photos = referenced_photos(args.sample_dir)
    for rel, kind in photos:
        draw_photo(kind, rel).save(out_dir / rel, quality=QUALITY)
    n_manifest = write_manifest(args.sample_dir, out_dir)
    write_broken(out_dir)
    print(f"wrote {len(photos)} listing photos, {n_manifest} manifest photos, 1 broken photo")


if __name__ == "__main__":
    main()
