"""Opening listing photos safely: path containment, size and pixel guards, full decode.

Every failure is a :class:`PhotoError` carrying a short ``reason`` code that ends up in
``rejects.csv`` or the review queue, so one broken photo never stops a batch.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's own bomb guard is global; wildml applies its own per-call limit instead.
Image.MAX_IMAGE_PIXELS = None

REASONS = (
    "missing",
    "outside_root",
    "not_a_file",
    "file_too_large",
    "empty_file",
    "not_an_image",
    "too_many_pixels",
    "too_small",
    "truncated",
    "unreadable",
    "bad_path",
)


class PhotoError(Exception):
    """A photo that cannot be used; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PhotoLimits:
    """Limits applied before and while decoding a photo."""

    max_bytes: int = 20_000_000
    max_pixels: int = 40_000_000
    min_side: int = 16

    @classmethod
    def from_config(cls, cfg: dict | None) -> PhotoLimits:
        """Build from a params mapping, ignoring unknown keys."""
        cfg = cfg or {}
        fields = {k: int(cfg[k]) for k in ("max_bytes", "max_pixels", "min_side") if k in cfg}
        return cls(**fields)


@dataclass(frozen=True)
class PhotoInfo:
    """What a successful check learned about a photo."""

    path: Path
    width: int
    height: int
    format: str
    mode: str


def resolve_inside(root: str | os.PathLike, relative: str) -> Path:
    """Resolve ``relative`` under ``root``; refuse paths that leave it, even through links.

    Raises
    ------
    PhotoError
        ``outside_root`` for absolute paths, ``..`` escapes or links pointing out;
        ``missing`` when nothing is there; ``bad_path`` for a link loop or a name the file
        system refuses.
    """
    root_path = Path(root).resolve()
    rel = str(relative).strip()
    if not rel or os.path.isabs(rel) or rel.startswith("~"):
        raise PhotoError("outside_root", f"{relative!r} is not a path relative to {root_path}")
    try:
        candidate = (root_path / rel).resolve()
        if candidate != root_path and root_path not in candidate.parents:
            raise PhotoError("outside_root", f"{relative!r} resolves outside {root_path}")
        if not candidate.exists():
            raise PhotoError("missing", str(candidate))
        if not candidate.is_file():
            raise PhotoError("not_a_file", str(candidate))
    except (RuntimeError, OSError, ValueError) as err:
        # A link loop, a NUL byte, a name too long: names the file system cannot take.
        raise PhotoError("bad_path", f"{relative!r} cannot be resolved: {err}") from err
    return candidate


def _open_checked(path: Path, limits: PhotoLimits) -> Image.Image:
    size = path.stat().st_size
    if size == 0:
        raise PhotoError("empty_file", str(path))
    if size > limits.max_bytes:
        raise PhotoError("file_too_large", f"{path} has {size} bytes > {limits.max_bytes}")
    try:
        image = Image.open(path)
    except UnidentifiedImageError as err:
        raise PhotoError("not_an_image", str(path)) from err
    except OSError as err:
        # A file cut off inside its header fails here already, not at decode time.
        reason = "truncated" if "truncated" in str(err).lower() else "unreadable"
        raise PhotoError(reason, f"{path}: {err}") from err
    width, height = image.size
    if width * height > limits.max_pixels:
        image.close()
        raise PhotoError(
            "too_many_pixels", f"{path} is {width}x{height} > {limits.max_pixels} pixels"
        )
    if min(width, height) < limits.min_side:
        image.close()
        raise PhotoError("too_small", f"{path} is {width}x{height} < {limits.min_side} px")
    return image


def load_rgb(path: str | os.PathLike, limits: PhotoLimits | None = None) -> Image.Image:
    """Decode a photo fully and return it as an upright RGB image.

    Applies the EXIF orientation, takes the first frame of animated GIF/WebP, flattens alpha
    onto white and converts palette, CMYK and 16-bit modes to 8-bit RGB.

    Raises
    ------
    PhotoError
        With a reason from :data:`REASONS`.
    """
    path = Path(path)
    limits = limits or PhotoLimits()
    image = _open_checked(path, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except OSError as err:
        reason = "truncated" if "truncated" in str(err).lower() else "unreadable"
        raise PhotoError(reason, f"{path}: {err}") from err
    except (ValueError, SyntaxError, EOFError) as err:
        raise PhotoError("unreadable", f"{path}: {err}") from err


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def check_photo(path: str | os.PathLike, limits: PhotoLimits | None = None) -> PhotoInfo:
    """Fully decode a photo to prove it is usable; return its size, format and mode."""
    path = Path(path)
    limits = limits or PhotoLimits()
    with _open_checked(path, limits) as probe:
        fmt, mode = probe.format or "", probe.mode
    image = load_rgb(path, limits)
    return PhotoInfo(path=path, width=image.width, height=image.height, format=fmt, mode=mode)
