"""Header-only checks on encoded images before any model runs, so memory stays bounded.

SavedModels exported before the in-graph guard (``embedder.image_guard``) decode whatever they
are given, and TensorFlow's GIF decoder decompresses every frame even when only the first is
used. Here, with no decoding: the header's width x height must be within the pixel limit, a GIF
is cut after its first frame (what every export embeds anyway), and animated WebP is refused.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from embedder_server.errors import invalid

# Sub-blocks walked to the end of a GIF's first frame (255-byte sub-blocks: ~25 MB of data).
MAX_GIF_BLOCKS = 100_000


def _colour_table(packed: int) -> int:
    return 3 * (2 << (packed & 7)) if packed & 0x80 else 0


def gif_first_frame(data: bytes) -> tuple[bytes, int, int]:
    """(``data`` cut after its first image plus a trailer, that image's width, height).

    A GIF whose first image does not end (truncated, or none) is returned whole: it holds at
    most one frame. Raises INVALID_ARGUMENT when the first frame needs more than
    ``MAX_GIF_BLOCKS`` sub-blocks. Mirrors ``embedder.image_guard.first_gif_frame``.
    """
    size = len(data)
    if size < 13:
        return data, 0, 0
    pos, width, height, blocks = 13 + _colour_table(data[10]), 0, 0, 0
    while pos < size:
        code = data[pos]
        if code == 0x21:  # extension: label, then sub-blocks
            pos, image = pos + 2, False
        elif code == 0x2C and pos + 10 <= size:  # image descriptor: 10 bytes, colour table, LZW
            width = int.from_bytes(data[pos + 5 : pos + 7], "little")
            height = int.from_bytes(data[pos + 7 : pos + 9], "little")
            pos, image = pos + 11 + _colour_table(data[pos + 9]), True
        else:
            return data, width, height
        while pos < size:
            blocks += 1
            if blocks > MAX_GIF_BLOCKS:
                raise invalid("GIF has too many blocks in its first frame")
            length = data[pos]
            pos += 1 + length
            if length == 0:
                break
        else:
            return data, width, height
        if image:
            return data[:pos] + b";", width, height
    return data, width, height


def _check_one(data: bytes, max_pixels: int) -> bytes:
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            fmt = img.format
            animated_webp = fmt == "WEBP" and getattr(img, "n_frames", 1) > 1
    except Image.DecompressionBombError as exc:
        raise invalid(f"Image rejected as a decompression bomb: {exc}") from exc
    except Exception:  # noqa: BLE001 - not an image PIL knows: the model's decoder judges it
        return data
    _within(width, height, max_pixels, "Image")
    if animated_webp:
        raise invalid("Animated WebP is not supported: send JPEG, PNG, GIF or BMP")
    if fmt == "GIF":
        data, width, height = gif_first_frame(data)
        _within(width, height, max_pixels, "GIF frame")
    return data


def _within(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise invalid(
            f"{what} of {width}x{height} = {width * height} pixels exceeds the limit of "
            f"{max_pixels} pixels"
        )


def check_image_pixels(values: np.ndarray, max_pixels: int) -> np.ndarray:
    """``values`` with each GIF cut to its first frame; INVALID_ARGUMENT above ``max_pixels``."""
    originals = [
        item if isinstance(item, bytes) else str(item).encode() for item in values.reshape(-1)
    ]
    checked = [_check_one(data, max_pixels) for data in originals]
    if all(new is old for new, old in zip(checked, originals, strict=True)):
        return values
    out = np.empty(len(checked), dtype=object)
    out[:] = checked
    return out.reshape(values.shape)
