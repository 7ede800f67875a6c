"""The HTML review report: one self-contained file, readable offline, safe with any listing.

Everything is inline: CSS in the page, photos as small base64 JPEG data URIs, no script at
all (the page's Content-Security-Policy forbids scripts and remote loads). Listing text is
split into plain and matched segments first and each segment is escaped by Jinja's
autoescaping, so markup in a listing shows as text and the highlights cannot be broken out of.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader

from wildml.photos import PhotoError, PhotoLimits, load_rgb, resolve_inside

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).with_name("templates")
SECTIONS = (
    ("urgent", "Urgent"),
    ("review", "Review"),
    ("low", "Low priority"),
    ("duplicate", "Duplicates of earlier listings"),
)
MAX_TEXT_CHARS = 2000
CONTEXT_CHARS = 160


def merge_spans(spans: Iterable[tuple[int, int, str, str]], length: int) -> list[tuple]:
    """Sorted, non-overlapping ``(start, end, kind, title)`` spans clipped to ``[0, length]``."""
    cleaned = sorted(
        (max(0, int(s)), min(length, int(e)), kind, title)
        for s, e, kind, title in spans
        if int(e) > int(s) and int(s) < length
    )
    merged: list[list[Any]] = []
    for start, end, kind, title in cleaned:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            continue
        merged.append([start, end, kind, title])
    return [tuple(span) for span in merged]


_BIDI_CONTROLS = dict.fromkeys(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)], "\ufffd"
)


def segments(text: str, spans: list[tuple], max_chars: int = MAX_TEXT_CHARS) -> list[dict]:
    """Split ``text`` into plain and marked segments (raw strings; escaping is the template's).

    A long text is cut to its start and windows around the marks, with ``…`` between.
    """
    # Bidirectional controls would let a listing reorder how its own text (and the page after
    # it) reads; each becomes one visible U+FFFD, so the highlight offsets still hold.
    text = text.translate(_BIDI_CONTROLS)
    spans = merge_spans(spans, len(text))
    keep = _windows(len(text), spans, max_chars)
    out: list[dict] = []
    for win_start, win_end in keep:
        if out or win_start > 0:
            out.append({"kind": "plain", "text": " … " if out else "… ", "title": ""})
        cursor = win_start
        for start, end, kind, title in spans:
            if end <= win_start or start >= win_end:
                continue
            start, end = max(start, win_start), min(end, win_end)
            if start > cursor:
                out.append({"kind": "plain", "text": text[cursor:start], "title": ""})
            out.append({"kind": kind, "text": text[start:end], "title": title})
            cursor = end
        if cursor < win_end:
            out.append({"kind": "plain", "text": text[cursor:win_end], "title": ""})
    if keep and keep[-1][1] < len(text):
        out.append({"kind": "plain", "text": " …", "title": ""})
    return out


def _windows(length: int, spans: list[tuple], max_chars: int) -> list[tuple[int, int]]:
    if length <= max_chars:
        return [(0, length)]
    windows = [(0, max_chars // 2)]
    for start, end, _kind, _title in spans:
        windows.append((max(0, start - CONTEXT_CHARS), min(length, end + CONTEXT_CHARS)))
    windows.sort()
    merged = [list(windows[0])]
    for start, end in windows[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def thumbnail_uri(path: Path, size: int, limits: PhotoLimits | None = None) -> str | None:
    """A small JPEG of the photo as a ``data:`` URI, or None when it cannot be used."""
    try:
        image = load_rgb(path, limits)
    except (PhotoError, OSError, ValueError):  # ValueError: a NUL byte in the name
        return None
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _thumbs(row: dict[str, Any], images_root: Path | None, size: int, limit: int = 3) -> list:
    uris = []
    for relative in [p for p in str(row.get("photos") or "").split(";") if p.strip()][:limit]:
        try:
            path = resolve_inside(images_root, relative) if images_root else Path(relative)
        except PhotoError:
            continue
        uri = thumbnail_uri(path, size)
        if uri:
            uris.append(uri)
    return uris


def report_item(row: dict[str, Any], images_root: Path | None, thumb_px: int) -> dict[str, Any]:
    """What the template shows for one queue row."""
    reasons = json.loads(row["reasons"]) if row.get("reasons") else {}
    kb = reasons.get("kb", [])
    spans = [
        (
            ev["start"],
            ev["end"],
            "defused" if ev["status"] == "defused" else "mark",
            f"{ev['product']} · {ev['kind']} · {ev['status']}",
        )
        for ev in kb
    ]
    p_final = row.get("p_final")
    valid_p = isinstance(p_final, float) and p_final == p_final
    return {
        **{k: row.get(k) or "" for k in ("listing_id", "why", "lang", "platform", "seller_id")},
        **{k: row.get(k) or "" for k in ("url", "reason", "duplicate_of", "product_guess")},
        "priority": row["priority"],
        "p_final": p_final if valid_p else None,
        "p_text": reasons.get("p_text"),
        "badge": row.get("tier") or "duplicate",
        "segments": segments(str(row.get("text") or ""), spans),
        "kb": kb,
        "text_features": reasons.get("text", []),
        "photo": reasons.get("photo"),
        "thumbs": _thumbs(row, images_root, thumb_px),
    }


def render_report(
    rows: list[dict[str, Any]],
    *,
    images_root: Path | None,
    summary: dict[str, Any],
    package_digest: str = "",
    inputs: str = "",
    queue_file: str = "",
    thumb_px: int = 96,
) -> str:
    """Render queue rows (already in priority order) into one HTML page."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True)
    by_key: dict[str, list[dict]] = {key: [] for key, _title in SECTIONS}
    for row in rows:
        key = row.get("tier") or ("duplicate" if row.get("status") == "duplicate" else "")
        if key in by_key:
            by_key[key].append(report_item(row, images_root, thumb_px))
    sections = [{"key": key, "title": title, "listings": by_key[key]} for key, title in SECTIONS]
    return env.get_template("queue.html.j2").render(
        sections=sections,
        summary=summary,
        package_digest=package_digest,
        inputs=inputs,
        queue_file=queue_file,
        thumb_px=thumb_px,
    )


def write_report(rows: list[dict[str, Any]], job: Any, stats: Any) -> Path:
    """Write the HTML report of a scoring job (``job.report_path``) atomically."""
    import os

    from wildml.score_manifest import package_digest, read_manifest

    summary = {
        "rows": stats.rows,
        "by_status": sorted(stats.by_status.items()),
        "shown": len(rows),
        "truncated": len(rows) >= job.report_max_listings,
    }
    html = render_report(
        rows,
        images_root=job.images_root,
        summary=summary,
        package_digest=package_digest(read_manifest(job.package_dir)),
        inputs=", ".join(p.name for p in job.inputs),
        queue_file=job.out_path.name,
        thumb_px=job.thumb_px,
    )
    path = Path(job.report_path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    logger.info("report: %d listings -> %s", len(rows), path)
    return path
