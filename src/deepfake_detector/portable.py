"""Train on a machine that has an accelerator but neither the dataset nor TensorFlow.

`train.py` needs TensorFlow (tf.data, TFLite export) and the dataset on disk. A rented GPU box
often has neither, but it has JAX, and Keras 3 runs the same `model.build_model` network on JAX.
Three steps, each a sub-command of `python -m deepfake_detector.portable`:

1. `pack` (here): decode Train and Validation with the serving decoder, resize, re-encode as JPEG
   into chunks of at most `--chunk-mb` (so each fits what a transfer allows), plus the network's
   ImageNet starting weights; with `self_blend_prob`, the face outline of each real Train image
   (the face models run here, not there).
2. `train` (there, `KERAS_BACKEND=jax`): fit `model.build_model(config)` on the packs with the
   config's optimiser, schedule and augmentation (`augment_array`, the NumPy twin of
   `data.augment_image`), keep the weights of the best Validation AUC; writes `model.weights.npz`,
   `history.csv`, `run.json`.
3. `train.py --trained-weights DIR` (here): export, calibrate, evaluate and seal the bundle exactly
   as for a local run, on the original images.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import json
import logging
import os
import platform
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from . import atomic
from .config import TrainConfig
from .errors import DatasetError
from .selfblend import blend_batch

log = logging.getLogger("deepfake_detector.portable")

PACK_QUALITY = 90  # re-encoding at q90 keeps blending/up-sampling detail; q50 augmentation still applies
INIT_WEIGHTS = "init.weights.npz"
WEIGHTS_FILE = "model.weights.npz"  # what `train` hands back to `train.py --trained-weights`


# -- pack (where the data and TensorFlow-free decoding are) ------------------------------------------
def _encode(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def pack(cfg: TrainConfig, out: Path, chunk_mb: float, quality: int = PACK_QUALITY) -> None:
    from .data import decode, find_hulls, resolve_root, scan

    root = resolve_root(cfg.data_dir) if cfg.data_dir else None
    if root is None:
        raise DatasetError("pack needs --data-dir (a folder in the Kaggle layout)")
    out.mkdir(parents=True, exist_ok=True)
    splits = scan(root, cfg.max_per_class, cfg.seed)
    limit = int(chunk_mb * 1e6)
    # Sizes as train.py decodes them: Train at load_size (random crops follow), Validation at image_size.
    for name, size in (("Validation", cfg.image_size), ("Train", cfg.load_size or cfg.image_size)):
        split = decode(splits[name], size, framing=cfg.framing)
        if name == "Train" and cfg.self_blend_prob > 0:
            find_hulls(split)
        order = np.random.default_rng(cfg.seed).permutation(len(split.labels))  # chunks mix sources
        chunk, used, k = [], 0, 0
        for i in order:
            data = _encode(np.asarray(split.images[i]), quality)
            if chunk and used + len(data) > limit:
                _write_chunk(out / f"{name.lower()}-{k:03d}.npz", chunk)
                chunk, used, k = [], 0, k + 1
            hull = split.hulls[i] if split.hulls is not None else None
            chunk.append((data, int(split.labels[i]), split.paths[i].name, hull))
            used += len(data)
        _write_chunk(out / f"{name.lower()}-{k:03d}.npz", chunk)
        log.info("%s: %d images in %d chunk(s) at %d px", name, len(order), k + 1, size)
    atomic.write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))


def _write_chunk(path: Path, chunk: list[tuple[bytes, int, str, np.ndarray | None]]) -> None:
    blobs = [c[0] for c in chunk]
    hulls = {"hulls": np.stack([c[3] for c in chunk])} if chunk[0][3] is not None else {}
    with atomic.atomic_path(path) as staging, open(staging, "wb") as f:
        np.savez(f, jpeg=np.frombuffer(b"".join(blobs), np.uint8),
                 offsets=np.cumsum([0] + [len(b) for b in blobs]), labels=np.asarray([c[1] for c in chunk], np.int8),
                 names=np.asarray([c[2] for c in chunk]), **hulls)


def save_init_weights(cfg: TrainConfig, out: Path) -> None:
    """The starting weights: those of the `init_from` bundle (float32: a warm start keeps its
    precision), else ImageNet's for efficientnet_lite0 (float16, to halve the transfer)."""
    from .model import build_model

    if cfg.init_from:
        from .training import start_from

        model = build_model(dataclasses.replace(cfg, pretrained=False))
        start_from(model, cfg.init_from)
        weights = [w.astype(np.float32) for w in model.get_weights()]
    else:
        weights = [w.astype(np.float16) for w in build_model(cfg).get_weights()]
    with atomic.atomic_path(out / INIT_WEIGHTS) as staging, open(staging, "wb") as f:
        np.savez(f, *weights)


def read_weights(path: Path) -> list[np.ndarray]:
    """A weights list saved with `np.savez(f, *weights)`, in build_model's order."""
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


@dataclasses.dataclass
class Pack:
    """One split, decoded from its chunks."""
    images: np.ndarray  # N x S x S x 3 uint8
    labels: np.ndarray  # float32, 1 = fake
    names: list[str]
    hulls: np.ndarray | None  # N x HULL_POINTS x 2, when packed for self-blending


def read_packs(folder: Path, split: str) -> Pack:
    """All chunks of one split, decoded."""
    files = sorted(folder.glob(f"{split.lower()}-*.npz"))
    if not files:
        raise DatasetError(f"no {split} packs (*.npz) in {folder}")
    images, labels, names, hulls = [], [], [], []
    for file in files:
        with np.load(file) as z:
            jpeg, offsets = z["jpeg"], z["offsets"]
            images += [np.asarray(Image.open(io.BytesIO(jpeg[a:b].tobytes())).convert("RGB"))
                       for a, b in zip(offsets[:-1], offsets[1:])]
            labels.append(z["labels"])
            names += z["names"].tolist()
            hulls.append(z["hulls"] if "hulls" in z.files else None)
    return Pack(np.stack(images), np.concatenate(labels).astype(np.float32), names,
                None if any(h is None for h in hulls) else np.concatenate(hulls))


# -- train (on the accelerator machine) ---------------------------------------------------------------
def augment_array(image: np.ndarray, size: int, aug, rng: np.random.Generator) -> np.ndarray:
    """`data.augment_image` in NumPy/Pillow: flip, crop, colour, rescale, JPEG -> size x size uint8."""
    side = image.shape[0]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    crop = int(rng.uniform(aug.crop_scale_min, 1.0) * side)
    y, x = rng.integers(0, side - crop + 1, size=2)
    im = Image.fromarray(np.ascontiguousarray(image[y:y + crop, x:x + crop]))
    pixels = np.asarray(im.resize((size, size), Image.Resampling.BILINEAR), np.float32)
    pixels = pixels + rng.uniform(-20.0, 20.0)
    mean = pixels.mean(axis=(0, 1), keepdims=True)  # per channel, as tf.image.adjust_contrast
    pixels = np.clip((pixels - mean) * rng.uniform(0.85, 1.15) + mean, 0, 255)
    im = Image.fromarray(np.round(pixels).astype(np.uint8))
    if rng.random() < aug.rescale_prob:
        down = int(size * rng.uniform(aug.rescale_min, 0.9))
        im = im.resize((down, down), Image.Resampling.BILINEAR).resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < aug.jpeg_prob:
        im = Image.open(io.BytesIO(_encode(np.asarray(im), int(rng.integers(aug.jpeg_quality_min, 96)))))
    return np.asarray(im.convert("RGB"), np.uint8)


_WORKER: dict = {}


def _init_worker(train: Pack, size, aug, self_blend_prob, seed):
    _WORKER.update(train=train, size=size, aug=aug, self_blend_prob=self_blend_prob, seed=seed)


def _make_batch(step: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, train = _WORKER, _WORKER["train"]
    rng = np.random.default_rng((w["seed"], step))  # a batch's augmentation depends on its step only
    hulls = train.hulls[idx] if train.hulls is not None else None
    images, labels = blend_batch(train.images[idx], train.labels[idx], hulls, w["self_blend_prob"], rng)
    return np.stack([augment_array(image, w["size"], w["aug"], rng) for image in images]), labels.reshape(-1, 1)


def _batches(pool, epoch_idx: np.ndarray, epochs: int, batch: int, seed: int, ahead: int,
             per_epoch: int | None = None, first_epoch: int = 0):
    """Augmented batches of the run from `first_epoch` on, built `ahead` at a time by the pool
    (bounded memory). A fresh shuffle each epoch (the first `per_epoch` of it), whole batches only;
    a resumed run gets the batches the uninterrupted run would have had."""
    rng = np.random.default_rng(seed)
    steps = min(len(epoch_idx), per_epoch or len(epoch_idx)) // batch
    orders = [rng.permutation(epoch_idx) for _ in range(epochs)]
    plan = ((e * steps + s, orders[e][s * batch:(s + 1) * batch]) for e in range(first_epoch, epochs)
            for s in range(steps))
    pending = collections.deque()
    for step, idx in plan:
        pending.append(pool.apply_async(_make_batch, (step, idx)))
        if len(pending) >= ahead:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def train(cfg: TrainConfig, packs: Path, out: Path, workers: int, time_budget_s: float | None = None,
          probe_steps: int = 0, resume: bool = False) -> dict:
    """Fit on the packs; write the best-Validation-AUC weights. `probe_steps` > 0: only time that many steps.

    Every epoch leaves a checkpoint in `out/checkpoint`; `resume` continues from it."""
    from .data import Augmentation, Split, epoch_indices

    started = time.time()
    train_pack, val = read_packs(packs, "Train"), read_packs(packs, "Validation")
    log.info("packs: Train %d images at %d px, Validation %d at %d px (%.0f s)", len(train_pack.labels),
             train_pack.images.shape[1], len(val.labels), val.images.shape[1], time.time() - started)
    if cfg.self_blend_prob > 0 and train_pack.hulls is None:
        raise DatasetError("the config asks for self-blended fakes but the packs have no face outlines: "
                           "pack again with this config")
    split = Split("Train", [Path(n) for n in train_pack.names], train_pack.labels.astype(np.int32))
    epoch_idx = epoch_indices(split, cfg.source_balance)
    steps = min(len(epoch_idx), cfg.epoch_images or len(epoch_idx)) // cfg.batch_size
    aug = Augmentation.from_config(cfg) if cfg.augment else Augmentation(1.0, 0.0, 0.0, cfg.jpeg_quality_min)
    # Fork the augmentation workers before Keras starts the backend's threads.
    pool = get_context("fork").Pool(workers, _init_worker,
                                    (train_pack, cfg.image_size, aug, cfg.self_blend_prob, cfg.seed))
    try:
        model = _compiled_model(cfg, packs, steps)
        if probe_steps:  # a timing run leaves any checkpoint of a stopped run alone
            return _probe(model, _batches(pool, epoch_idx, cfg.epochs, cfg.batch_size, cfg.seed, ahead=4 * workers,
                                          per_epoch=cfg.epoch_images), probe_steps, cfg.batch_size)
        checkpoint = _Checkpoint(out / "checkpoint", cfg)
        first_epoch = checkpoint.restore(model) if resume else checkpoint.clear()
        batches = _batches(pool, epoch_idx, cfg.epochs, cfg.batch_size, cfg.seed, ahead=4 * workers,
                           per_epoch=cfg.epoch_images, first_epoch=first_epoch)
        if first_epoch >= cfg.epochs:
            log.info("the checkpoint is of the last epoch: nothing left to train")
        else:
            model.fit(batches, steps_per_epoch=steps, epochs=cfg.epochs, initial_epoch=first_epoch,
                      validation_data=(val.images, val.labels.reshape(-1, 1)), validation_batch_size=256, verbose=0,
                      callbacks=[_csv_logger(out / "history.csv", append=first_epoch > 0), checkpoint.callback(),
                                 _epoch_line(cfg.epochs, steps * cfg.batch_size,
                                             started + time_budget_s if time_budget_s else None)])
    finally:
        pool.terminate()
    best = checkpoint.best
    # Weights only, float32, in build_model's order: the optimizer state would triple the file.
    with atomic.atomic_path(out / WEIGHTS_FILE) as staging, open(staging, "wb") as f:
        np.savez(f, *best.weights)
    history = best.history
    run = {"train_seconds": round(time.time() - started, 1), "epochs_run": len(history),
           "best_epoch": best.epoch + 1, "best_val_auc": best.auc,
           "images_per_epoch": int(steps * cfg.batch_size), "environment": _environment()}
    atomic.write_text(out / "run.json", json.dumps(run, indent=2))
    atomic.write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))
    return run


def _compiled_model(cfg: TrainConfig, packs: Path, steps: int):
    import keras

    from .model import build_model, compile_model

    keras.utils.set_random_seed(cfg.seed)
    if any(d.platform != "cpu" for d in _devices()):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")  # variables stay float32
    model = compile_model(build_model(dataclasses.replace(cfg, pretrained=False)), cfg, steps)
    if cfg.use_pretrained() or cfg.init_from:
        init = packs / INIT_WEIGHTS
        if not init.exists():
            raise DatasetError(f"{init} is missing: `pack` writes the starting weights next to the data")
        model.set_weights([w.astype(np.float32) for w in read_weights(init)])
    return model


def _probe(model, batches, probe_steps: int, batch_size: int) -> dict:
    """Throughput of the train step after compilation, to choose `epochs` for a time budget."""
    t0 = time.time()
    x, y = next(batches)
    model.train_on_batch(x, y)
    compiled = time.time() - t0
    t0 = time.time()
    for _ in range(probe_steps):
        x, y = next(batches)
        model.train_on_batch(x, y)
    rate = probe_steps * batch_size / (time.time() - t0)
    log.info("probe: first step (compilation) %.0f s, then %.0f images/s", compiled, rate)
    return {"compile_seconds": round(compiled, 1), "images_per_second": round(rate, 1)}


def _csv_logger(path: Path, append: bool = False):
    import keras

    path.parent.mkdir(parents=True, exist_ok=True)
    return keras.callbacks.CSVLogger(str(path), append=append)


class _BestWeights:
    """The weights of the epoch with the best Validation AUC so far."""

    def __init__(self):
        self.auc, self.epoch, self.weights, self.history = -1.0, -1, None, []


class _Checkpoint:
    """After each epoch, on disk: the model's and the optimizer's variables (the step count, and so
    the schedule, included), the history and the best epoch's weights, so that a run stopped at
    any point resumes from its last finished epoch."""

    STATE, BEST, META = "state.npz", "best.weights.npz", "meta.json"

    def __init__(self, folder: Path, cfg: TrainConfig):
        self.folder, self.cfg, self.best = folder, cfg, _BestWeights()

    def clear(self) -> int:
        for name in (self.STATE, self.BEST, self.META):
            (self.folder / name).unlink(missing_ok=True)
        return 0

    def restore(self, model) -> int:
        """Load the last checkpoint into `model`; returns the epoch to continue from (0: none)."""
        meta_file = self.folder / self.META
        if not meta_file.is_file():
            log.info("no checkpoint in %s: starting from the first epoch", self.folder)
            return 0
        meta = json.loads(meta_file.read_text())
        differ = sorted(k for k, v in self.cfg.to_dict().items() if meta["config"].get(k) != v and k != "epochs")
        if differ:
            raise DatasetError(f"the checkpoint in {self.folder} is of a run with other settings ({', '.join(differ)}); "
                               "start afresh without --resume")
        with np.load(self.folder / self.STATE) as z:
            model.set_weights([z[f"model_{i}"] for i in range(meta["n_model"])])
            optimizer = model.optimizer
            optimizer.build(model.trainable_variables)
            for i, variable in enumerate(optimizer.variables):
                variable.assign(z[f"optimizer_{i}"])
        self.best.auc, self.best.epoch, self.best.history = meta["best_auc"], meta["best_epoch"], meta["history"]
        self.best.weights = read_weights(self.folder / self.BEST)
        log.info("resuming after epoch %d (best Validation AUC %.4f at epoch %d)", meta["epoch"],
                 self.best.auc, self.best.epoch + 1)
        return int(meta["epoch"])

    def callback(self):
        import keras

        checkpoint = self

        class Save(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                checkpoint.save(self.model, epoch, {k: float(v) for k, v in logs.items()})

        return Save()

    def save(self, model, epoch: int, logs: dict) -> None:
        best = self.best
        best.history.append(logs)
        self.folder.mkdir(parents=True, exist_ok=True)
        if logs["val_auc"] > best.auc:
            best.auc, best.epoch = logs["val_auc"], epoch
            best.weights = [np.asarray(w, np.float32) for w in model.get_weights()]
            with atomic.atomic_path(self.folder / self.BEST) as staging, open(staging, "wb") as f:
                np.savez(f, *best.weights)
        model_vars = model.get_weights()
        optimizer_vars = {f"optimizer_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)}
        with atomic.atomic_path(self.folder / self.STATE) as staging, open(staging, "wb") as f:
            np.savez(f, **{f"model_{i}": w for i, w in enumerate(model_vars)}, **optimizer_vars)
        # The meta file is written last: it names a state that is complete on disk.
        atomic.write_text(self.folder / self.META, json.dumps(
            {"epoch": epoch + 1, "n_model": len(model_vars), "best_auc": best.auc, "best_epoch": best.epoch,
             "history": best.history, "config": self.cfg.to_dict()}))


def _epoch_line(epochs: int, images: int, deadline: float | None):
    """One log line per epoch with throughput; stops after the epoch that would overrun the budget."""
    import keras

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.time()

        def on_epoch_end(self, epoch, logs=None):
            took = time.time() - self.t0
            log.info("epoch %d/%d: loss %.4f auc %.4f val_loss %.4f val_auc %.4f (%.0f s, %.0f img/s)",
                     epoch + 1, epochs, logs["loss"], logs["auc"], logs["val_loss"], logs["val_auc"],
                     took, images / took)
            if deadline and time.time() + took > deadline:
                log.warning("time budget reached after epoch %d of %d: keeping the best weights so far",
                            epoch + 1, epochs)
                self.model.stop_training = True

    return EpochLine()


def _devices():
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.devices()
    return []


def _environment() -> dict:
    import keras

    env = {"python": platform.python_version(), "keras": keras.__version__, "backend": keras.backend.backend(),
           "numpy": np.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
           "devices": [str(getattr(d, "device_kind", d)) for d in _devices()]}
    if env["backend"] == "jax":
        import jax

        env["jax"] = jax.__version__
    return env


# -- command line -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    p = argparse.ArgumentParser(prog="python -m deepfake_detector.portable", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="decode + re-encode Train/Validation into transferable chunks")
    pk.add_argument("--config", required=True)
    pk.add_argument("--data-dir", required=True)
    pk.add_argument("--out", required=True, help="folder for the chunks and starting weights")
    pk.add_argument("--chunk-mb", type=float, default=38.0, help="largest chunk, MB")
    tr = sub.add_parser("train", help="fit on the packs (any Keras backend; JAX on a GPU box)")
    tr.add_argument("--config", required=True)
    tr.add_argument("--packs", required=True)
    tr.add_argument("--out", required=True)
    tr.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    tr.add_argument("--time-budget-s", type=float, help="stop after the epoch that would overrun this")
    tr.add_argument("--epochs", type=int, help="override the config's epochs")
    tr.add_argument("--resume", action="store_true",
                    help="continue from the checkpoint a stopped run left in OUT/checkpoint")
    tr.add_argument("--probe-steps", type=int, default=0,
                    help="only time this many training steps (images/s), to choose --epochs for a budget")
    args = p.parse_args(argv)
    cfg = TrainConfig.from_json(args.config)
    try:
        if args.command == "pack":
            cfg.data_dir = args.data_dir
            pack(cfg, Path(args.out), args.chunk_mb)
            if cfg.use_pretrained() or cfg.init_from:
                save_init_weights(cfg, Path(args.out))
        else:
            if args.epochs:
                cfg.epochs = args.epochs
            print(json.dumps(train(cfg, Path(args.packs), Path(args.out), args.workers, args.time_budget_s,
                                   args.probe_steps, args.resume)))
    except DatasetError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
