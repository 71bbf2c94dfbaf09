"""EXIF orientation: the gateway forwards phone photos upright, whatever the embedder decodes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image, ImageOps

from gateway.adapters.cache import LruCache
from gateway.domain.images import ORIENTATION, check_image
from gateway.domain.recommend import Recommender
from gateway.domain.timing import Timings
from gateway.domain.types import RecommendQuery

from .conftest import FakeEmbedder


def photo(width: int = 48, height: int = 24) -> Image.Image:
    """Landscape, with no symmetry: a turned or mirrored copy differs everywhere."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x * y) % 256], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8))


def encode(image: Image.Image, fmt: str = "JPEG", orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def pixels(data: bytes) -> np.ndarray:
    """Decoded as TF's decode_image does: the stored pixels, any EXIF tag ignored."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32)


@pytest.mark.parametrize("orientation", range(2, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_turned_photos_are_forwarded_upright_without_the_tag(fmt: str, orientation: int) -> None:
    data = encode(photo(), fmt, orientation)
    with Image.open(io.BytesIO(data)) as img:
        expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.float32)
    out = check_image(data, 10**6, 10**6)
    with Image.open(io.BytesIO(out)) as img:
        assert img.format == ("JPEG" if fmt == "JPEG" else "PNG")
        assert img.getexif().get(ORIENTATION, 1) == 1  # nothing left to turn a second time
    got = pixels(out)
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() < 3.0  # JPEG: one more generation at quality 95


@pytest.mark.parametrize("orientation", [None, 1])
def test_upright_native_images_are_forwarded_unchanged(orientation: int | None) -> None:
    for fmt in ("JPEG", "PNG"):
        data = encode(photo(), fmt, orientation)
        assert check_image(data, 10**6, 10**6) == data


@dataclass
class PixelEmbedder(FakeEmbedder):
    """Embeds what it decodes, ignoring EXIF as an older exported model does."""

    seen: list[np.ndarray] = field(default_factory=list)

    async def embed(self, model: str, images: Sequence[bytes]) -> list[list[float]]:
        out = []
        for data in images:
            with Image.open(io.BytesIO(data)) as img:
                small = np.asarray(img.convert("L").resize((2, 4)), dtype=np.float64).ravel()
            vector = small / np.linalg.norm(small)
            self.seen.append(vector)
            out.append(vector.tolist())
        return out


async def test_orientation_6_upload_embeds_as_the_photo_turned_upright(fakes) -> None:
    _, store, _ = fakes
    embedder = PixelEmbedder()
    recommender = Recommender(embedder, store, LruCache(10), ["shoes"], "infogan")
    upright = photo().transpose(Image.Transpose.ROTATE_270)  # what the viewer sees
    for upload in (encode(photo(), orientation=6), encode(upright), encode(photo())):
        await recommender.search_image(upload, RecommendQuery("shoes", None, 3), Timings())
    tagged, turned, unturned = embedder.seen
    same = float(np.abs(tagged - turned).max())
    assert same < 0.01, same
    assert float(np.abs(tagged - unturned).max()) > 10 * same  # what was forwarded before
