"""Settings as data: one dataclass for a training run, saved with every bundle.

A run is fully described by its `TrainConfig`; `train.py --config FILE` loads one from JSON
and command-line flags override single fields. The same JSON lands in the bundle's
`config.json`, so any shipped model can be re-trained from its own files.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KAGGLE_DATASET = "manjilkarki/deepfake-and-real-images"
CLASS_NAMES = ("Real", "Fake")  # index 1 = positive class = P(fake)
SPLITS = ("Train", "Validation", "Test")


def setting(default, help: str, choices: tuple | None = None, **kwargs):
    """A TrainConfig field with its one-line documentation (shown by `train.py --help`)."""
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return field(metadata={"help": help, "choices": choices}, **kwargs)


@dataclass
class TrainConfig:
    data_dir: str | None = setting(None, "dataset folder in the Kaggle layout; unset: download from Kaggle")
    download_dir: str = setting("data", "where the Kaggle download goes")
    out: str | None = setting(None, "bundle folder to write (default artifacts/RUN_NAME)")
    run_name: str | None = setting(None, "name of the run (default ARCHITECTURE-SIZE-TIMESTAMP)")
    architecture: str = setting("compact", "network: efficientnet_lite0 (ImageNet-pretrained, offline), compact, "
                                "seed, or keras:NAME for a keras.applications model (weights downloaded)")
    pretrained: bool | None = setting(None, "start from ImageNet weights (default: on for efficientnet_lite0 "
                                      "and keras:NAME, off for compact and seed)")
    image_size: int = setting(128, "side of the square image the model sees")
    load_size: int | None = setting(None, "side Train images are decoded at before random crops "
                                    "(default: image_size)")
    crop_scale_min: float = setting(0.88, "smallest random crop side, as a fraction of load_size")
    framing: str = setting("whole", "what of each picture is decoded: the whole picture squashed to a square, or "
                           "its largest face framed as the served path frames an upload (faces.frame_faces)",
                           choices=("whole", "faces"))
    width: int = setting(32, "base channel count of the compact architecture")
    stem_stride: int = setting(1, "stride of the compact architecture's first convolution")
    dropout: float = setting(0.3, "dropout before the classifier")
    drop_connect: float = setting(0.2, "stochastic depth: block k of 16 is skipped with probability drop_connect x k / 16")
    epochs: int = setting(30, "maximum number of epochs")
    batch_size: int = setting(32, "images per step (per replica)")
    optimizer: str = setting("adam", "optimizer", choices=("adam", "adamw"))
    learning_rate: float = setting(1e-4, "peak learning rate")
    weight_decay: float = setting(0.0, "decoupled weight decay (adamw only)")
    cosine_decay: bool = setting(True, "cosine decay from the peak to lr_floor x peak after the warm-up")
    lr_floor: float = setting(0.05, "final learning rate as a fraction of the peak")
    warmup_epochs: int = setting(2, "epochs of linear warm-up before the decay")
    warmup_start: float = setting(1.0, "learning rate at step 0 as a fraction of the peak (1.0: hold the peak)")
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy loss")
    patience: int = setting(5, "stop after this many epochs without a better validation loss")
    augment: bool = setting(True, "random crops, flips, colour jitter, rescaling and JPEG re-encoding")
    rescale_prob: float = setting(0.3, "share of Train images scaled down to rescale_min-90%% and back up")
    rescale_min: float = setting(0.5, "smallest side of that down-scaling, as a fraction of image_size")
    jpeg_prob: float = setting(0.4, "share of Train images re-encoded as JPEG")
    jpeg_quality_min: int = setting(40, "lowest JPEG quality of that re-encoding (highest 95)")
    self_blend_prob: float = setting(0.0, "chance that a real Train image, each time it is drawn, becomes a "
                                     "self-blended fake (a face blended with an altered copy of itself; "
                                     "see selfblend.py)")
    epoch_images: int | None = setting(None, "images per epoch, drawn afresh each epoch from the (source-balanced) "
                                       "Train pass; unset: the whole pass (short epochs suit slow CPU runs)")
    max_per_class: int | None = setting(None, "use at most this many images per class and split (quick runs)")
    init_from: str | None = setting(None, "bundle folder whose weights start this run (same architecture)")
    seed: int = setting(1337, "random seed of data order, augmentation and initialisation")
    strategy: str = setting("default", "distribution strategy", choices=("default", "mirrored", "multiworker"))
    source_balance: float = setting(0.0, "0: every Train image once per epoch; a > 0: images of a source with n "
                                    "images repeat round((n_largest / n) ** a) times")
    max_false_alarm: float = setting(0.02, "decision threshold: at most this share of the real Validation pictures "
                                     "is called fake (see verdicts.fit_threshold)")
    unfamiliar_keep: float = setting(0.98, "share of Validation faces whose features count as familiar; beyond that "
                                     "distance from the Train faces a verdict is \"uncertain\" (see ood.Unfamiliarity)")
    verdict_min_precision: float = setting(0.8, "verdicts whose Validation-measured local precision is below "
                                           "this are \"uncertain\" (see evaluation.choose_uncertain_band)")
    examples_per_class: int = setting(3, "example images per class copied into the bundle")
    push_to_hub: str | None = setting(None, "Hub repo OWNER/NAME to push the finished bundle to")
    private: bool = setting(False, "create the Hub repo private")
    extra: dict[str, Any] = setting(None, "free-form notes (examples_dir, dataset_description)",
                                    default_factory=dict)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """Load a config; a `"base": "other.json"` key (relative to the file) supplies defaults."""
        data = _read_with_base(Path(path))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**data)

    def use_pretrained(self) -> bool:
        if self.pretrained is None:
            return self.architecture == "efficientnet_lite0" or self.architecture.startswith("keras:")
        return self.pretrained

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _read_with_base(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path.resolve() in seen:
        raise ValueError(f"{path}: configs include each other in a loop")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"config file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    base = data.pop("base", None)
    if base is None:
        return data
    merged = _read_with_base(path.parent / base, (*seen, path.resolve()))
    merged_extra = {**merged.get("extra", {}), **data.pop("extra", {})}
    merged.update(data)
    if merged_extra:
        merged["extra"] = merged_extra
    return merged
