"""GAN training: InfoGAN or DCGAN on the TRAIN split of a catalogue, resumable from a run dir.

Run dir layout: ``split.json``, ``run.json`` (settings, steps, wall time, chosen checkpoint and
the rule), ``metrics.csv`` (one row per step), ``loss_curves.png``, ``samples_*.png`` and
``checkpoints/`` (tf.train.Checkpoint of G, D, both optimizers, the noise RNG and the step).

Checkpoint rule for export: the LAST checkpoint. GAN losses do not measure embedding quality and
the test split must not be used for selection, so no other rule would be honest here.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from embedder.augment import AugmentConfig, augment, nt_xent
from embedder.data.catalog import load_catalog, stratified_split, write_split
from embedder.data.pipeline import load_images, training_batches
from embedder.errors import CatalogError, RunError
from embedder.models import GAN, build_gan
from embedder.plots import plot_losses, save_grid

logger = logging.getLogger(__name__)

CHECKPOINT_RULE = "last checkpoint (GAN losses are not a selection criterion; test split unused)"
FIELDS = [
    "step",
    "epoch",
    "d_loss",
    "g_loss",
    "info_loss",
    "d_real",
    "d_fake",
    "contrastive",
    "rotation",
    "seconds",
]


@dataclass
class TrainConfig:
    catalog: str
    out: str
    model: str = "infogan"
    image_size: int = 64
    epochs: int = 5
    max_steps: int | None = None
    batch_size: int = 64
    seed: int = 0
    categorical_dim: int = 8
    lambda_info: float = 1.0
    learning_rate: float = 2e-4
    test_fraction: float = 0.2
    checkpoint_every: int = 100
    sample_every: int = 200
    tensorboard: bool = False
    progress: bool = True
    dropout: float = 0.1
    # Self-supervision inside D (ContraD-style): SimCLR's NT-Xent on two augmented views of each
    # real batch, through a projection head on D's pooled conv5 features. 0 = the paper's InfoGAN.
    contrastive_weight: float = 0.0
    temperature: float = 0.2
    projection_dim: int = 128
    # SS-GAN (Chen et al., CVPR 2019): D also predicts which of 0/90/180/270 degrees each real
    # image was rotated by, from its pooled conv5 grid; 0 = the paper's InfoGAN. The default
    # (with dropout 0.1) is the first setting whose trained D beat the random-weights control
    # on the validation rows (docs/exploration-ssgan.json). ``rotation_augment``: rotate
    # augmented views of the reals (crop, flip, colour jitter) instead, since plain rotation is
    # solved within a few thousand steps (loss ~0.002) and then stops teaching D.
    rotation_weight: float = 1.0
    # DiffAugment: D's real/fake loss sees augmented reals and fakes (differentiable ops).
    diff_augment: bool = False
    min_crop_scale: float = 0.35
    colour_strength: float = 1.0
    d_learning_rate: float | None = None
    generator_filters: tuple[int, int, int] | None = None  # None: (256, 128, 64)
    max_seconds: float | None = None  # stop (and save) once this session has trained this long
    rotation_augment: bool = False  # see rotation_weight


def build_from_config(config: dict[str, Any]) -> GAN:
    return build_gan(
        config["model"],
        image_size=config["image_size"],
        categorical_dim=config["categorical_dim"],
        dropout=config.get("dropout", 0.5),
        **(
            {"generator_filters": tuple(config["generator_filters"])}
            if config.get("generator_filters")
            else {}
        ),
    )


def feature_map(body: keras.Model, layer: str = "lrelu5") -> keras.KerasTensor:
    """D's conv5 block (InfoGAN: the embedding heads' layer), or the body's output (DCGAN)."""
    names = {item.name for item in body.layers}
    return body.get_layer(layer).output if layer in names else body.output


def build_projector(body: keras.Model, dim: int, layer: str = "lrelu5") -> keras.Model:
    """D's conv5 map, globally pooled, through SimCLR's 2-layer MLP (used for training only)."""
    features = keras.Model(body.input, feature_map(body, layer), name="d_conv5")
    images = keras.Input(body.input.shape[1:], name="images")
    x = keras.layers.GlobalAveragePooling2D()(features(images))
    x = keras.layers.Dense(512, name="proj1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dense(dim, name="proj2")(x)
    return keras.Model(images, x, name="projector")


def build_rotation_head(body: keras.Model, layer: str = "lrelu5", grid: int = 4) -> keras.Model:
    """D's conv5 map pooled to the embedding's grid -> 4 rotation logits (training only)."""
    features = keras.Model(body.input, feature_map(body, layer), name="d_conv5_rot")
    images = keras.Input(body.input.shape[1:], name="images")
    x = features(images)
    side = int(x.shape[1])
    if side > grid:
        x = keras.layers.AveragePooling2D(side // grid)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(images, keras.layers.Dense(4, name="rotation_logits")(x), name="rotation")


def rotate_quarters(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Image i rotated by (i mod 4) x 90 degrees (square images), and the one-hot targets."""
    batch = tf.shape(images)[0]
    turns = tf.range(batch) % 4
    every = tf.stack([tf.image.rot90(images, k) for k in range(4)], axis=0)  # [4, B, S, S, C]
    rotated = tf.gather_nd(every, tf.stack([turns, tf.range(batch)], axis=1))
    return rotated, tf.one_hot(turns, 4)


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.run = Path(config.out)
        keras.utils.set_random_seed(config.seed)
        self.gan = build_from_config(asdict(config))
        self.g_opt = keras.optimizers.Adam(config.learning_rate, beta_1=0.5)
        d_lr = config.d_learning_rate or config.learning_rate
        self.d_opt = keras.optimizers.Adam(d_lr, beta_1=0.5)
        self.projector = (
            build_projector(self.gan.body, config.projection_dim)
            if config.contrastive_weight > 0
            else None
        )
        self.rotation_head = (
            build_rotation_head(self.gan.body) if config.rotation_weight > 0 else None
        )
        self.g_opt.build(self.gan.generator.trainable_variables)
        self.d_opt.build(self.d_variables())
        self.rng = tf.random.Generator.from_seed(config.seed)
        self.aug_rng = tf.random.Generator.from_seed(config.seed + 1)
        self.augment_config = AugmentConfig(
            min_scale=config.min_crop_scale, strength=config.colour_strength
        )
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        parts: dict[str, Any] = {}
        if self.projector is not None:
            parts["projector"] = self.projector
        if self.rotation_head is not None:
            parts["rotation_head"] = self.rotation_head
        self.checkpoint = tf.train.Checkpoint(
            generator=self.gan.generator,
            discriminator=self.gan.discriminator,
            g_opt=self.g_opt,
            d_opt=self.d_opt,
            rng=self.rng,
            aug_rng=self.aug_rng,
            step=self.step,
            **parts,
        )
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.run / "checkpoints", 3)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.cce = keras.losses.CategoricalCrossentropy(from_logits=True)

    def latent(self, batch: int) -> tuple[tf.Tensor, tf.Tensor | None]:
        noise = self.rng.normal([batch, self.gan.noise_dim])
        if not self.gan.categorical_dim:
            return noise, None
        codes = self.rng.uniform([batch], 0, self.gan.categorical_dim, dtype=tf.int32)
        onehot = tf.one_hot(codes, self.gan.categorical_dim)
        return tf.concat([noise, onehot], axis=1), onehot

    def d_variables(self) -> list[tf.Variable]:
        """D's weights plus the projection head's (the body is shared, so deduplicate)."""
        variables = list(self.gan.discriminator.trainable_variables)
        for extra in (self.projector, self.rotation_head):
            if extra is not None:
                seen = {id(v) for v in variables}
                variables += [v for v in extra.trainable_variables if id(v) not in seen]
        return variables

    def _view(self, images: tf.Tensor) -> tf.Tensor:
        return augment(images, self.aug_rng, self.augment_config)

    @tf.function
    def train_step(self, real: tf.Tensor) -> dict[str, tf.Tensor]:
        real = real / 127.5 - 1.0
        batch = tf.shape(real)[0]
        latent, onehot = self.latent(batch)
        lam = self.config.lambda_info
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = self.gan.generator(latent, training=True)
            d_in_real, d_in_fake = real, fake
            if self.config.diff_augment:
                d_in_real, d_in_fake = self._view(real), self._view(fake)
            real_out = self.gan.discriminator(d_in_real, training=True)
            fake_out = self.gan.discriminator(d_in_fake, training=True)
            contrastive = tf.constant(0.0)
            if self.projector is not None:
                views = self.projector(
                    tf.concat([self._view(real), self._view(real)], axis=0), training=True
                )
                z1, z2 = tf.split(views, 2, axis=0)
                contrastive = nt_xent(z1, z2, self.config.temperature)
            rotation = tf.constant(0.0)
            if self.rotation_head is not None:
                source = self._view(real) if self.config.rotation_augment else real
                rotated, targets = rotate_quarters(source)
                rotation = self.cce(targets, self.rotation_head(rotated, training=True))
            d_real, d_fake = real_out[0], fake_out[0]
            d_loss = self.bce(tf.ones_like(d_real), d_real) + self.bce(
                tf.zeros_like(d_fake), d_fake
            )
            g_loss = self.bce(tf.ones_like(d_fake), d_fake)
            info = self.cce(onehot, fake_out[1]) if onehot is not None else tf.constant(0.0)
            d_total = (
                d_loss
                + lam * info
                + self.config.contrastive_weight * contrastive
                + self.config.rotation_weight * rotation
            )
            g_total = g_loss + lam * info
        d_vars = self.d_variables()
        g_vars = self.gan.generator.trainable_variables
        self.d_opt.apply_gradients(zip(d_tape.gradient(d_total, d_vars), d_vars, strict=True))
        self.g_opt.apply_gradients(zip(g_tape.gradient(g_total, g_vars), g_vars, strict=True))
        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "info_loss": info,
            "d_real": tf.reduce_mean(tf.sigmoid(d_real)),
            "d_fake": tf.reduce_mean(tf.sigmoid(d_fake)),
            "contrastive": contrastive,
            "rotation": rotation,
        }

    def save_samples(self, tag: str) -> Path:
        """Rows = latent codes (InfoGAN) with the same 8 noise vectors per column."""
        gen = tf.random.Generator.from_seed(self.config.seed + 12345)
        cols, dim = 8, self.gan.categorical_dim
        noise = gen.normal([cols, self.gan.noise_dim])
        if dim:
            codes = np.repeat(np.arange(dim), cols)
            latent = tf.concat([tf.tile(noise, [dim, 1]), tf.one_hot(codes, dim)], axis=1)
            rows, labels = dim, [f"c={c}" for c in range(dim)]
        else:
            latent, rows, labels = gen.normal([4 * cols, self.gan.noise_dim]), 4, None
        images = self.gan.generator(latent, training=False).numpy()
        out = self.run / f"samples_{tag}.png"
        save_grid(images, rows, out, labels)
        return out


def _prepare(config: TrainConfig, run: Path) -> list[Path]:
    """Write (or reuse) split.json and return absolute TRAIN paths."""
    catalog = load_catalog(config.catalog)
    split_file = run / "split.json"
    if split_file.exists():
        split = json.loads(split_file.read_text())
        if split["seed"] != config.seed:
            raise RunError(f"{split_file} was made with seed {split['seed']}, not {config.seed}")
    else:
        split = stratified_split(
            catalog.items, test_fraction=config.test_fraction, seed=config.seed
        )
        write_split(
            split_file,
            split,
            seed=config.seed,
            test_fraction=config.test_fraction,
            catalog=catalog.root,
        )
    paths = [catalog.root / p for p in split["train"]]
    if len(paths) < config.batch_size:
        raise CatalogError(f"{len(paths)} training images < batch size {config.batch_size}")
    return paths


def _restore(trainer: Trainer) -> None:
    if trainer.manager.latest_checkpoint:
        trainer.checkpoint.restore(
            trainer.manager.latest_checkpoint
        ).assert_existing_objects_matched()
        logger.info(
            "resumed from %s at step %d",
            trainer.manager.latest_checkpoint,
            int(trainer.step.numpy()),
        )


class _Session:
    """One invocation of :func:`train`: data, step budget, the run.json and metrics writers."""

    def __init__(self, config: TrainConfig, run: Path, previous: dict[str, Any]) -> None:
        self.config, self.run = config, run
        self.paths = _prepare(config, run)
        self.trainer = Trainer(config)
        _restore(self.trainer)
        self.images, self.loader = load_images(self.paths, size=config.image_size)
        # Counting decodes every file once (filling the cache) so bad files do not shift epochs.
        self.usable = int(self.images.reduce(0, lambda count, _image: count + 1))
        self.steps_per_epoch = self.usable // config.batch_size
        if self.steps_per_epoch == 0:
            raise CatalogError(
                f"{self.usable} usable training images < batch size {config.batch_size}"
            )
        self.total = config.epochs * self.steps_per_epoch
        if config.max_steps is not None:
            self.total = min(self.total, config.max_steps)
        self.start_step = int(self.trainer.step.numpy())
        self.wall_before = float(previous.get("train_seconds", 0.0))
        self.writer = tf.summary.create_file_writer(str(run / "tb")) if config.tensorboard else None
        self.started = time.perf_counter()

    def summarise(self, step: int, latest: str, status: str) -> dict[str, Any]:
        """run.json: written at every checkpoint too, so an interrupted run can be exported."""
        elapsed = time.perf_counter() - self.started
        summary = {
            "status": status,
            "config": asdict(self.config),
            "steps": step,
            "steps_per_epoch": self.steps_per_epoch,
            "epochs_done": step / self.steps_per_epoch,
            "train_images": len(self.paths),
            "usable_train_images": self.usable,
            "skipped_images": self.loader.skipped,
            "train_seconds": self.wall_before + elapsed,
            "this_session_seconds": elapsed,
            "seconds_per_step": elapsed / max(1, step - self.start_step),
            "checkpoint": f"checkpoints/{Path(latest).name}",
            "checkpoint_rule": CHECKPOINT_RULE,
            "embedding_dim": int(np.prod(self.trainer.gan.body.output_shape[1:])),
            "tensorflow": tf.__version__,
        }
        run_json = self.run / "run.json"
        tmp = run_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(run_json)
        return summary

    def out_of_time(self) -> bool:
        limit = self.config.max_seconds
        return limit is not None and time.perf_counter() - self.started >= limit

    def record(self, out: csv.DictWriter, bar: tqdm, step: int, epoch: int, losses: dict) -> None:
        """One metrics.csv row, TensorBoard scalars and the progress bar for a finished step."""
        seconds = time.perf_counter() - self.started + self.wall_before
        out.writerow(
            {
                "step": step,
                "epoch": epoch + 1,
                **{k: f"{v:.5f}" for k, v in losses.items()},
                "seconds": f"{seconds:.1f}",
            }
        )
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for key, value in losses.items():
                    tf.summary.scalar(key, value)
        shown = {"d": "d_loss", "g": "g_loss", "info": "info_loss", "ctr": "contrastive"}
        bar.set_postfix(**{k: f"{losses[v]:.3f}" for k, v in shown.items()}, epoch=epoch + 1)
        bar.update(1)

    def epoch(self, step: int, out: csv.DictWriter, bar: tqdm, handle: Any) -> int:
        """Run from ``step`` to the end of its epoch (or the budget); returns the new step."""
        config, trainer = self.config, self.trainer
        epoch, offset = divmod(step, self.steps_per_epoch)
        batches = training_batches(
            self.images, batch_size=config.batch_size, seed=config.seed + epoch
        ).skip(offset)
        before = step
        for batch in batches:
            if step >= self.total or self.out_of_time():
                break
            losses = {k: float(v) for k, v in trainer.train_step(batch).items()}
            trainer.step.assign_add(1)
            step += 1
            self.record(out, bar, step, epoch, losses)
            if step % config.checkpoint_every == 0:
                handle.flush()
                self.summarise(step, trainer.manager.save(checkpoint_number=step), "running")
            if step % config.sample_every == 0:
                trainer.save_samples(f"step{step:06d}")
        if step == before and not self.out_of_time():
            raise RunError(f"epoch {epoch + 1} yielded no batches at offset {offset}")
        return step

    def loop(self) -> int:
        metrics_csv = self.run / "metrics.csv"
        new_file = not metrics_csv.exists()
        with metrics_csv.open("a", newline="") as handle:
            out = csv.DictWriter(handle, FIELDS)
            if new_file:
                out.writeheader()
            bar = tqdm(
                total=self.total,
                initial=self.start_step,
                desc=f"{self.config.model} {self.config.image_size}px",
                unit="step",
                disable=not self.config.progress,
                dynamic_ncols=True,
            )
            step = self.start_step
            while step < self.total:
                step = self.epoch(step, out, bar, handle)
                if self.out_of_time():
                    logger.info("stopping at step %d: --max-seconds reached", step)
                    break
            bar.close()
        return step


def train(config: TrainConfig) -> dict[str, Any]:
    """Train to ``epochs`` (or ``max_steps``) total, resuming from the run dir's last checkpoint."""
    run = Path(config.out)
    run.mkdir(parents=True, exist_ok=True)
    run_json = run / "run.json"
    previous = json.loads(run_json.read_text()) if run_json.exists() else {}
    if previous and previous["config"]["model"] != config.model:
        raise RunError(f"{run} holds a {previous['config']['model']} run, not {config.model}")
    session = _Session(config, run, previous)
    step = session.loop()
    latest = session.trainer.manager.save(checkpoint_number=step)
    session.trainer.save_samples("final")
    plot_losses(run / "metrics.csv", run / "loss_curves.png")
    summary = session.summarise(step, latest, "finished")
    logger.info(
        "trained %s to step %d in %.0f s; checkpoint %s",
        config.model,
        step,
        summary["this_session_seconds"],
        latest,
    )
    return summary


def load_trained(run: str | Path) -> tuple[GAN, dict[str, Any]]:
    """Rebuild the GAN from ``run.json`` and restore the chosen (last) checkpoint."""
    run = Path(run)
    run_json = run / "run.json"
    if not run_json.exists():
        raise RunError(f"{run} has no run.json: train first")
    summary = json.loads(run_json.read_text())
    gan = build_from_config(summary["config"])
    checkpoint = tf.train.Checkpoint(generator=gan.generator, discriminator=gan.discriminator)
    chosen = summary.get("checkpoint")
    path = str(run / chosen) if chosen else tf.train.latest_checkpoint(str(run / "checkpoints"))
    if not path:
        raise RunError(f"{run} has no checkpoint")
    checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    return gan, summary
