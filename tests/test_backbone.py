"""EfficientNet-Lite0: the ImageNet weights are read without PyTorch and mapped layer by layer."""

from __future__ import annotations

import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image

from deepfake_detector.config import TrainConfig
from deepfake_detector.errors import DetectorError
from deepfake_detector.model import LITE0_BLOCKS, build_efficientnet_lite0, build_model
from deepfake_detector.pretrained import keras_weights, read_legacy_torch, weights_path


@pytest.fixture(scope="module")
def state():
    return read_legacy_torch(weights_path())


@pytest.fixture(scope="module")
def imagenet_model():
    return build_efficientnet_lite0(TrainConfig(architecture="efficientnet_lite0", image_size=224),
                                    imagenet_classes=True)


def hopper_224() -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        im = Image.open(f).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
    return np.asarray(im, np.float32)[None]


def test_legacy_torch_file_is_read_completely(state):
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_fc.weight"].shape == (1000, 1280)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert "_blocks.0._expand_conv.weight" not in state and "_blocks.1._expand_conv.weight" in state
    assert all(np.isfinite(v).all() for v in state.values())


def test_grace_hopper_is_a_military_uniform(imagenet_model):
    """Top-1 is ImageNet 652 "military uniform" as with the original PyTorch network (p ~ 0.47)."""
    p = np.asarray(imagenet_model(hopper_224(), training=False))[0]
    top5 = np.argsort(-p)[:5].tolist()
    assert top5[0] == 652 and 0.35 < p[652] < 0.6
    assert 834 in top5  # "suit"
    assert p.sum() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("layer", ["stem_bn", "block5_dwconv", "block12_project_bn", "head_conv"])
def test_one_wrong_layer_breaks_the_prediction(imagenet_model, layer):
    """The check above is sharp: perturbing any single layer's weights changes the answer."""
    x = hopper_224()
    reference = np.asarray(imagenet_model(x, training=False))[0]
    target = imagenet_model.get_layer(layer)
    saved = target.get_weights()
    try:
        rng = np.random.default_rng(0)
        target.set_weights([rng.permutation(w.ravel()).reshape(w.shape) for w in saved])  # mis-mapped
        broken = np.asarray(imagenet_model(x, training=False))[0]
    finally:
        target.set_weights(saved)
    assert np.abs(broken - reference).max() > 0.05


def test_normalisation_matters(imagenet_model):
    """Inputs scaled wrongly (0-1 instead of 0-255) lose the answer: the constants are tested."""
    p = np.asarray(imagenet_model(hopper_224() / 255.0, training=False))[0]
    assert p[652] < 0.2


def test_every_backbone_layer_gets_weights(state):
    mapped = keras_weights(state, LITE0_BLOCKS)
    model = build_efficientnet_lite0(TrainConfig(architecture="efficientnet_lite0", image_size=64,
                                                 pretrained=False))
    weighted = {layer.name for layer in model.layers if layer.weights} - {"p_fake"}
    assert weighted == set(mapped) - {"imagenet_fc"}


def test_detector_head_is_new_and_backbone_pretrained():
    cfg = TrainConfig(architecture="efficientnet_lite0", image_size=96)
    model = build_model(cfg)
    assert model.output_shape == (None, 1)
    stem = model.get_layer("stem_conv").get_weights()[0]
    assert stem == pytest.approx(read_legacy_torch(weights_path())["_conv_stem.weight"].transpose(2, 3, 1, 0))
    out = np.asarray(model(np.zeros((2, 50, 70, 3), np.float32), training=False))
    assert out.shape == (2, 1) and np.all((out > 0) & (out < 1))


def test_keras_applications_path_with_random_weights():
    model = build_model(TrainConfig(architecture="keras:MobileNetV2", image_size=64, pretrained=False))
    assert model.output_shape == (None, 1) and model.count_params() > 2_000_000


def test_keras_applications_offline_download_fails_clearly(monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    offline.__module__ = "keras.src.applications.mobilenet_v2"
    with pytest.raises(DetectorError, match="offline, use --architecture efficientnet_lite0"):
        build_model(TrainConfig(architecture="keras:MobileNetV2", image_size=64, pretrained=True))


def test_unknown_architectures_are_named():
    with pytest.raises(ValueError, match="keras:NAME"):
        build_model(TrainConfig(architecture="resnet9000"))
    with pytest.raises(ValueError, match="not supported"):
        build_model(TrainConfig(architecture="keras:NoSuchNet"))
