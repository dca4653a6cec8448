"""Small generated datasets for the tests: 'fake' images carry a learnable artefact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_image(rng: np.random.Generator, fake: bool, size: int = 64) -> np.ndarray:
    base = rng.integers(60, 180, size=3)
    img = np.clip(rng.normal(base, 25, size=(size, size, 3)), 0, 255)
    if fake:  # a periodic stripe pattern over a warm tint: easy to learn, like an upsampling artefact
        stripes = (np.arange(size) // 4 % 2 == 0)[None, :, None] * 60.0
        img = np.clip(img * 0.6 + stripes + np.array([60, 10, 0]), 0, 255)
    return img.astype(np.uint8)


def make_dataset(root: Path, per_class: int = 40, size: int = 64, seed: int = 0,
                 splits=("Train", "Validation", "Test")) -> Path:
    rng = np.random.default_rng(seed)
    for split in splits:
        for cls in ("Fake", "Real"):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                src = "synA" if i % 2 else "synB"
                Image.fromarray(make_image(rng, cls == "Fake", size)).save(folder / f"{src}_{i:03d}.jpg", quality=95)
    return root
