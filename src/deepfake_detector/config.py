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


@dataclass
class TrainConfig:
    data_dir: str | None = None  # None: download the Kaggle dataset into `download_dir`
    download_dir: str = "data"
    out: str | None = None  # None: artifacts/<run_name>
    run_name: str | None = None
    architecture: str = "compact"  # see model.ARCHITECTURES, or keras:NAME for a keras.applications model
    pretrained: bool | None = None  # ImageNet weights; None: on for efficientnet_lite0, off otherwise
    image_size: int = 128  # side of the square image the model sees
    # Training images are decoded at load_size (None: image_size) and augmented with random
    # square crops whose side is crop_scale_min..1 of it, then resized to image_size.
    load_size: int | None = None
    crop_scale_min: float = 0.88
    width: int = 32  # base channel count of the compact architecture
    stem_stride: int = 1  # 2: the first conv reads full-resolution pixels at a quarter of the cost
    dropout: float = 0.3
    drop_connect: float = 0.2  # stochastic depth of the deepest EfficientNet block
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adam"  # adam | adamw
    learning_rate: float = 1e-4  # peak learning rate
    weight_decay: float = 0.0  # decoupled weight decay (adamw only)
    cosine_decay: bool = True  # cosine decay from the peak to lr_floor x peak after the warm-up
    lr_floor: float = 0.05
    warmup_epochs: int = 2
    warmup_start: float = 1.0  # learning rate at step 0 as a fraction of the peak (1.0: hold the peak)
    label_smoothing: float = 0.0
    patience: int = 5
    augment: bool = True
    max_per_class: int | None = None
    init_from: str | None = None  # a bundle folder whose weights start this run (same architecture)
    seed: int = 1337
    strategy: str = "default"  # default | mirrored | multiworker
    # 0: every Train image once per epoch. a > 0: images of a source (file-name prefix) with n
    # images are repeated round((n_largest / n) ** a) times, so small sources are not drowned out.
    source_balance: float = 0.0
    examples_per_class: int = 3
    push_to_hub: str | None = None
    private: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**data)

    def use_pretrained(self) -> bool:
        return self.architecture == "efficientnet_lite0" if self.pretrained is None else self.pretrained

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
