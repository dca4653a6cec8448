"""Self-blended fakes: face outlines from FaceMesh, the blend, and its place in training batches."""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_detector.data import Split, find_hulls, make_tf_dataset
from deepfake_detector.selfblend import HULL_POINTS, blend_batch, face_hull, has_hull, self_blend
from test_faces import ASTRONAUT_FACE, portrait


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    """skimage's astronaut framed loosely (a square 2.5 x the face box, so the picture has room around the face), at the
    training load size (176 px), and its face outline."""
    x, y, w, _ = ASTRONAUT_FACE
    side = 2.5 * w
    left, top = x + w / 2 - side / 2, y + w / 2 - side / 2
    rgb = np.asarray(portrait("astronaut").crop((left, top, left + side, top + side)).resize((176, 176)))
    return rgb, face_hull(rgb)


def test_face_hull_outlines_the_face(astronaut):
    rgb, hull = astronaut
    assert hull.shape == (HULL_POINTS, 2) and has_hull(hull)
    points = hull[np.isfinite(hull[:, 0])] * 176
    assert len(points) >= 20
    w = h = 176 / 2.5  # the detector's box, in the middle of the crop
    x = y = (176 - w) / 2
    centre = points.mean(axis=0)
    assert abs(centre[0] - (x + w / 2)) < 0.25 * w and abs(centre[1] - (y + h / 2)) < 0.3 * h
    # The outline spans roughly the face box (FaceMesh reaches the forehead and chin beyond it).
    assert 0.7 * w < np.ptp(points[:, 0]) < 1.6 * w and 0.7 * h < np.ptp(points[:, 1]) < 1.8 * h


def test_no_face_no_hull():
    flat = np.full((176, 176, 3), 128, np.uint8)
    assert not has_hull(face_hull(flat))


def test_self_blend_changes_the_face_and_not_far_outside(astronaut):
    rgb, hull = astronaut
    points = hull[np.isfinite(hull[:, 0])] * 176
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    far = np.ones((176, 176), bool)  # well away from the outline (it may grow 8% and blur ~8% of the face)
    pad = 0.3 * max(x1 - x0, y1 - y0)
    far[max(0, int(y0 - pad)):int(y1 + pad), max(0, int(x0 - pad)):int(x1 + pad)] = False
    inside = np.zeros((176, 176), bool)
    inside[int(y0 + 0.35 * (y1 - y0)):int(y1 - 0.35 * (y1 - y0)), int(x0 + 0.35 * (x1 - x0)):int(x1 - 0.35 * (x1 - x0))] = True
    assert far.sum() > 2000 and inside.sum() > 100
    for seed in range(12):
        out = self_blend(rgb, hull, np.random.default_rng(seed))
        assert out.shape == rgb.shape and out.dtype == np.uint8
        assert np.array_equal(out, self_blend(rgb, hull, np.random.default_rng(seed)))  # seeded
        # Far outside, the output is the target: the picture, or its colour-changed copy, which is
        # one affine map per channel with a common gain. Inside, the pasted source breaks that map.
        src, dst = rgb[far].astype(float), out[far].astype(float)
        unclipped = ((dst > 0) & (dst < 255)).all(axis=1)
        residuals = []
        for c in range(3):
            fit = np.polyfit(src[unclipped, c], dst[unclipped, c], 1)
            residuals.append(np.abs(np.polyval(fit, src[unclipped, c]) - dst[unclipped, c]).max())
        assert max(residuals) <= 1.5, (seed, residuals)
        assert np.abs(out[inside].astype(int) - rgb[inside]).mean() > 1.0, seed


def test_blend_batch_turns_only_reals_with_an_outline_into_fakes(astronaut):
    rgb, hull = astronaut
    images = np.stack([rgb] * 6)
    labels = np.array([0, 0, 0, 1, 1, 0], np.float32)
    hulls = np.stack([hull] * 6)
    hulls[5] = np.nan  # a real image without a face found
    out, new = blend_batch(images, labels, hulls, 1.0, np.random.default_rng(0))
    assert new.tolist() == [1, 1, 1, 1, 1, 0]
    assert all(not np.array_equal(out[k], rgb) for k in range(3))
    assert all(np.array_equal(out[k], rgb) for k in (3, 4, 5))
    assert labels.tolist() == [0, 0, 0, 1, 1, 0] and np.array_equal(images[0], rgb)  # inputs untouched
    unchanged, same = blend_batch(images, labels, hulls, 0.0, np.random.default_rng(0))
    assert unchanged is images and same is labels
    # About `prob` of the eligible reals are blended.
    many = blend_batch(np.stack([rgb] * 200), np.zeros(200, np.float32), np.stack([hull] * 200), 0.25,
                       np.random.default_rng(1))[1]
    assert 30 <= many.sum() <= 70


def test_tf_dataset_blends_reals_after_find_hulls(astronaut, tmp_path):
    rgb = astronaut[0]
    split = Split("Train", [tmp_path / f"x_{i}.jpg" for i in range(8)], np.array([0] * 6 + [1] * 2, np.int32),
                  images=np.stack([rgb] * 8))
    with pytest.raises(ValueError, match="find_hulls"):
        make_tf_dataset(split, 8, training=True, seed=0, self_blend_prob=1.0)
    find_hulls(split)
    assert np.isfinite(split.hulls[:6, 0, 0]).all() and np.isnan(split.hulls[6:]).all()  # reals only
    images, labels = next(iter(make_tf_dataset(split, 8, training=True, seed=0, self_blend_prob=1.0)))
    assert labels.numpy().ravel().tolist() == [1.0] * 8  # every real blended, fakes kept
    changed = [not np.array_equal(images[k].numpy().astype(np.uint8), rgb) for k in range(8)]
    assert sum(changed) == 6
    plain_images, plain_labels = next(iter(make_tf_dataset(split, 8, training=False, seed=0, self_blend_prob=1.0)))
    assert plain_labels.numpy().ravel().tolist() == [0.0] * 6 + [1.0] * 2  # never when evaluating
