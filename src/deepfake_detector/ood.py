"""Notes on inputs unlike the training data, so a confident-looking score is read with care.

Each check is cheap and documented in the README; none changes the score, each names what it
saw. The training faces are colour photographs, at least the model's input size, JPEG quality
above ~60 (the augmentation goes down to 40).
"""

from __future__ import annotations

import cv2
import numpy as np

from .faces import Framing
from .imaging import LoadedImage

LOW_JPEG_QUALITY = 50  # below the Train files' qualities; augmentation reaches 40 only for 40% of images
FLAT_FRACTION = 0.4  # photos have sensor noise: almost no pixel has an exactly flat neighbourhood
GRAY_TOLERANCE = 2.0  # mean |R-G| and |G-B| below this: the colour channels are one picture


def flat_fraction(rgb: np.ndarray, max_side: int = 320) -> float:
    """Share of pixels whose 3x3 neighbourhood is exactly uniform (drawings, screenshots, graphics)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:  # nearest keeps flat areas exactly flat and noise noisy
        rgb = cv2.resize(rgb, (max(3, int(w * scale)), max(3, int(h * scale))), interpolation=cv2.INTER_NEAREST)
    kernel = np.ones((3, 3), np.uint8)
    diff = cv2.dilate(rgb, kernel) - cv2.erode(rgb, kernel)
    # Per pixel, any channel (elementwise maxima: ~20x faster than .max(axis=2) on a 3-wide last axis).
    spread = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
    return float((spread[1:-1, 1:-1] == 0).mean())


def is_grayscale(rgb: np.ndarray) -> bool:
    sample = rgb[::4, ::4].astype(np.int16)
    return (np.abs(sample[..., 0] - sample[..., 1]).mean() < GRAY_TOLERANCE
            and np.abs(sample[..., 1] - sample[..., 2]).mean() < GRAY_TOLERANCE)


def input_notes(loaded: LoadedImage, framing: Framing, model_size: int) -> list[str]:
    notes = []
    if loaded.mode in ("L", "LA", "1", "I;16", "I", "F") or is_grayscale(loaded.rgb):
        notes.append("grayscale image: the model was trained on colour photos")
    if loaded.jpeg_quality is not None and loaded.jpeg_quality < LOW_JPEG_QUALITY:
        notes.append(f"heavily compressed JPEG (quality about {loaded.jpeg_quality}): compression hides "
                     f"the traces the model looks for")
    flat = flat_fraction(loaded.rgb)
    if flat > FLAT_FRACTION:
        notes.append(f"{flat:.0%} of the image is perfectly flat colour: it looks like a drawing, screenshot "
                     f"or graphic, not a photo the model was trained on")
    small = [i for i, r in enumerate(framing.regions, start=1) if r.face is not None and r.box[2] < model_size]
    if small:
        which = ("the face is" if len(framing.regions) == 1 else f"face {small[0]} is" if len(small) == 1
                 else "faces " + ", ".join(map(str, small)) + " are")
        notes.append(f"{which} smaller than the model's {model_size}px input: fine detail is missing, "
                     f"so the score is less reliable")
    return notes
