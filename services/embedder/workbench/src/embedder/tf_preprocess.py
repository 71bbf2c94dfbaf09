"""In-graph image preprocessing for exported models: bytes -> RGB float 0..255, square, resized.

Mirrors :func:`embedder.data.images.preprocess_pil` (EXIF orientation, any mode to RGB with
alpha composited on white, optional object framing, centre-pad to a square on white, bilinear
antialiased resize) so that
the served embedding matches the one computed during evaluation from PIL images, and a phone
photo tagged "rotate 90" is embedded upright.
"""

from __future__ import annotations

import tensorflow as tf

from embedder.data.images import MARGIN_DIVISOR, MIN_OBJECT_PIXELS, OBJECT_THRESHOLD
from embedder.image_guard import DEFAULT_MAX_PIXELS, guarded_decode

WHITE = 255.0
# A JPEG's EXIF segment comes before the image data, after at most a JFIF APP0 (which may hold a
# thumbnail of up to 64 KiB): the IFD0 entries read below lie within this prefix.
EXIF_SCAN_BYTES = 2 * 65536 + 1024
MAX_SEGMENTS = 16
MAX_ENTRIES = 64
ORIENTATION_TAG = 0x0112
SHORT = 3


def _u16(data: tf.Tensor, at: tf.Tensor, little: tf.Tensor) -> tf.Tensor:
    first, second = tf.gather(data, at), tf.gather(data, at + 1)
    return tf.where(little, second * 256 + first, first * 256 + second)


def _u32(data: tf.Tensor, at: tf.Tensor, little: tf.Tensor) -> tf.Tensor:
    first, second = _u16(data, at, little), _u16(data, at + 2, little)
    return tf.where(little, second * 65536 + first, first * 65536 + second)


def exif_orientation(encoded: tf.Tensor) -> tf.Tensor:
    """EXIF Orientation (1..8, int32) of a JPEG; 1 when absent or invalid, and for other formats.

    Walks the JPEG marker segments up to the image data with string and gather ops only, so
    TF Serving needs no custom op. Reads are clamped to the scanned prefix plus zero padding, so
    no file, however malformed, makes the graph fail here.
    """
    head = tf.strings.substr(encoded, 0, EXIF_SCAN_BYTES)
    raw = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)
    size = tf.size(raw, out_type=tf.int64)
    data = tf.concat([raw, tf.zeros([EXIF_SCAN_BYTES + 16 - size], tf.int64)], 0)
    big_endian = tf.constant(False)

    def clamp(at: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(at, 0, EXIF_SCAN_BYTES)

    def walking(pos: tf.Tensor, tiff: tf.Tensor) -> tf.Tensor:
        at = clamp(pos)
        marker = data[at + 1]
        return tf.reduce_all(
            tf.stack(
                [
                    tiff < 0,
                    pos + 4 <= size,
                    tf.equal(data[at], 0xFF),
                    tf.not_equal(marker, 0xDA),  # start of scan: the image data follows
                    tf.not_equal(marker, 0xD9),
                ]
            )
        )

    def step(pos: tf.Tensor, tiff: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        at = clamp(pos)
        exif = tf.reduce_all(
            tf.stack(
                [tf.equal(data[at + 1], 0xE1)]
                + [tf.equal(data[at + 4 + i], c) for i, c in enumerate(b"Exif\0\0")]
            )
        )
        length = tf.maximum(_u16(data, at + 2, big_endian), 2)
        return pos + 2 + length, tf.where(exif, pos + 10, tiff)  # TIFF header after "Exif\0\0"

    start = (tf.constant(2, tf.int64), tf.constant(-1, tf.int64))
    _, tiff = tf.while_loop(walking, step, start, maximum_iterations=MAX_SEGMENTS)
    at = clamp(tiff)
    little = tf.logical_and(tf.equal(data[at], 0x49), tf.equal(data[at + 1], 0x49))  # "II"
    ifd = clamp(at + _u32(data, at + 4, little))
    count = tf.minimum(_u16(data, ifd, little), MAX_ENTRIES)
    entries = clamp(ifd + 2 + 12 * tf.range(count, dtype=tf.int64))
    is_orientation = tf.logical_and(
        tf.equal(_u16(data, entries, little), ORIENTATION_TAG),
        tf.equal(_u16(data, entries + 2, little), SHORT),
    )
    value = tf.reduce_max(tf.where(is_orientation, _u16(data, entries + 8, little), 0))
    is_jpeg = tf.logical_and(tf.equal(data[0], 0xFF), tf.equal(data[1], 0xD8))
    valid = tf.reduce_all(tf.stack([is_jpeg, tiff >= 0, value >= 1, value <= 8]))
    return tf.cast(tf.where(valid, value, 1), tf.int32)


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """[H, W, C] as displayed for an EXIF orientation (what PIL's ``exif_transpose`` does)."""
    branches = [
        lambda: image,  # 1: upright
        lambda: tf.image.flip_left_right(image),  # 2: mirrored
        lambda: tf.image.rot90(image, 2),  # 3: upside down
        lambda: tf.image.flip_up_down(image),  # 4: mirrored upside down
        lambda: tf.image.transpose(image),  # 5: transposed
        lambda: tf.image.rot90(image, 3),  # 6: turn 90 degrees clockwise to view
        lambda: tf.image.rot90(tf.image.transpose(image), 2),  # 7: transverse
        lambda: tf.image.rot90(image, 1),  # 8: turn 90 degrees counter-clockwise to view
    ]
    return tf.switch_case(tf.clip_by_value(orientation - 1, 0, 7), branches)


def _on_white(colour: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """uint8 colour composited by uint8 alpha on white, rounded; uint16 fits 255 * 255 + 127."""
    colour, alpha = tf.cast(colour, tf.uint16), tf.cast(alpha, tf.uint16)
    mixed = colour * alpha + tf.cast(WHITE, tf.uint16) * (255 - alpha) + 127
    return tf.cast(mixed // 255, tf.uint8)


def _to_rgb(image: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, C] with C in 1..4 -> uint8 [H, W, 3], alpha composited on white.

    Stays in uint8 (as PIL does): a float32 copy of a 25-megapixel image is 300 MB per step.
    """
    channels = tf.shape(image)[-1]

    def gray() -> tf.Tensor:
        return tf.tile(image[..., :1], [1, 1, 3])

    def gray_alpha() -> tf.Tensor:
        return tf.tile(_on_white(image[..., :1], image[..., 1:2]), [1, 1, 3])

    def rgb() -> tf.Tensor:
        return tf.identity(image)  # C is 3: no sliced copy

    def rgba() -> tf.Tensor:
        return _on_white(image[..., :3], image[..., 3:4])

    return tf.switch_case(tf.clip_by_value(channels - 1, 0, 3), [gray, gray_alpha, rgb, rgba])


def crop_to_object(image: tf.Tensor) -> tf.Tensor:
    """uint8 RGB [H, W, 3] cropped to the bounding box of its non-white pixels (as PIL's path)."""
    mask = tf.reduce_any(image < OBJECT_THRESHOLD, axis=-1)
    rows = tf.where(tf.reduce_any(mask, axis=1))[:, 0]
    cols = tf.where(tf.reduce_any(mask, axis=0))[:, 0]
    found = tf.reduce_sum(tf.cast(mask, tf.int32)) > MIN_OBJECT_PIXELS

    def crop() -> tf.Tensor:
        return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    return tf.cond(found, crop, lambda: tf.identity(image))


def pad_to_square(image: tf.Tensor, margin: tf.Tensor | int = 0) -> tf.Tensor:
    """Centre the image on a white square canvas ``margin`` wider on each side than its longer
    side (offsets rounded down, as in PIL's paste)."""
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    side = tf.maximum(height, width) + 2 * margin
    top = (side - height) // 2
    left = (side - width) // 2
    paddings = [[top, side - height - top], [left, side - width - left], [0, 0]]
    return tf.cond(
        tf.logical_and(tf.equal(height, side), tf.equal(width, side)),
        lambda: tf.identity(image),  # already square: no full-size copy
        lambda: tf.pad(image, paddings, constant_values=tf.cast(WHITE, image.dtype)),
    )


def frame(image: tf.Tensor, object_crop: bool) -> tf.Tensor:
    """uint8 RGB -> square on white: padded as is, or cropped to the product with a margin."""
    if not object_crop:
        return pad_to_square(image)
    image = crop_to_object(image)
    shape = tf.shape(image)
    return pad_to_square(image, tf.maximum(shape[0], shape[1]) // MARGIN_DIVISOR)


def decode_and_preprocess(
    encoded: tf.Tensor, size: int, max_pixels: int = DEFAULT_MAX_PIXELS, object_crop: bool = False
) -> tf.Tensor:
    """One encoded JPEG/PNG/GIF/BMP string -> float32 [size, size, 3] RGB in 0..255, upright.

    Other formats, a header declaring more than ``max_pixels`` and non-images fail with an
    InvalidArgumentError before decoding (see :mod:`embedder.image_guard`); a GIF gives its first
    frame. The image stays uint8 until the antialiased resize, which reads uint8 directly.
    """
    tf.debugging.assert_greater(
        tf.strings.length(encoded), 0, message="empty image bytes: expected JPEG/PNG/GIF/BMP"
    )
    image = guarded_decode(encoded, max_pixels)
    image = apply_orientation(image, exif_orientation(encoded))
    image = frame(_to_rgb(image), object_crop)
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def preprocess_batch(
    images: tf.Tensor, size: int, max_pixels: int = DEFAULT_MAX_PIXELS, object_crop: bool = False
) -> tf.Tensor:
    """A [N] tf.string batch -> float32 [N, size, size, 3]."""
    return tf.map_fn(
        lambda encoded: decode_and_preprocess(encoded, size, max_pixels, object_crop),
        images,
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
    )
