"""Self-supervision pieces (augmentations, NT-Xent) and the catalogue routing rules."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from embedder.augment import AugmentConfig, augment, nt_xent
from embedder.evaluation import routing


def test_views_stay_in_range_differ_and_repeat_with_the_seed() -> None:
    images = tf.random.stateless_uniform([4, 16, 16, 3], [1, 2], -1.0, 1.0)
    first = augment(images, tf.random.Generator.from_seed(3), AugmentConfig())
    again = augment(images, tf.random.Generator.from_seed(3), AugmentConfig())
    other = augment(images, tf.random.Generator.from_seed(4), AugmentConfig())
    assert first.shape == images.shape
    assert float(tf.reduce_min(first)) >= -1.0 and float(tf.reduce_max(first)) <= 1.0
    np.testing.assert_allclose(first.numpy(), again.numpy())
    assert not np.allclose(first.numpy(), other.numpy())


def test_augment_is_differentiable_for_diffaugment_on_fakes() -> None:
    images = tf.Variable(tf.zeros([2, 8, 8, 3]))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(augment(images, tf.random.Generator.from_seed(0), AugmentConfig()))
    grad = tape.gradient(loss, images)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_nt_xent_rewards_matching_views() -> None:
    z = tf.random.stateless_normal([8, 16], [0, 1])
    matched = float(nt_xent(z, z, 0.2))
    shuffled = float(nt_xent(z, tf.roll(z, 1, axis=0), 0.2))
    assert matched < 0.5 and shuffled > 2.0


def test_rotated_quarters_match_their_targets() -> None:
    from embedder.train import rotate_quarters

    images = tf.random.stateless_uniform([6, 6, 6, 3], [5, 6])  # any batch size, not only 4n
    rotated, targets = rotate_quarters(images)
    assert np.argmax(targets.numpy(), axis=1).tolist() == [0, 1, 2, 3, 0, 1]
    for row, k in zip(range(6), [0, 1, 2, 3, 0, 1], strict=True):
        np.testing.assert_allclose(rotated[row].numpy(), np.rot90(images[row].numpy(), k))


def test_rotation_loss_trains_d_to_tell_rotations_apart() -> None:
    """A few steps on an asymmetric shape lower the SS-GAN loss and change D's own body."""
    from embedder.models import build_gan
    from embedder.train import build_rotation_head

    gan = build_gan("infogan", image_size=16, categorical_dim=3, dropout=0.0)
    head = build_rotation_head(gan.body)
    images = np.zeros([8, 16, 16, 3], np.float32) - 1.0
    images[:, 2:6, 2:14] = 1.0  # a bar along the top: every rotation looks different
    from embedder.train import rotate_quarters

    rotated, targets = rotate_quarters(tf.constant(images))
    loss_fn = tf.keras.losses.CategoricalCrossentropy(from_logits=True)
    opt = tf.keras.optimizers.Adam(1e-2)
    before = [w.numpy().copy() for w in gan.body.trainable_weights]
    losses = []
    for _ in range(30):
        with tf.GradientTape() as tape:
            loss = loss_fn(targets, head(rotated, training=True))
        grads = tape.gradient(loss, head.trainable_variables)
        opt.apply_gradients(zip(grads, head.trainable_variables, strict=True))
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    assert any(
        not np.allclose(a, w.numpy())
        for a, w in zip(before, gan.body.trainable_weights, strict=True)
    )


def test_knn_vote_routes_where_top1_fails() -> None:
    # One handbag sits right next to the query; five shoes are close behind.
    index = np.array([[1.0, 0.0]] + [[0.95, 0.31]] * 5 + [[0.0, 1.0]] * 5)
    groups = np.array(["handbags"] + ["shoes"] * 5 + ["handbags"] * 5, dtype=object)
    query = np.array([[1.0, 0.05]])
    assert routing.route(query, index, groups, "top1")[0] == "handbags"
    assert routing.route(query, index, groups, "knn", k=5)[0] == "shoes"
    result = routing.evaluate(query, np.array(["shoes"], dtype=object), index, groups)
    assert result["knn"]["accuracy"] == 1.0 and result["top1"]["accuracy"] == 0.0
