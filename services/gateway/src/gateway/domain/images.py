"""Untrusted image bytes: allow-listed formats, a pixel limit, EXIF orientation applied, decoding
off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from gateway.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia

# What the embedder's graph decodes natively; WebP is accepted and re-encoded as PNG.
NATIVE_FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP"})
ALLOWED_FORMATS = NATIVE_FORMATS | {"WEBP"}
ORIENTATION = 0x0112  # EXIF tag: how to turn the stored pixels to view the photo
PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
# Checked on the event loop when this small and cheap to decode (a baseline JPEG or a plain
# PNG): well under a millisecond, less than the hand-off to a worker thread and back costs.
INLINE_MAX_PIXELS = 512 * 512
INLINE_MAX_BYTES = 512 * 1024


@dataclass(frozen=True)
class ImageLimits:
    """What one untrusted image may cost: its bytes, its decoded pixels, its decoding time."""

    max_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 25_000_000
    decode_timeout_s: float = 2.0


def check_size(data: bytes, max_bytes: int) -> None:
    """The checks that need no decoding (they run before the cache lookup)."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"image is larger than {max_bytes} bytes")
    if not data:
        raise InvalidInput("empty image")


def check_image(data: bytes, max_bytes: int, max_pixels: int) -> bytes:
    """Return bytes the embedder can decode, or raise a 4xx domain error.

    The pixel limit is checked on the size the header declares, before anything is decoded;
    Pillow's own bomb check (which fires inside ``Image.open``) is the same refusal: 413.
    Animations (GIF, APNG, animated WebP) are sent as their first frame only, re-encoded:
    the served model decodes every frame it is given, so 100 frames cost 100 times the
    memory, while a shop's animated product picture is still a fair query."""
    check_size(data, max_bytes)
    with _refusals(max_pixels):
        with Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS)) as img:
            return _checked(img, data, max_pixels)


@contextlib.contextmanager
def _refusals(max_pixels: int) -> Iterator[None]:
    """Pillow's exceptions as the domain's 4xx errors (one mapping for both paths)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PayloadTooLarge(f"image has more than {max_pixels} pixels") from None
    except UnidentifiedImageError:
        allowed = sorted(ALLOWED_FORMATS)
        raise UnsupportedMedia(f"not an image in an allowed format {allowed}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"corrupt image: {exc}") from exc


def _checked(img: Image.Image, data: bytes, max_pixels: int) -> bytes:
    """The checks on an opened image (inside ``_refusals``): the pixel limit, then a decode."""
    width, height = img.size
    if width * height > max_pixels:
        raise PayloadTooLarge(f"image has more than {max_pixels} pixels")
    animated = bool(getattr(img, "is_animated", False))
    turned = img.getexif().get(ORIENTATION, 1) not in (0, 1)
    passed_on = img.format in NATIVE_FORMATS and not turned and not animated
    if passed_on and img.format == "JPEG":
        # Only checked, never used: decoding at 1/8 scale still reads every
        # entropy-coded byte (truncated or corrupt data fails alike), for 40 %
        # of the CPU of a full decode (a 256x256 photo: 150 against 370 us).
        img.draft(None, (max(1, width // 8), max(1, height // 8)))
    img.load()  # a decode (of frame 1) catches truncated or corrupt files
    if passed_on:
        return data
    return _reencode(img, upright=turned)


def _reencode(img: Image.Image, *, upright: bool) -> bytes:
    """WebP, an animation's current (first) frame, or a photo stored turned (phones tag portrait
    shots "rotate 90"), as bytes that any embedder decodes upright: the pixels turned as the
    EXIF tag says, and no tag left to apply twice. A JPEG stays a JPEG so that a phone photo
    does not grow tenfold as PNG (quality 95, colour not subsampled a second time); anything
    else becomes a lossless single-frame PNG."""
    source = img.format
    if upright:
        img = ImageOps.exif_transpose(img)
    out = io.BytesIO()
    if source == "JPEG":
        img.save(out, "JPEG", quality=95, subsampling=0)
        return out.getvalue()
    if img.mode not in PNG_MODES:
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    img.save(out, "PNG")
    return out.getvalue()


def _cheap_to_decode(img: Image.Image, size: int) -> bool:
    """A small baseline JPEG or non-interlaced, single-frame PNG: its decoding time is bounded by
    its few pixels. Anything else (progressive JPEG scans, other formats, large or odd files)
    is decoded in a worker thread under the timeout."""
    width, height = img.size
    if size > INLINE_MAX_BYTES or width * height > INLINE_MAX_PIXELS:
        return False
    if img.format == "JPEG":
        return not (img.info.get("progressive") or img.info.get("progression"))
    return not img.info.get("interlace") and not getattr(img, "is_animated", False)


async def check_image_async(data: bytes, limits: ImageLimits) -> bytes:
    """Decode in a worker thread; a pathological file cannot stall the event loop. Small
    baseline images are checked inline (``_cheap_to_decode``), opened once for both."""
    check_size(data, limits.max_bytes)
    if len(data) <= INLINE_MAX_BYTES:
        try:
            with warnings.catch_warnings():  # a bomb's warning too goes to the thread's check
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data), formats=("JPEG", "PNG"))
        except Exception:  # noqa: BLE001 - undecidable here: check_image in a thread says why
            img = None
        if img is not None:
            with img:
                if _cheap_to_decode(img, len(data)):
                    with _refusals(limits.max_pixels):
                        return _checked(img, data, limits.max_pixels)
    timeout_s = limits.decode_timeout_s
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(check_image, data, limits.max_bytes, limits.max_pixels), timeout_s
        )
    except TimeoutError:
        raise InvalidInput(f"image took more than {timeout_s} s to decode") from None
