"""In-graph guards run before an image is decoded: known format, pixel limit, first GIF frame only.

TF Serving runs the exported graph on untrusted bytes, so the limits have to live in the graph:
TensorFlow's decoders allocate from the header's dimensions, and its GIF decoder (giflib's
``DGifSlurp``) decompresses every frame even with ``expand_animations=False``. A 1.4 MB GIF of
100 flat 4000x4000 frames would hold 1.6 GB. Here the dimensions are read from the header with
string ops, checked against a limit baked in at export, and a GIF is cut after its first frame
before it reaches the decoder. Failures are ``InvalidArgumentError`` (TF Serving:
INVALID_ARGUMENT, REST 400).
"""

from __future__ import annotations

import tensorflow as tf

# Same default as the gateway's GATEWAY_MAX_PIXELS: what the gateway lets through is served.
DEFAULT_MAX_PIXELS = 25_000_000
# GIF blocks walked to find the end of the first frame: 255-byte sub-blocks make this ~25 MB of
# frame data, far above the gateway's upload limit; a file needing more is refused.
MAX_GIF_BLOCKS = 100_000
HEAD_BYTES = 32
FORMATS = "JPEG, PNG, GIF or BMP"


def _bytes(encoded: tf.Tensor, count: int | None = None) -> tf.Tensor:
    """uint8 bytes of ``encoded`` (the first ``count``), zero-padded so reads past the end are 0."""
    data = encoded if count is None else tf.strings.substr(encoded, 0, count)
    return tf.concat([tf.io.decode_raw(data, tf.uint8), tf.zeros([HEAD_BYTES], tf.uint8)], 0)


def _at(data: tf.Tensor, at: int | tf.Tensor) -> tf.Tensor:
    return tf.cast(data[at], tf.int64)


def _u16le(data: tf.Tensor, at: int | tf.Tensor) -> tf.Tensor:
    return _at(data, at) + 256 * _at(data, at + 1)


def _u32(data: tf.Tensor, at: int, *, big: bool) -> tf.Tensor:
    order = [at, at + 1, at + 2, at + 3] if big else [at + 3, at + 2, at + 1, at]
    value = tf.constant(0, tf.int64)
    for i in order:
        value = value * 256 + _at(data, i)
    return value


def _s32le(data: tf.Tensor, at: int) -> tf.Tensor:
    value = _u32(data, at, big=False)
    return tf.abs(tf.where(value >= 2**31, value - 2**32, value))  # BMP: negative = top-down


def image_format(encoded: tf.Tensor) -> dict[str, tf.Tensor]:
    """Boolean scalars per format, from the magic bytes TensorFlow's decode_image looks at."""
    return {
        "jpeg": tf.equal(tf.strings.substr(encoded, 0, 3), b"\xff\xd8\xff"),
        "png": tf.equal(tf.strings.substr(encoded, 0, 8), b"\x89PNG\r\n\x1a\n"),
        "gif": tf.equal(tf.strings.substr(encoded, 0, 4), b"GIF8"),
        "bmp": tf.equal(tf.strings.substr(encoded, 0, 2), b"BM"),
    }


def header_size(encoded: tf.Tensor) -> tf.Tensor:
    """int64 [width, height] as the header declares it (a GIF's logical screen); [0, 0] if unknown.

    JPEG dimensions come from ``extract_jpeg_shape`` (libjpeg reads up to the frame header only).
    """
    fmt = image_format(encoded)
    head = _bytes(encoded, HEAD_BYTES)
    png = tf.stack([_u32(head, 16, big=True), _u32(head, 20, big=True)])
    gif = tf.stack([_u16le(head, 6), _u16le(head, 8)])
    bmp = tf.stack([_s32le(head, 18), _s32le(head, 22)])
    other = tf.where(fmt["png"], png, tf.where(fmt["gif"], gif, tf.where(fmt["bmp"], bmp, 0)))

    def jpeg() -> tf.Tensor:
        shape = tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64)
        return tf.stack([shape[1], shape[0]])

    return tf.cond(fmt["jpeg"], jpeg, lambda: other)


def _colour_table(packed: tf.Tensor) -> tf.Tensor:
    """Bytes of the colour table a GIF packed-fields byte announces (0 when absent)."""
    size = 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), packed % 8)
    return tf.where(packed >= 128, size, tf.constant(0, tf.int64))


def _gif_walk(data: tf.Tensor, size: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Walk GIF blocks to the first image's end: (image start, end, sub-blocks walked).

    Block by block: 0x21 is an extension (label, then sub-blocks), 0x2C an image descriptor
    (10 bytes, local colour table, LZW code size, then sub-blocks); anything else ends the walk.
    Sub-blocks (a length byte, that many bytes, 0 ends them) are skipped by a tight inner loop.
    """
    none = tf.constant(-1, tf.int64)

    def skip(pos: tf.Tensor, walked: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        def more(p: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
            at = tf.minimum(p, size)
            return tf.logical_and(tf.logical_and(p < size, n < MAX_GIF_BLOCKS), data[at] > 0)

        def hop(p: tf.Tensor, n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return p + _at(data, p) + 1, n + 1

        end, walked = tf.while_loop(more, hop, (pos, walked))
        return end + 1, walked  # past the terminator

    def walking(pos: tf.Tensor, start: tf.Tensor, end: tf.Tensor, walked: tf.Tensor) -> tf.Tensor:
        code = _at(data, tf.minimum(pos, size))
        is_block = tf.logical_or(tf.equal(code, 0x21), tf.equal(code, 0x2C))
        return tf.reduce_all(tf.stack([end < 0, pos < size, walked < MAX_GIF_BLOCKS, is_block]))

    def block(pos: tf.Tensor, start: tf.Tensor, end: tf.Tensor, walked: tf.Tensor) -> tuple:
        is_img = tf.equal(_at(data, pos), 0x2C)
        local = _colour_table(_at(data, tf.minimum(pos + 9, size)))
        after, walked = skip(tf.where(is_img, pos + 11 + local, pos + 2), walked + 1)
        return after, tf.where(is_img, pos, start), tf.where(is_img, after, end), walked

    first = (13 + _colour_table(_at(data, 10)), none, none, tf.constant(0, tf.int64))
    _, start, end, walked = tf.while_loop(walking, block, first)
    return start, end, walked


def first_gif_frame(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(GIF cut after its first frame plus a trailer, that frame's [width, height], walk finished).

    A file whose first frame does not end (truncated, or no image) is returned whole: it holds at
    most one frame. ``finished`` is False only when the walk ran out of blocks.
    """
    data = _bytes(encoded)
    size = tf.cast(tf.strings.length(encoded), tf.int64)
    start, end, walked = _gif_walk(data, size)
    finished = walked < MAX_GIF_BLOCKS
    frame = tf.where(
        start >= 0,
        tf.stack([_u16le(data, start + 5), _u16le(data, start + 7)]),
        tf.constant(0, tf.int64),
    )
    cut = tf.strings.join(
        [tf.strings.substr(encoded, tf.constant(0, tf.int64), tf.maximum(end, 0)), b";"]
    )
    return tf.where(tf.logical_and(end > 0, end <= size), cut, encoded), frame, finished


def _refuse_if(condition: tf.Tensor, message: tf.Tensor | str) -> tf.Operation:
    return tf.debugging.Assert(tf.logical_not(condition), [message])


def guarded_decode(
    encoded: tf.Tensor, max_pixels: int = DEFAULT_MAX_PIXELS, channels: int = 0
) -> tf.Tensor:
    """``decode_image`` of one JPEG/PNG/GIF/BMP (GIF: first frame) after the header checks.

    Raises InvalidArgumentError for other formats and for a declared width x height (or a GIF
    first frame) above ``max_pixels``, before any pixel buffer is allocated.
    """
    fmt = image_format(encoded)
    known = tf.reduce_any(tf.stack(list(fmt.values())))
    unknown = _refuse_if(tf.logical_not(known), f"Unsupported image format: expected {FORMATS}")
    with tf.control_dependencies([unknown]):
        width_height = header_size(encoded)
    checks = [_too_large(width_height, max_pixels, "Image")]

    def gif() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return first_gif_frame(encoded)

    def other() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return encoded, tf.zeros([2], tf.int64), tf.constant(True)

    data, frame, finished = tf.cond(fmt["gif"], gif, other)
    checks.append(_too_large(frame, max_pixels, "GIF frame"))
    checks.append(
        _refuse_if(tf.logical_not(finished), "GIF has too many blocks in its first frame")
    )
    with tf.control_dependencies(checks):
        return tf.io.decode_image(data, channels=channels, expand_animations=False, dtype=tf.uint8)


def _too_large(width_height: tf.Tensor, max_pixels: int, what: str) -> tf.Operation:
    pixels = width_height[0] * width_height[1]
    message = tf.strings.format(
        what + " of {}x{} = {} pixels exceeds the limit of " + str(max_pixels) + " pixels",
        (width_height[0], width_height[1], pixels),
    )
    return _refuse_if(pixels > max_pixels, message)
