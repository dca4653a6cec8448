"""Model architectures behind one builder interface: `build_model(config) -> keras.Model`.

Every model takes RGB images with values 0-255 of any size and does its own resizing and
rescaling, so serving can never preprocess differently from training. Output: P(fake).
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers

from .config import TrainConfig


def _preprocessing(image_size: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = layers.Resizing(image_size, image_size, interpolation="bilinear", name="resize")(inputs)
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(x)
    return inputs, x


def _conv_bn(x, filters: int, name: str, strides: int = 1):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_compact(cfg: TrainConfig) -> keras.Model:
    """Our default: conv + max-pool blocks with BatchNorm, then global pooling.

    The stem convolution reads the full input resolution (blending and up-sampling artefacts live
    in fine detail); global average pooling instead of Flatten keeps the head tiny, so the model
    is ~0.3 M parameters and a few hundred MFLOPs, affordable on a 2-core CPU.
    """
    inputs, x = _preprocessing(cfg.image_size)
    w = cfg.width
    # A strided stem still sees every input pixel: up-sampling and blending artefacts are
    # finest-scale signals that resizing the image down first would erase.
    x = _conv_bn(x, w // 2, "stem", strides=cfg.stem_stride)
    x = layers.MaxPooling2D(name="stem_pool")(x)
    # One conv at the two finest scales keeps cost down; two where channels are cheap.
    for i, (filters, convs) in enumerate(((w, 1), (w * 2, 2), (w * 4, 2), (w * 8, 1)), start=1):
        for j in range(convs):
            x = _conv_bn(x, filters, f"block{i}{'ab'[j]}")
        x = layers.MaxPooling2D(name=f"block{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(cfg.dropout, name="dropout")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="compact_cnn")


def build_seed(cfg: TrainConfig) -> keras.Model:
    """The project's original CNN, kept as the baseline to compare against."""
    inputs, x = _preprocessing(cfg.image_size)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{i}a")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{i}b")(x)
        x = layers.MaxPooling2D(name=f"block{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    x = layers.Dense(128, activation="relu", name="dense1")(x)
    x = layers.Dense(256, activation="relu", name="dense2")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


ARCHITECTURES: dict[str, Callable[[TrainConfig], keras.Model]] = {
    "compact": build_compact,
    "seed": build_seed,
}


def build_model(cfg: TrainConfig) -> keras.Model:
    try:
        builder = ARCHITECTURES[cfg.architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {cfg.architecture!r}; choose one of "
                         f"{', '.join(ARCHITECTURES)}") from None
    return builder(cfg)


def compile_model(model: keras.Model, cfg: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """Adam at 1e-4 (held for the warm-up epochs, then cosine decay), BCE, accuracy + AUC."""
    lr: float | keras.optimizers.schedules.LearningRateSchedule = cfg.learning_rate
    if cfg.cosine_decay:
        # Warm-up from 1e-4 to 1e-4 is a hold: the built-in schedule then needs no custom code.
        hold = cfg.warmup_epochs * steps_per_epoch
        lr = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate, max(1, cfg.epochs * steps_per_epoch - hold), alpha=0.05,
            warmup_target=cfg.learning_rate if hold else None, warmup_steps=hold,
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
    return model


def count_flops(model: keras.Model) -> int:
    """Multiply-accumulates x2 of the conv and dense layers for one image."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k_h, k_w = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2 * h * w * c_out * k_h * k_w * c_in
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)
