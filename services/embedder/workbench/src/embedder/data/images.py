"""Robust PIL image loading and preprocessing, matching the in-graph path in ``tf_preprocess``.

Steps: EXIF orientation, any mode to RGB (alpha composited on white, CMYK/palette/16-bit
converted), optionally object framing (crop to the non-white bounding box), centre-pad to a
square on white, bilinear antialiased resize.

Object framing is why a shoe from another shop looks like a shoe here: shops frame products
differently (Berg's fill the photo, Myntra's sit in a 3:4 frame with white around them); cropping
to the product and padding it with a fixed margin removes that difference before the model sees
it. It is label-free and per image, so it needs nothing fitted.

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
# Object framing: a pixel darker than this in any channel is product, not white background.
OBJECT_THRESHOLD = 235
# Fewer product pixels than this (a blank or near-blank image): no crop.
MIN_OBJECT_PIXELS = 16
# Margin on each side: the product's longer side // 25 (4 %).
MARGIN_DIVISOR = 25


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


def crop_to_object(image: Image.Image) -> Image.Image:
    """RGB image cropped to the bounding box of its non-white pixels (as ``tf_preprocess``)."""
    mask = (np.asarray(image) < OBJECT_THRESHOLD).any(axis=2)
    if int(mask.sum()) <= MIN_OBJECT_PIXELS:
        return image
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return image.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))


def pad_to_square(image: Image.Image, margin: int = 0) -> Image.Image:
    """Centre on a white square canvas ``margin`` wider on each side than the longer side.

    Same offsets as ``tf_preprocess.pad_to_square``.
    """
    width, height = image.size
    side = max(width, height) + 2 * margin
    if width == height == side:
        return image
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def preprocess_pil(image: Image.Image, size: int, object_crop: bool = False) -> np.ndarray:
    """Oriented, RGB, (cropped to the product,) square, resized: uint8 [size, size, 3]."""
    image = to_rgb(ImageOps.exif_transpose(image) or image)
    if object_crop:
        image = crop_to_object(image)
        image = pad_to_square(image, max(image.size) // MARGIN_DIVISOR)
    else:
        image = pad_to_square(image)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def load_image(
    source: str | Path | bytes,
    size: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    object_crop: bool = False,
) -> np.ndarray:
    """Decode and preprocess a file or bytes to uint8 [size, size, 3]; raises ImageError."""
    image = _open(source, max_pixels, size)
    try:
        return preprocess_pil(image, size, object_crop)
    except (OSError, ValueError) as exc:
        raise CorruptImageError(f"cannot preprocess image: {exc}") from exc
