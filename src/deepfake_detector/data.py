"""Dataset: find (or download) the Kaggle-layout folder, check it, decode it once, feed tf.data.

Layout: ROOT/{Train,Validation,Test}/{Fake,Real}/*.jpg (ROOT may also hold them under
`Dataset/`). Images are decoded once with `imaging.load_image` - the same code the predictor
uses - resized to the model's input size and kept as a uint8 array (in memory, or memory-mapped
on disk for datasets that do not fit), so epochs after the first never touch a JPEG decoder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import atomic
from .atomic import staging_path
from .config import CLASS_NAMES, KAGGLE_DATASET, SPLITS
from .errors import DatasetError, ImageError
from .imaging import IMAGE_SUFFIXES, load_image, resize_square

log = logging.getLogger(__name__)


@dataclass
class Split:
    name: str
    paths: list[Path]
    labels: np.ndarray  # 1 = fake
    images: np.ndarray | None = None  # N x S x S x 3 uint8, after `decode`
    hulls: np.ndarray | None = None  # N x HULL_POINTS x 2 face outlines of the real images, after `find_hulls`
    skipped: list[str] = field(default_factory=list)  # unreadable files, with the reason
    framing: str = "whole"  # how `decode` framed the pictures (see TrainConfig.framing)

    @property
    def sources(self) -> list[str]:
        return [source_of(p) for p in self.paths]

    def counts(self) -> dict[str, int]:
        fake = int(self.labels.sum())
        return {"Fake": fake, "Real": len(self.labels) - fake}


def source_of(path: Path | str) -> str:
    """File-name prefix before the first '_' (e.g. `dfdc_x.jpg` -> `dfdc`), else 'all'."""
    name = Path(path).name
    return name.split("_", 1)[0] if "_" in name else "all"


def resolve_root(path: str | Path) -> Path:
    """Accept ROOT or ROOT/Dataset; explain what was found when neither has the layout."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DatasetError(f"data folder not found: {path}")
    for candidate in (path, path / "Dataset"):
        if any((candidate / split).is_dir() for split in SPLITS):
            return candidate
    found = sorted(p.name for p in path.iterdir())[:10]
    raise DatasetError(
        f"{path} does not have the expected layout {{Train,Validation,Test}}/{{Fake,Real}}/*.jpg "
        f"(also accepted under Dataset/); found: {', '.join(found) or 'nothing'}")


def _list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def scan(root: str | Path, max_per_class: int | None = None, seed: int = 0) -> dict[str, Split]:
    """List every split's files; fail with per-split/class counts if any is missing or empty."""
    root = resolve_root(root)
    found: dict[str, dict[str, list[Path]]] = {
        split: {cls: _list_images(root / split / cls) for cls in CLASS_NAMES} for split in SPLITS}
    problems = [f"{split}/{cls}" for split in SPLITS for cls in ("Fake", "Real") if not found[split][cls]]
    if problems:
        table = "; ".join(f"{split}: " + ", ".join(
            f"{cls}={len(found[split][cls]) if (root / split / cls).is_dir() else 'missing'}"
            for cls in ("Fake", "Real")) for split in SPLITS)
        raise DatasetError(f"dataset at {root} is incomplete: no images in {', '.join(problems)}. "
                           f"Expected {{Train,Validation,Test}}/{{Fake,Real}}/*.jpg; found {table}")
    rng = random.Random(seed)
    splits = {}
    for split in SPLITS:
        paths, labels = [], []
        for label, cls in enumerate(CLASS_NAMES):
            files = list(found[split][cls])
            if max_per_class and len(files) > max_per_class:
                files = sorted(rng.sample(files, max_per_class))
            paths += files
            labels += [label] * len(files)
        splits[split] = Split(split, paths, np.asarray(labels, dtype=np.int32))
    return splits


def _decode_one(args: tuple[str, int, str]) -> tuple[np.ndarray | None, str | None]:
    path, size, framing = args
    try:
        rgb = load_image(path).rgb
    except ImageError as exc:
        return None, str(exc)
    if framing == "faces":
        # As the served path frames an upload: a whole photograph becomes its largest face at
        # crop_scale, a face crop stays whole. Training on whole photographs squashed to a square
        # would teach a framing the model never meets when serving.
        from .faces import frame_faces

        rgb = frame_faces(rgb).regions[0].rgb
    return resize_square(rgb, size), None


def _cache_key(split: Split, size: int, framing: str = "whole") -> str:
    h = hashlib.sha256(f"{size}{'' if framing == 'whole' else framing}".encode())
    for p in split.paths:
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def decode(split: Split, size: int, cache_dir: str | Path | None = None, workers: int | None = None,
           progress: bool = True, framing: str = "whole") -> Split:
    """Decode every image of `split` to size x size uint8; unreadable files are skipped + counted.

    `framing` "faces": each picture's largest face, framed as the served path frames it.
    With `cache_dir`, the array is memory-mapped from disk and reused by later runs.
    """
    if framing not in ("whole", "faces"):
        raise DatasetError(f"unknown framing {framing!r}; choose whole or faces")
    cache_file = meta_file = None
    if cache_dir:
        key = _cache_key(split, size, framing)
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        cache_file = Path(cache_dir) / f"{split.name}-{size}-{key}.npy"
        meta_file = cache_file.with_suffix(".json")
        if cache_file.exists() and meta_file.exists():
            meta = json.loads(meta_file.read_text())
            keep = np.asarray(meta["keep"], dtype=bool)
            split.images = np.load(cache_file, mmap_mode="r")
            split.skipped = meta["skipped"]
            split.framing = framing
            _apply_keep(split, keep)
            log.info("%s: %d images from cache %s", split.name, len(split.paths), cache_file)
            return split

    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    n = len(split.paths)
    images = np.zeros((n, size, size, 3), dtype=np.uint8) if cache_file is None else \
        np.lib.format.open_memmap(staging_path(cache_file), mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    keep = np.ones(n, dtype=bool)
    skipped = []
    jobs = [(str(p), size, framing) for p in split.paths]
    step = max(1000, n // 10)  # progress lines only on real datasets
    with ProcessPoolExecutor(workers) as pool:
        for i, (img, err) in enumerate(pool.map(_decode_one, jobs, chunksize=64)):
            if img is None:
                keep[i] = False
                skipped.append(f"{split.paths[i].name}: {err}")
            else:
                images[i] = img
            if progress and (i + 1) % step == 0:
                log.info("decoding %s: %d/%d images", split.name, i + 1, n)
    if skipped:
        log.warning("%s: skipped %d unreadable image(s), e.g. %s", split.name, len(skipped), skipped[0])
    if cache_file is not None:
        images.flush()
        del images
        os.replace(staging_path(cache_file), cache_file)
        atomic.write_text(meta_file, json.dumps({"keep": keep.tolist(), "skipped": skipped}))
        images = np.load(cache_file, mmap_mode="r")
    split.images = images
    split.skipped = skipped
    split.framing = framing
    _apply_keep(split, keep)
    if len(split.paths) == 0 or len(set(split.labels.tolist())) < 2:
        raise DatasetError(f"{split.name}: no readable images left in one class after skipping "
                           f"{len(skipped)} unreadable file(s) ({skipped[:1]})")
    return split


def find_hulls(split: Split, cache_dir: str | Path | None = None) -> Split:
    """Face outlines (`selfblend.face_hull`) of the decoded real images, for self-blended fakes;
    NaN for fakes and for reals without a face found. Cached next to the decoded images."""
    from .selfblend import HULL_POINTS, HULL_VERSION, face_hull

    cache_file = None
    if cache_dir:
        key = _cache_key(split, split.images.shape[1], split.framing)
        cache_file = Path(cache_dir) / f"{split.name}-{split.images.shape[1]}-{key}-hulls-v{HULL_VERSION}.npy"
        if cache_file.exists():
            split.hulls = np.load(cache_file)
            return split
    hulls = np.full((len(split.labels), HULL_POINTS, 2), np.nan, np.float16)
    reals = np.flatnonzero(split.labels == 0)
    for k, i in enumerate(reals):
        hulls[i] = face_hull(np.asarray(split.images[i]))
        if (k + 1) % 2000 == 0:
            log.info("face outlines for self-blending: %d/%d real images", k + 1, len(reals))
    found = np.isfinite(hulls[reals, 0, 0]).mean() if len(reals) else 0.0
    log.info("%s: face outline found on %.1f%% of %d real images", split.name, 100 * found, len(reals))
    if cache_file is not None:
        with atomic.atomic_path(cache_file) as staging, open(staging, "wb") as f:
            np.save(f, hulls)
    split.hulls = hulls
    return split


def _apply_keep(split: Split, keep: np.ndarray) -> None:
    if keep.all():
        return
    idx = np.flatnonzero(keep)
    split.paths = [split.paths[i] for i in idx]
    split.labels = split.labels[idx]
    split.images = split.images[idx]


def kaggle_credentials_present() -> bool:
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config_dir / "kaggle.json").is_file() or Path("kaggle.json").is_file()


def download_kaggle(download_dir: str | Path, dataset: str = KAGGLE_DATASET) -> Path:
    """Fetch the Kaggle dataset with opendatasets unless it is already on disk; return its root."""
    download_dir = Path(download_dir)
    target = download_dir / dataset.split("/")[-1]
    if target.is_dir():
        try:
            return resolve_root(target)
        except DatasetError:
            pass  # a partial earlier download: let opendatasets complete it
    if not kaggle_credentials_present():
        raise DatasetError(
            "no data folder given and no Kaggle credentials found: set KAGGLE_USERNAME and "
            "KAGGLE_KEY, or put kaggle.json in ~/.kaggle/, or pass --data-dir PATH to a local "
            "folder with {Train,Validation,Test}/{Fake,Real}/*.jpg")
    import opendatasets

    download_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading Kaggle dataset %s into %s", dataset, download_dir)
    try:
        opendatasets.download(f"https://www.kaggle.com/datasets/{dataset}", data_dir=str(download_dir))
    except Exception as exc:  # noqa: BLE001 - network/auth errors of a third-party client
        raise DatasetError(f"downloading Kaggle dataset {dataset} failed: {type(exc).__name__}: "
                           f"{_redact(str(exc))}") from None
    return resolve_root(target)


def _redact(text: str) -> str:
    key = os.environ.get("KAGGLE_KEY")
    return text.replace(key, "***") if key else text


def epoch_indices(split: Split, source_balance: float = 0.0) -> np.ndarray:
    """Image indices of one training epoch: each once, or small sources repeated (see TrainConfig)."""
    n = len(split.labels)
    if source_balance <= 0:
        return np.arange(n)
    sources = np.asarray(split.sources)
    names, counts = np.unique(sources, return_counts=True)
    repeats = {name: max(1, round((counts.max() / c) ** source_balance)) for name, c in zip(names, counts)}
    return np.repeat(np.arange(n), [repeats[s] for s in sources])


@dataclass(frozen=True)
class Augmentation:
    """Strengths of the training augmentation (from TrainConfig; see `augment_image`)."""
    crop_scale_min: float = 0.88
    rescale_prob: float = 0.3
    jpeg_prob: float = 0.4
    jpeg_quality_min: int = 40
    rescale_min: float = 0.5

    @classmethod
    def from_config(cls, cfg) -> Augmentation:
        return cls(cfg.crop_scale_min, cfg.rescale_prob, cfg.jpeg_prob, cfg.jpeg_quality_min, cfg.rescale_min)


def make_tf_dataset(split: Split, batch_size: int, training: bool, seed: int,
                    augment: Augmentation | None = None, indices: np.ndarray | None = None,
                    out_size: int | None = None, self_blend_prob: float = 0.0, per_epoch: int | None = None):
    """Batches of (uint8 image -> float32, label); shuffled and augmented for training only.

    `indices` (default: every image once) lists the images of one pass, repeats allowed;
    `per_epoch` (training only) caps an epoch at that many of them, drawn afresh each epoch.
    Images come out at `out_size` (default: the decoded size). With `self_blend_prob` (training
    only; needs `find_hulls`), real images become self-blended fakes before augmentation.
    """
    import tensorflow as tf

    from .selfblend import blend_batch

    images, labels = split.images, split.labels.astype(np.float32)
    size = images.shape[1]
    indices = np.arange(len(labels)) if indices is None else np.asarray(indices, dtype=np.int64)
    blend = training and self_blend_prob > 0
    if blend and split.hulls is None:
        raise ValueError("self-blending needs the face outlines: call data.find_hulls(split) first")

    def gather(idx):
        order = np.argsort(idx)  # memory-mapped reads in file order, batch order kept
        batch = np.empty((len(idx), size, size, 3), np.uint8)
        batch[order] = images[idx[order]]
        if not blend:
            return batch, labels[idx]
        # Seeded by the batch's own indices: reproducible, and safe in tf.data's parallel calls.
        rng = np.random.default_rng([seed, *idx.tolist()])
        return blend_batch(batch, labels[idx], split.hulls[idx], self_blend_prob, rng)

    ds = tf.data.Dataset.from_tensor_slices(indices)
    n_images = min(len(indices), per_epoch) if training and per_epoch else len(indices)
    n_batches = int(np.ceil(n_images / batch_size))
    if training:
        ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True).take(n_images)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda idx: tf.numpy_function(gather, [idx], (tf.uint8, tf.float32)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(lambda x, y: (tf.ensure_shape(x, (None, size, size, 3)), tf.reshape(y, (-1, 1))))
    out_size = out_size or size
    if training and augment is not None:
        ds = ds.unbatch().map(lambda x, y: (augment_image(x, out_size, augment), y),
                              num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    elif out_size != size:
        ds = ds.map(lambda x, y: (tf.image.resize(x, (out_size, out_size), antialias=True), y))
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    # A known length lets Keras show "step k/N" and an ETA instead of "Unknown" and a warning.
    return ds.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(tf.data.AUTOTUNE)


def augment_image(image, size: int, aug: Augmentation = Augmentation()):
    """Real-world degradations on one uint8 image: flip, crop, colour, JPEG, rescale -> size x size."""
    import tensorflow as tf

    side = image.shape[0]
    image = tf.image.random_flip_left_right(image)
    scale = tf.random.uniform([], aug.crop_scale_min, 1.0)
    crop = tf.cast(scale * side, tf.int32)
    image = tf.image.random_crop(image, tf.stack([crop, crop, 3]))
    image = tf.image.resize(image, (size, size), antialias=True)
    image = tf.image.random_brightness(image, 20.0)
    image = tf.image.random_contrast(image, 0.85, 1.15)
    image = tf.clip_by_value(image, 0.0, 255.0)
    # Some images are degraded the way uploads are: down-and-up scaling, JPEG re-encoding.
    down = tf.cast(tf.cast(size, tf.float32) * tf.random.uniform([], aug.rescale_min, 0.9), tf.int32)
    image = tf.cond(tf.random.uniform([]) < aug.rescale_prob,
                    lambda: tf.image.resize(tf.image.resize(image, (down, down), antialias=True), (size, size)),
                    lambda: image)
    image = tf.cast(tf.round(image), tf.uint8)
    image = tf.cond(tf.random.uniform([]) < aug.jpeg_prob,
                    lambda: tf.image.random_jpeg_quality(image, aug.jpeg_quality_min, 95),
                    lambda: image)
    return tf.ensure_shape(image, (size, size, 3))
