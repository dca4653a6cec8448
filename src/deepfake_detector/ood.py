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
        notes.append(f"{flat:.0%} of the image is perfectly flat colour: it looks like a drawing, screenshot "
                     f"or graphic, not a photo the model was trained on")
    small = [i for i, r in enumerate(framing.regions, start=1) if r.face is not None and r.box[2] < model_size]
    if small:
        which = ("the face is" if len(framing.regions) == 1 else f"face {small[0]} is" if len(small) == 1
                 else "faces " + ", ".join(map(str, small)) + " are")
        notes.append(f"{which} smaller than the model's {model_size}px input: fine detail is missing, "
                     f"so the score is less reliable")
    return notes


# -- unfamiliar faces ------------------------------------------------------------------------------
# The notes above look at the picture; this looks at what the model made of the face. The network's
# pooled features of a face unlike every Train face (a new kind of camera, lighting, generator)
# lie far from all Train faces, and there the score is an extrapolation: the verdict becomes
# "uncertain". Distance is to the k-th nearest Train face after L2-normalising and a PCA
# (k-NN on normalised features: Sun et al., ICML 2022), a Mahalanobis distance is the alternative
# (`method`). Both are fitted when a bundle is sealed and stored in it (`UNFAMILIARITY_FILE`).
UNFAMILIARITY_FILE = "unfamiliarity.npz"


class Unfamiliarity:
    """How far a face's features are from the Train faces' (larger: less familiar)."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, bank: np.ndarray | None = None,
                 inv_var: np.ndarray | None = None, k: int = 10, cutoff: float | None = None):
        self.mean, self.components, self.bank, self.inv_var, self.k = mean, components, bank, inv_var, k
        self.cutoff = cutoff  # scores above it are unfamiliar; set from Validation (fit_cutoff)

    @property
    def method(self) -> str:
        return "knn" if self.bank is not None else "mahalanobis"

    @classmethod
    def fit(cls, features: np.ndarray, method: str = "knn", dims: int = 64, k: int = 10) -> Unfamiliarity:
        x = _normalised(features)
        mean = x.mean(axis=0)
        # PCA by SVD of the centred bank: the leading directions hold what the faces vary in.
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        components = vt[:min(dims, len(vt))].astype(np.float32)
        projected = (x - mean) @ components.T
        if method == "knn":
            return cls(mean.astype(np.float32), components, bank=_normalised(projected).astype(np.float16), k=k)
        if method == "mahalanobis":
            return cls(mean.astype(np.float32), components, inv_var=(1.0 / (projected.var(axis=0) + 1e-6)).astype(np.float32))
        raise ValueError(f"unknown unfamiliarity method {method!r}; choose knn or mahalanobis")

    def score(self, features: np.ndarray) -> np.ndarray:
        projected = (_normalised(features) - self.mean) @ self.components.T
        if self.bank is None:
            return np.sqrt((projected ** 2 * self.inv_var).sum(axis=1))
        similarity = _normalised(projected) @ self.bank.astype(np.float32).T
        k = min(self.k, similarity.shape[1])
        kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]  # k-th largest cosine similarity
        return 1.0 - kth

    def fit_cutoff(self, validation_features: np.ndarray, keep: float) -> float:
        """The cut-off that leaves `keep` of the Validation faces familiar."""
        self.cutoff = float(np.quantile(self.score(validation_features), keep))
        return self.cutoff

    def save(self, path) -> None:
        from .atomic import atomic_path

        arrays = {"mean": self.mean, "components": self.components, "k": np.int32(self.k),
                  "cutoff": np.float64(np.nan if self.cutoff is None else self.cutoff)}
        arrays.update({"bank": self.bank} if self.bank is not None else {"inv_var": self.inv_var})
        with atomic_path(path) as staging, open(staging, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path) -> Unfamiliarity:
        with np.load(path) as z:
            cutoff = float(z["cutoff"])
            return cls(z["mean"], z["components"], z["bank"] if "bank" in z.files else None,
                       z["inv_var"] if "inv_var" in z.files else None, int(z["k"]),
                       None if np.isnan(cutoff) else cutoff)


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)
