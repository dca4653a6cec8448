"""Keras model -> the files serving reads: model.keras, model.tflite, and a float16 TFLite copy.

Float16 weights halve the file and, on CPUs, run at the speed of float32 (XNNPACK computes in
float32); int8 dynamic-range quantisation was measured too: a quarter of the size but ~30%
slower per call here (12.3 vs 9.5 ms for EfficientNet-Lite0 at 160²), so it is not used.

The TFLite files are checked against the Keras model before they enter a bundle; whether the
quantised copy is served is decided on Validation AUC when the bundle is sealed (`choose_tflite`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import DetectorError

log = logging.getLogger(__name__)
QUANTIZED_TFLITE = "model-float16.tflite"  # present only until the bundle is sealed
MAX_AUC_LOSS = 0.005  # the quantised model is served when it loses at most this much ROC AUC (Validation)


def run_tflite(path: Path | str, batch: np.ndarray) -> np.ndarray:
    """The raw scores of one batched call of a TFLite model, through the same runner serving uses."""
    from .inference import TFLiteRunner

    return TFLiteRunner(Path(path), pool_size=1)(batch)[:, 0]


def with_features(model):
    """The network with more outputs for telling faces unlike anything it was trained on (ood.py):
    the pooled features its classifier reads (the input of the "dropout" layer every architecture
    ends with) and, where the network has one, the per-channel mean and spread of its last residual
    sum at an eighth of the input's side (early: what the camera, compression or renderer left)."""
    import keras

    outputs = [model.outputs[0], model.get_layer("dropout").input]
    early = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)
             and len(layer.output.shape) == 4 and layer.output.shape[1] == _eighth(model)]
    if early:
        x = early[-1].output
        mean = keras.ops.mean(x, axis=(1, 2))
        spread = keras.ops.sqrt(keras.ops.maximum(keras.ops.mean(keras.ops.square(x), axis=(1, 2)) - mean ** 2, 0.0))
        outputs.append(keras.ops.concatenate([mean, spread], axis=-1))
    return keras.Model(model.inputs, outputs, name=model.name)


def _eighth(model) -> int | None:
    """The spatial side of the network's feature maps at stride 8 (from its resize layer's output)."""
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is not None and len(shape) == 4 and shape[1]:
            return int(shape[1]) // 8
    return None


def _convert(model, image_size: int, quantize: bool) -> bytes:
    import keras
    import tensorflow as tf

    served = with_features(model)
    with tempfile.TemporaryDirectory() as tmp:  # via a SavedModel: the direct route yields NaNs
        archive = keras.export.ExportArchive()  # explicit endpoint: BatchNorm in inference mode
        archive.track(served)
        archive.add_endpoint("serve", lambda x: served(x, training=False),
                             input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32)])
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if quantize:  # float16 weights, dequantised once when the interpreter loads
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def export_tflite(model, image_size: int, folder: Path, check_images: np.ndarray) -> dict:
    """Write model.keras (no optimizer, no custom code), model.tflite and its float16 copy; the TFLite
    copies have two outputs, the score and the pooled features."""
    import keras

    # From the config, not clone_model: a clone keeps the compiled optimizer, and its state would
    # triple the file (model.keras must hold the network only).
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    clean.save(folder / "model.keras")
    (folder / "model.tflite").write_bytes(_convert(clean, image_size, quantize=False))
    (folder / QUANTIZED_TFLITE).write_bytes(_convert(clean, image_size, quantize=True))
    x = check_images.astype(np.float32)
    ref = np.asarray(clean(x, training=False), np.float64).reshape(-1)
    diff = float(np.max(np.abs(run_tflite(folder / "model.tflite", x) - ref)))
    if diff > 1e-4:
        raise DetectorError(f"TFLite export disagrees with the Keras model by {diff:.2e} (> 1e-4)")
    float16_diff = float(np.max(np.abs(run_tflite(folder / QUANTIZED_TFLITE, x) - ref)))
    log.info("exported model.keras and model.tflite (max |difference| %.1e on %d images; float16 copy %.1e)",
             diff, len(x), float16_diff)
    return {"tflite_max_abs_diff": diff, "float16_max_abs_diff": float16_diff, "checked_images": int(len(x))}


def add_quantized(folder: Path, image_size: int) -> None:
    """Rewrite both TFLite copies of an existing bundle from its model.keras (float32 and float16),
    so that sealing can choose between them again."""
    from .bundle import load_keras_model

    model = load_keras_model(folder)
    (folder / "model.tflite").write_bytes(_convert(model, image_size, quantize=False))
    (folder / QUANTIZED_TFLITE).write_bytes(_convert(model, image_size, quantize=True))


def choose_tflite(folder: Path, float_auc: float | None, quantized_auc: float | None) -> dict:
    """Serve the float16 copy as model.tflite when it keeps Validation AUC within MAX_AUC_LOSS; record both.

    Only one TFLite file stays in the bundle (model.keras is the float reference), keeping it small.
    """
    quantized = folder / QUANTIZED_TFLITE
    record = {"float32_validation_roc_auc": float_auc, "float16_validation_roc_auc": quantized_auc,
              "max_auc_loss": MAX_AUC_LOSS, "float32_tflite_bytes": (folder / "model.tflite").stat().st_size,
              "served": "float32"}
    if float_auc is not None and quantized_auc is not None and quantized_auc >= float_auc - MAX_AUC_LOSS:
        os.replace(quantized, folder / "model.tflite")
        record["served"] = "float16"
    else:
        quantized.unlink()
    record["tflite_bytes"] = (folder / "model.tflite").stat().st_size
    return record
