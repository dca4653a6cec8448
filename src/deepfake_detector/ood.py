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


def _flat_where_it_counts(rgb: np.ndarray, framing: Framing) -> float:
    """Flat share of the faces themselves when faces were found, else of the whole picture.

    A photograph's plain studio backdrop is flat too, but skin in a photograph never is: a face
    drawn, rendered as a graphic or pasted from a screenshot of one is."""
    boxes = [r.face.box for r in framing.regions if r.face is not None]
    if not boxes:
        return flat_fraction(rgb)
    h, w = rgb.shape[:2]
    shares = []
    for x, y, bw, bh in boxes:
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
        if x1 - x0 >= 8 and y1 - y0 >= 8:
            shares.append(flat_fraction(rgb[y0:y1, x0:x1]))
    return max(shares) if shares else flat_fraction(rgb)


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
    flat = _flat_where_it_counts(loaded.rgb, framing)
    if flat > FLAT_FRACTION:
        where = "the face" if any(r.face is not None for r in framing.regions) else "the image"
        notes.append(f"{flat:.0%} of {where} is perfectly flat colour: it looks like a drawing, screenshot "
                     f"or graphic, not a photo the model was trained on")
    small = [i for i, r in enumerate(framing.regions, start=1) if r.face is not None and r.box[2] < model_size]
    if small:
        which = ("the face is" if len(framing.regions) == 1 else f"face {small[0]} is" if len(small) == 1
                 else "faces " + ", ".join(map(str, small)) + " are")
        notes.append(f"{which} smaller than the model's {model_size}px input: fine detail is missing, "
                     f"so the score is less reliable")
    return notes


# -- unfamiliar faces ------------------------------------------------------------------------------
# The notes above look at the picture; this looks at what the model made of the face. A face unlike
# every Train face (a new camera, lighting, generator) lies far from all of them in the network's
# feature space, and there the score is an extrapolation: the verdict becomes "uncertain".
# The features come in parts (export.with_features): the pooled features the classifier reads,
# and the mean and spread of each channel of an early layer (its "style": sensor, compression,
# rendering). Per part, the distance is to the k-th nearest Train face after standardising,
# L2-normalising and a PCA (k-NN on normalised features: Sun et al., ICML 2022); each distance
# is turned into its rank among the Validation faces', and a face is as unfamiliar as its least
# familiar part. Measured on the shared data (docs/evaluation.md): the pooled features alone
# separate left-out DFDC and London faces, the early layer's statistics CelebA, StyleGAN and TPDNE.
UNFAMILIARITY_FILE = "unfamiliarity.npz"


class Unfamiliarity:
    """How unlike the Train faces a face is: 0..1, the share of Validation faces more familiar."""

    def __init__(self, parts: list[dict[str, np.ndarray]], k: int = 10, cutoff: float | None = None):
        self.parts, self.k = parts, k
        # The banks are stored as float16 (half the bundle bytes) and searched as float32.
        self._banks = [part["bank"].astype(np.float32) for part in parts]
        self.cutoff = cutoff  # scores above it are unfamiliar (fitted to keep a share of Validation)

    @classmethod
    def fit(cls, train: np.ndarray, validation: np.ndarray, bounds: list[int] | None = None,
            keep: float = 0.95, dims: int = 64, k: int = 10) -> Unfamiliarity:
        """`bounds`: where each part of the feature vector starts (default: one part)."""
        bounds = list(bounds or [0]) + [train.shape[1]]
        parts = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            x = train[:, a:b].astype(np.float32)
            part = {"start": np.int32(a), "end": np.int32(b), "centre": x.mean(axis=0), "scale": x.std(axis=0) + 1e-6}
            z = _normalised((x - part["centre"]) / part["scale"])
            part["mean"] = z.mean(axis=0)
            _, _, vt = np.linalg.svd(z - part["mean"], full_matrices=False)  # PCA of the Train bank
            part["components"] = vt[:min(dims, len(vt))].astype(np.float32)
            part["bank"] = _normalised((z - part["mean"]) @ part["components"].T).astype(np.float16)
            parts.append(part)
        u = cls(parts, k)
        for i, part in enumerate(parts):
            part["reference"] = np.sort(u._distance(i, validation))
        u.cutoff = float(np.quantile(u.score(validation), keep))
        return u

    def _distance(self, i: int, features: np.ndarray) -> np.ndarray:
        part = self.parts[i]
        x = np.asarray(features[:, int(part["start"]):int(part["end"])], np.float32)
        z = _normalised((x - part["centre"]) / part["scale"])
        q = _normalised((z - part["mean"]) @ part["components"].T)
        similarity = q @ self._banks[i].T
        k = min(self.k, similarity.shape[1])
        kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]  # k-th largest cosine similarity
        return 1.0 - kth

    def score(self, features: np.ndarray) -> np.ndarray:
        ranks = [np.searchsorted(part["reference"], self._distance(i, features)) / len(part["reference"])
                 for i, part in enumerate(self.parts)]
        return np.max(ranks, axis=0)

    def save(self, path) -> None:
        from .atomic import atomic_path

        arrays = {"k": np.int32(self.k), "cutoff": np.float64(np.nan if self.cutoff is None else self.cutoff),
                  "n_parts": np.int32(len(self.parts))}
        for i, part in enumerate(self.parts):
            arrays.update({f"part{i}_{key}": value for key, value in part.items()})
        with atomic_path(path) as staging, open(staging, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path) -> Unfamiliarity:
        with np.load(path) as z:
            parts = [{key.split("_", 1)[1]: z[key] for key in z.files if key.startswith(f"part{i}_")}
                     for i in range(int(z["n_parts"]))]
            cutoff = float(z["cutoff"])
            return cls(parts, int(z["k"]), None if np.isnan(cutoff) else cutoff)


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)
