"""Every architecture builds at a tiny input size with the shapes the paper's table implies."""

from __future__ import annotations

import numpy as np
import pytest

from embedder.models import build_gan, embedding_extractor
from embedder.models.infogan import build_body


@pytest.mark.parametrize("size", [16, 32])
def test_infogan_builds(size: int) -> None:
    gan = build_gan("infogan", image_size=size, categorical_dim=8)
    assert gan.generator.input_shape == (None, 100 + 8)
    assert gan.generator.output_shape == (None, size, size, 3)
    d_logit, q_logits = gan.discriminator.outputs
    assert tuple(d_logit.shape) == (None, 1) and tuple(q_logits.shape) == (None, 8)
    extractor = embedding_extractor(gan)
    assert extractor.output_shape == (None, (size // 8) ** 2 * 16)


def test_infogan_body_follows_table_8_1() -> None:
    body = build_body(224, dropout=0.5)
    convs = [layer for layer in body.layers if layer.name.startswith("conv")]
    assert [c.filters for c in convs] == [16, 32, 64, 128, 256, 16]
    assert [c.strides[0] for c in convs] == [2, 1, 2, 1, 2, 1]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert body.output_shape == (None, 28, 28, 16)  # 12,544 values, as in the paper
    assert any(layer.name.startswith("bn") for layer in body.layers)
    assert any(layer.name.startswith("drop") for layer in body.layers)


def test_dcgan_builds() -> None:
    gan = build_gan("dcgan", image_size=32, categorical_dim=8)
    assert gan.categorical_dim == 0
    assert gan.generator.input_shape == (None, 100)
    assert gan.generator.output_shape == (None, 32, 32, 3)
    assert len(gan.discriminator.outputs) == 1
    assert embedding_extractor(gan).output_shape == (None, 2 * 2 * 256)


def test_extractor_scales_pixels_and_shares_weights_with_d() -> None:
    gan = build_gan("infogan", image_size=16, categorical_dim=4)
    extractor = embedding_extractor(gan)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    expected = gan.body(pixels / 127.5 - 1.0, training=False).numpy().reshape(2, -1)
    np.testing.assert_allclose(extractor(pixels, training=False).numpy(), expected, atol=1e-5)
    assert {id(v) for v in gan.body.weights} <= {id(v) for v in gan.discriminator.weights}


@pytest.mark.parametrize(("kind", "size"), [("infogan", 12), ("dcgan", 24), ("gan", 32)])
def test_bad_settings_are_refused(kind: str, size: int) -> None:
    with pytest.raises(ValueError):
        build_gan(kind, image_size=size)
