"""Preprocessing edge cases: modes, alpha, EXIF, broken files, tiny and huge images, TF parity."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from embedder.data.images import load_image, pad_to_square, to_rgb
from embedder.errors import CorruptImageError, ImageTooLargeError
from embedder.tf_preprocess import decode_and_preprocess, exif_orientation

SIZE = 16


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_cmyk_jpeg_becomes_rgb() -> None:
    cyan = Image.new("CMYK", (20, 20), (255, 0, 0, 0))
    out = load_image(encode(cyan, "JPEG", quality=95), SIZE)
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    red, green, blue = out[SIZE // 2, SIZE // 2].astype(int)
    assert red < 40 and green > 200 and blue > 200


def test_palette_with_transparency_composites_on_white() -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 5, 10))  # left half red, right half index 0 (transparent)
    out = load_image(encode(image, "PNG", transparency=0), 10)
    assert tuple(out[5, 1]) == (255, 0, 0)
    assert tuple(out[5, 8]) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_pixels_become_white(mode: str) -> None:
    colour = (0, 0, 0, 0) if mode == "RGBA" else (0, 0)
    out = load_image(encode(Image.new(mode, (8, 8), colour), "PNG"), 8)
    assert (out == 255).all()


def test_sixteen_bit_grey_is_scaled() -> None:
    image = Image.fromarray(np.full((8, 8), 65535, np.uint16))
    assert image.mode.startswith("I")
    out = load_image(encode(image, "PNG"), 8)
    assert (out == 255).all()


def test_exif_orientation_is_applied() -> None:
    # A landscape 40x20 image tagged "rotate 90" displays as portrait 20x40: after padding to a
    # square the white bars are left and right, not top and bottom.
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = load_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95), 40)
    assert out[0, 20].mean() < 200  # top centre is image
    assert out[20, 1].min() > 240  # left middle is padding
    plain = load_image(encode(image, "JPEG", quality=95), 40)
    assert plain[1, 20].min() > 240 and plain[20, 1].mean() < 200


def test_truncated_jpeg_raises_corrupt() -> None:
    data = encode(Image.effect_noise((64, 64), 64).convert("RGB"), "JPEG")
    with pytest.raises(CorruptImageError):
        load_image(data[: len(data) // 2], SIZE)


def test_not_an_image_raises_corrupt() -> None:
    with pytest.raises(CorruptImageError):
        load_image(b"this is not an image", SIZE)


def test_one_pixel_image() -> None:
    out = load_image(encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"), SIZE)
    assert out.shape == (SIZE, SIZE, 3)
    assert np.abs(out.astype(int) - [10, 200, 30]).max() <= 1


def test_huge_jpeg_is_decoded_at_reduced_scale() -> None:
    data = encode(Image.new("L", (10_000, 10_000), 200), "JPEG", quality=50)
    out = load_image(data, SIZE)  # 100 MP > the 40 MP limit: decoded at 1/8 via draft
    assert out.shape == (SIZE, SIZE, 3)
    assert abs(int(out.mean()) - 200) <= 2


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims a size; the pixel data never matters because it is rejected first."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [10_000, 20_000])  # under and over PIL's own bomb error limit
def test_huge_png_is_rejected_clearly(side: int) -> None:
    with pytest.raises(ImageTooLargeError, match="pixel"):
        load_image(_png_header(side, side), SIZE)


def test_pad_to_square_centres_on_white() -> None:
    padded = np.asarray(pad_to_square(to_rgb(Image.new("L", (2, 6), 0))))
    assert padded.shape == (6, 6, 3)
    assert (
        (padded[:, :2] == 255).all()
        and (padded[:, 2:4] == 0).all()
        and (padded[:, 4:] == 255).all()
    )


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.effect_noise((30, 50), 40).convert("RGB"), "PNG"),
        (Image.linear_gradient("L").resize((70, 40)).convert("RGB"), "JPEG"),
        (Image.new("RGBA", (24, 12), (200, 30, 30, 128)), "PNG"),
        (Image.linear_gradient("L").resize((33, 33)), "PNG"),
    ],
)
def test_in_graph_preprocessing_matches_pil(image: Image.Image, fmt: str) -> None:
    data = encode(image, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    pil = load_image(data, SIZE).astype(np.float32)
    graph = decode_and_preprocess(tf.constant(data), SIZE).numpy()
    assert graph.shape == pil.shape
    assert np.abs(graph - pil).mean() < 3.0, np.abs(graph - pil).mean()


def test_in_graph_rejects_non_images() -> None:
    with pytest.raises(tf.errors.InvalidArgumentError, match="image"):
        decode_and_preprocess(tf.constant(b"not an image"), SIZE)


def _tagged_jpeg(image: Image.Image, orientation: int | None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def _photo(width: int = 48, height: int = 24) -> Image.Image:
    """Landscape, with no symmetry: a turned or mirrored copy differs everywhere."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x * y) % 256], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_in_graph_exif_orientation_matches_pil(orientation: int) -> None:
    data = _tagged_jpeg(_photo(), orientation)
    assert int(exif_orientation(tf.constant(data))) == orientation
    pil = load_image(data, 24).astype(np.float32)
    graph = decode_and_preprocess(tf.constant(data), 24).numpy()
    assert np.abs(graph - pil).mean() < 3.0, np.abs(graph - pil).mean()


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8",
        b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00MM\x00*\xff\xff\xff\xff",  # IFD offset past the end
        b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff",  # 65535 entries
        b"\xff\xd8" + b"\xff\xe0\x00\x02" * 40,  # more segments than are walked
    ],
)
def test_exif_orientation_of_malformed_or_other_files_is_upright(data: bytes) -> None:
    assert int(exif_orientation(tf.constant(data))) == 1


def test_exif_orientation_big_endian_after_a_jfif_segment() -> None:
    plain = encode(_photo(), "JPEG", quality=95)
    assert plain[2:4] == b"\xff\xe0"  # Pillow writes JFIF APP0 first
    app0_end = 4 + int.from_bytes(plain[4:6], "big")
    ifd = (1).to_bytes(2, "big") + bytes.fromhex("0112 0003 00000001 0006 0000") + bytes(4)
    exif = b"Exif\x00\x00MM\x00*" + (8).to_bytes(4, "big") + ifd
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    data = plain[:app0_end] + app1 + plain[app0_end:]
    assert Image.open(io.BytesIO(data)).getexif()[0x0112] == 6
    assert int(exif_orientation(tf.constant(data))) == 6


def test_served_embedding_of_a_turned_phone_photo_is_the_upright_one(tmp_path) -> None:
    """Orientation 6 (as phones save portrait shots): embedded as the photo turned upright."""
    from embedder.models import build_gan, embedding_extractor
    from embedder.servable import SIGNATURE, export_model

    extractor = embedding_extractor(build_gan("dcgan", image_size=16))
    version = export_model(
        extractor, input_size=16, model_base=tmp_path, name="dcgan", warmup=False
    )
    serve = tf.saved_model.load(str(version)).signatures[SIGNATURE]
    photo = _photo()
    tagged = _tagged_jpeg(photo, 6)
    upright = encode(photo.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95)
    untagged = _tagged_jpeg(photo, None)
    out = serve(images=tf.constant([tagged, upright, untagged]))["embedding"].numpy()
    same = float(np.abs(out[0] - out[1]).max())
    ignored = float(np.abs(out[0] - out[2]).max())  # what serving returned before the fix
    assert same < 0.02 and ignored > 10 * same, (same, ignored)


def _product_on_white(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    """A white photo with a dark, textured product inside ``box`` (left, top, right, bottom)."""
    pixels = np.full((height, width, 3), 255, np.uint8)
    left, top, right, bottom = box
    y, x = np.mgrid[top:bottom, left:right]
    pixels[top:bottom, left:right] = np.stack([x * 7 % 200, y * 5 % 200, (x + y) % 180], -1)
    return Image.fromarray(pixels)


def test_object_framing_crops_to_the_product_with_a_margin() -> None:
    small = _product_on_white(300, 400, (100, 250, 200, 300))  # 100 x 50 product, off-centre
    out = load_image(encode(small, "PNG"), 108, object_crop=True)
    # 100 px long side + 2 x 4 px margin = 108 px canvas: the product is 100 x 50 at 4, 29.
    product = (out < 235).any(axis=2)
    rows, cols = np.flatnonzero(product.any(axis=1)), np.flatnonzero(product.any(axis=0))
    assert (cols[0], cols[-1], rows[0], rows[-1]) == (4, 103, 29, 78)
    padded = load_image(encode(small, "PNG"), 108)
    assert (padded < 235).any(axis=2).sum() < product.sum() / 4  # the whole photo: a small product


def test_object_framing_keeps_a_blank_image_whole() -> None:
    blank = Image.new("RGB", (40, 20), (255, 255, 255))
    out = load_image(encode(blank, "PNG"), SIZE, object_crop=True)
    assert out.shape == (SIZE, SIZE, 3) and (out == 255).all()


@pytest.mark.parametrize(
    ("width", "height", "box", "fmt"),
    [
        (300, 400, (100, 250, 200, 300), "PNG"),
        (256, 256, (10, 30, 250, 200), "JPEG"),
        (60, 80, (5, 20, 55, 60), "JPEG"),
        (40, 20, (0, 0, 40, 20), "PNG"),  # product to the edges: nothing to crop
    ],
)
def test_in_graph_object_framing_matches_pil(
    width: int, height: int, box: tuple[int, int, int, int], fmt: str
) -> None:
    data = encode(
        _product_on_white(width, height, box), fmt, **({"quality": 95} if fmt == "JPEG" else {})
    )
    pil = load_image(data, 32, object_crop=True).astype(np.float32)
    graph = decode_and_preprocess(tf.constant(data), 32, object_crop=True).numpy()
    plain = decode_and_preprocess(tf.constant(data), 32).numpy()
    assert np.abs(graph - pil).mean() < 3.0, np.abs(graph - pil).mean()
    if box != (0, 0, width, height):
        assert np.abs(plain - pil).mean() > 10.0  # framing changed what the model sees
