"""Robust PIL image loading and preprocessing, matching the in-graph path in ``tf_preprocess``.

Steps: EXIF orientation, any mode to RGB (alpha composited on white, CMYK/palette/16-bit
converted), centre-pad to a square on white, bilinear antialiased resize.

Huge images: PIL's decompression-bomb check is replaced by our own pixel limit. A JPEG over the
limit is decoded at a reduced DCT scale (``Image.draft``), which never allocates the full image;
any other format over the limit is rejected with :class:`ImageTooLargeError`. Corrupt or
truncated files raise :class:`CorruptImageError`; catalogue loading reports and skips both.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from embedder.errors import CorruptImageError, ImageTooLargeError

# 40 megapixels: far above any catalogue photo, small enough to decode safely on a laptop.
DEFAULT_MAX_PIXELS = 40_000_000
WHITE = (255, 255, 255)


def _open(source: str | Path | bytes, max_pixels: int, target: int) -> Image.Image:
    data = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            # Our own limit below replaces PIL's warning/error, which depends on a global.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(data)
            width, height = image.size
            if width * height > max_pixels:
                if image.format != "JPEG":
                    raise ImageTooLargeError(
                        f"{width}x{height} {image.format} image exceeds the "
                        f"{max_pixels:,}-pixel limit"
                    )
                # Decode at 1/2, 1/4 or 1/8 scale: never allocates the full-size raster.
                image.draft("RGB", (max(target, 1), max(target, 1)))
                if image.size[0] * image.size[1] > max_pixels:
                    raise ImageTooLargeError(
                        f"{width}x{height} JPEG exceeds the {max_pixels:,}-pixel limit even at 1/8"
                    )
            image.load()
    except Image.DecompressionBombError as exc:  # draft disabled the check for JPEG only
        raise ImageTooLargeError(str(exc)) from exc
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as exc:
        raise CorruptImageError(f"cannot decode image: {exc}") from exc
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparency is composited on white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = float(array.max()) if array.size else 0.0
        if peak > 255:
            array = array * (255.0 / peak)
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, WHITE)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB") if image.mode != "RGB" else image


def pad_to_square(image: Image.Image) -> Image.Image:
    """Centre on a white square canvas (same offsets as ``tf_preprocess.pad_to_square``)."""
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def preprocess_pil(image: Image.Image, size: int) -> np.ndarray:
    """Oriented, RGB, square, resized: uint8 [size, size, 3]."""
    image = ImageOps.exif_transpose(image) or image
    image = pad_to_square(to_rgb(image))
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def load_image(
    source: str | Path | bytes, size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode and preprocess a file or bytes to uint8 [size, size, 3]; raises ImageError."""
    image = _open(source, max_pixels, size)
    try:
        return preprocess_pil(image, size)
    except (OSError, ValueError) as exc:
        raise CorruptImageError(f"cannot preprocess image: {exc}") from exc
