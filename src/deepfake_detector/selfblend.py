"""Self-blended fakes: a real face blended with a slightly altered copy of itself (Shiohara &
Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022).

A face swap pastes one face onto another inside a face-shaped mask; the seams it leaves (a blend
boundary, a colour or sharpness mismatch, a small misalignment) are what generalises across
swapping methods. Training sees such seams without needing any swapping method: with probability
`TrainConfig.self_blend_prob` a real Train image becomes a fake made by `self_blend`, inside the
convex hull of its FaceMesh landmarks (`face_hull`, computed once per image when the data are
decoded or packed: `data.find_hulls`).

`self_blend` needs only NumPy and Pillow, so the same code runs in tf.data (`data.py`) and on a
training machine without TensorFlow or OpenCV (`portable.py`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Part of the name of cached outlines (data.find_hulls): bump it when face_hull's output changes
# (the face search or landmarks behind it), so no cache made by the old code is read.
HULL_VERSION = 3
HULL_POINTS = 64  # fixed length of a stored hull (NaN-padded); FaceMesh hulls have ~30-45 vertices
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # the paper's mix: mostly a full paste


# -- hulls (where the data are decoded: needs the face models) -----------------------------------------
def face_landmarks(rgb: np.ndarray) -> np.ndarray | None:
    """The largest face's 468 FaceMesh landmarks (pixels), or None when no face is found or
    FaceMesh doubts it saw one."""
    from .faces import FaceSettings, detect_faces, measure_landmarks

    settings = FaceSettings(landmarks=True)
    faces = detect_faces(rgb, settings)[:1]
    measure_landmarks(rgb, faces, settings)
    return faces[0].landmarks if faces else None


def face_hull(rgb: np.ndarray) -> np.ndarray:
    """Convex hull of the largest face's 468 FaceMesh landmarks, as HULL_POINTS x 2 fractions of
    the image's (width, height), NaN-padded; all NaN when no face (or no landmarks) is found."""
    import cv2

    hull = np.full((HULL_POINTS, 2), np.nan, np.float32)
    landmarks = face_landmarks(rgb)
    if landmarks is None:
        return hull
    points = cv2.convexHull(landmarks.astype(np.float32)).reshape(-1, 2)
    if len(points) > HULL_POINTS:  # keep every k-th vertex: still the same outline
        points = points[np.linspace(0, len(points) - 1, HULL_POINTS).astype(int)]
    hull[:len(points)] = np.clip(points / [rgb.shape[1], rgb.shape[0]], 0.0, 1.0)
    return hull


def warp_face_onto(target: np.ndarray, target_points: np.ndarray, source: np.ndarray,
                   source_points: np.ndarray) -> tuple[np.ndarray, Image.Image]:
    """Another person's face for a face swap: `source` warped onto `target` by the similarity
    transform of their FaceMesh landmarks, and the target's face outline as an L mask (for the
    scripts that make swaps the model never trained on)."""
    import cv2

    matrix, _ = cv2.estimateAffinePartial2D(source_points.astype(np.float32), target_points.astype(np.float32))
    warped = cv2.warpAffine(source, matrix, (target.shape[1], target.shape[0]), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    hull = cv2.convexHull(target_points.astype(np.float32)).reshape(-1, 2)
    mask = Image.new("L", (target.shape[1], target.shape[0]), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in hull], fill=255)
    return warped, mask


def has_hull(hull: np.ndarray) -> bool:
    return bool(np.isfinite(hull[:3]).all())


# -- blending (where training runs: NumPy and Pillow only) ----------------------------------------------
def self_blend(image: np.ndarray, hull: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fake made from `image` (H x W x 3 uint8) alone, blended inside `hull` (see face_hull).

    Source and target are both `image`: one of them gets a colour change, the source may be
    sharpened or blurred and is shifted and rescaled by a few percent, and the source is pasted onto
    the target through the hull's mask, softened at its edge and weighted by a random ratio. Outside
    the mask's soft edge the output is the target: `image`, or its colour-changed copy.
    """
    h, w = image.shape[:2]
    points = hull[np.isfinite(hull).all(axis=1)].astype(np.float64) * [w, h]
    centre = points.mean(axis=0)
    points = centre + (points - centre) * rng.uniform(0.9, 1.08, size=2)  # vary the region's shape
    face = float(np.sqrt(max(np.ptp(points[:, 0]) * np.ptp(points[:, 1]), 1.0)))

    source = image.astype(np.float32)
    target = image.astype(np.float32)
    if rng.random() < 0.5:
        source = _recolour(source, rng)
    else:
        target = _recolour(target, rng)
    source_im = Image.fromarray(np.clip(np.round(source), 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        source_im = (source_im.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2))) if rng.random() < 0.5
                     else source_im.filter(ImageFilter.UnsharpMask(2, int(rng.integers(50, 150)), 0)))
    source = np.asarray(_shift_scale(source_im, centre, face, rng), np.float32)

    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in points], fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(0.02, 0.08) * face))
    if rng.random() < 0.5:  # as the paper: keep only the blurred mask's core, then soften it again
        core = np.where(np.asarray(mask) == 255, 255, 0).astype(np.uint8)
        mask = Image.fromarray(core).filter(ImageFilter.GaussianBlur(rng.uniform(0.02, 0.06) * face))
    alpha = np.asarray(mask, np.float32)[..., None] / 255.0 * rng.choice(BLEND_RATIOS)
    blended = alpha * source + (1.0 - alpha) * target
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _recolour(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour change a swap leaves: per-channel shift, brightness and contrast."""
    pixels = pixels + rng.uniform(-20.0, 20.0, size=3)
    mean = pixels.mean()
    return (pixels - mean) * rng.uniform(0.9, 1.1) + mean + rng.uniform(-12.0, 12.0)


def _shift_scale(im: Image.Image, centre: np.ndarray, face: float, rng: np.random.Generator) -> Image.Image:
    """`im` scaled by 0.95-1.05 about the face centre and shifted by up to 3% of the face size."""
    scale = rng.uniform(0.95, 1.05, size=2)
    shift = rng.uniform(-0.03, 0.03, size=2) * face
    # Image.transform maps output (x, y) to input (a x + b y + c, d x + e y + f).
    cx, cy = centre
    a, e = 1.0 / scale
    c = cx - a * (cx + shift[0])
    f = cy - e * (cy + shift[1])
    return im.transform(im.size, Image.Transform.AFFINE, (a, 0.0, c, 0.0, e, f), Image.Resampling.BILINEAR)


def blend_batch(images: np.ndarray, labels: np.ndarray, hulls: np.ndarray | None, prob: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A training batch with each real image that has a hull turned, with probability `prob`,
    into a self-blended fake (label 1). Returns new arrays; the inputs are not changed."""
    if hulls is None or prob <= 0:
        return images, labels
    labels = np.array(labels, copy=True)
    out = None
    for k in range(len(images)):
        if labels.reshape(-1)[k] == 0 and has_hull(hulls[k]) and rng.random() < prob:
            if out is None:
                out = np.array(images, copy=True)
            out[k] = self_blend(np.asarray(images[k]), hulls[k], rng)
            labels.reshape(-1)[k] = 1
    return (images if out is None else out), labels
