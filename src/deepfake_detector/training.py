"""Training run: data -> model -> fit -> export -> evaluate -> bundle (-> Hub).

`python train.py [--config FILE] [--data-dir PATH] [...]` lands here. Each step logs one line
per milestone and one per epoch (metrics, time, time left; a terminal also gets Keras' progress
bar); the finished bundle is moved into place only when every file is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from .config import TrainConfig
from .errors import DetectorError

log = logging.getLogger("deepfake_detector.train")


# -- set-up --------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0],
                                epilog="Flags override the values of --config; defaults shown are those "
                                       "without a config file (configs/default.json is the shipped model's).")
    p.add_argument("--config", help="JSON file of settings (see configs/); flags override it")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run of the same --out from its last finished epoch")
    p.add_argument("--cache-dir", help="keep decoded images here (memory-mapped) and reuse them")
    p.add_argument("--no-robustness", action="store_true", help="skip the JPEG/half-size Test passes")
    p.add_argument("--trained-weights", metavar="DIR",
                   help="skip fitting: seal a bundle from the output of `python -m deepfake_detector.portable "
                        "train` (weights trained elsewhere with this same config)")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name == "extra":
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = f"{f.metadata['help']} (default: {default})"
        if isinstance(default, bool) or f.name == "pretrained":
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            # Annotations are strings ("int | None"): their first type names the flag's type.
            kind = {"int": int, "float": float}.get(str(f.type).split("|")[0].strip(), str)
            p.add_argument(flag, dest=f.name, type=kind, default=None, choices=f.metadata["choices"],
                           help=help_text)
    args = p.parse_args(argv)
    cfg = TrainConfig.from_json(args.config) if args.config else TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(cfg, f.name, value)
    return cfg, args


def set_seed(seed: int) -> None:
    import keras

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    keras.utils.set_random_seed(seed)


def make_strategy(name: str):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise DetectorError("--strategy multiworker needs the TF_CONFIG environment variable "
                                "describing the cluster (see the README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise DetectorError(f"unknown --strategy {name!r}; choose default, mirrored or multiworker")


# -- steps -----------------------------------------------------------------------------------------
def fit(cfg: TrainConfig, splits, work: Path, resume: bool):
    import keras

    from .data import Augmentation, epoch_indices, make_tf_dataset
    from .model import build_model, compile_model

    strategy = make_strategy(cfg.strategy)
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):  # float16 compute on GPUs; the head stays float32
        keras.mixed_precision.set_global_policy("mixed_float16")
    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.batch_size * replicas
    train_idx = epoch_indices(splits["Train"], cfg.source_balance)
    if len(train_idx) > len(splits["Train"].labels):
        log.info("source balance %.2f: %d Train images per epoch (from %d)", cfg.source_balance,
                 len(train_idx), len(splits["Train"].labels))
    augmentation = Augmentation.from_config(cfg) if cfg.augment else None
    train_ds = make_tf_dataset(splits["Train"], global_batch, training=True, seed=cfg.seed, augment=augmentation,
                               indices=train_idx, out_size=cfg.image_size, self_blend_prob=cfg.self_blend_prob,
                               per_epoch=cfg.epoch_images)
    val_ds = make_tf_dataset(splits["Validation"], global_batch, training=False, seed=cfg.seed)
    steps = int(np.ceil(min(len(train_idx), cfg.epoch_images or len(train_idx)) / global_batch))
    with strategy.scope():
        model = compile_model(build_model(cfg), cfg, steps)
        if cfg.init_from:
            start_from(model, cfg.init_from)
    log.info("model %s: %d parameters; %d replica(s), global batch %d", model.name, model.count_params(),
             replicas, global_batch)

    history_file = work / "history.csv"
    backup = work / "backup"
    if not resume:
        shutil.rmtree(backup, ignore_errors=True)
        history_file.unlink(missing_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience, restore_best_weights=True,
                                      verbose=1),
        keras.callbacks.CSVLogger(str(history_file), append=resume),
        keras.callbacks.ModelCheckpoint(str(work / "best.weights.h5"), monitor="val_loss",
                                        save_best_only=True, save_weights_only=True),
    ]
    callbacks.append(_epoch_log_callback()(cfg.epochs))
    start = time.time()
    # A terminal gets Keras' progress bar within the epoch; logs get only EpochLog's line per epoch.
    model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, callbacks=callbacks, shuffle=False,
              verbose=1 if sys.stdout.isatty() else 0)
    # EarlyStopping restores best weights only when it stops early; the checkpoint covers the rest,
    # including a resumed run whose best epoch happened before the interruption.
    if (work / "best.weights.h5").exists():
        model.load_weights(str(work / "best.weights.h5"))
    if keras.mixed_precision.global_policy().name != "float32":
        # Export and serving run in float32 on CPUs: rebuild the network in float32, same weights.
        keras.mixed_precision.set_global_policy("float32")
        float_model = build_model(dataclasses.replace(cfg, pretrained=False))
        float_model.set_weights(model.get_weights())
        model = float_model
    return model, time.time() - start


def _epoch_log_callback():
    import keras

    class EpochLog(keras.callbacks.Callback):
        """One line per epoch: metrics, time taken and the estimated time left."""

        def __init__(self, epochs: int):
            super().__init__()
            self.epochs = epochs

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            took = time.time() - self.started
            shown = " ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate")
            log.info("epoch %d/%d: %s (%.1f min; about %.0f min left at most)", epoch + 1, self.epochs, shown,
                     took / 60, took * (self.epochs - epoch - 1) / 60)

    return EpochLog


def start_from(model, folder: str) -> None:
    """Warm start: copy the weights of an earlier bundle's model (architectures must match)."""
    from .bundle import load_keras_model

    earlier = load_keras_model(folder)
    try:
        model.set_weights(earlier.get_weights())
    except ValueError as exc:
        raise DetectorError(f"--init-from {folder}: its model does not match this run's architecture "
                            f"settings ({exc})") from None
    log.info("starting from the weights of %s", folder)


# Settings that do not change what a run learns: they may differ between the portable run and sealing.
_PLACE_SETTINGS = {"data_dir", "download_dir", "out", "run_name", "push_to_hub", "private", "strategy",
                   "verdict_min_precision", "max_false_alarm", "unfamiliar_keep"}


def adopt_trained(cfg: TrainConfig, folder: Path, work: Path):
    """The model of a portable run (`portable.py train`), checked against this run's config."""
    from .model import build_model
    from .portable import WEIGHTS_FILE, read_weights

    try:
        trained_cfg = json.loads((folder / "config.json").read_text())
        trained_run = json.loads((folder / "run.json").read_text())
        weights = read_weights(folder / WEIGHTS_FILE)
    except (OSError, ValueError) as exc:
        raise DetectorError(f"--trained-weights {folder}: not the output of a finished portable run "
                            f"({type(exc).__name__}: {exc})") from None
    ours = cfg.to_dict()
    differ = sorted(k for k in ours if k not in _PLACE_SETTINGS and trained_cfg.get(k) != ours[k])
    if differ:
        raise DetectorError(f"--trained-weights {folder} was trained with other settings: "
                            + ", ".join(f"{k}={trained_cfg.get(k)!r} (here {ours[k]!r})" for k in differ))
    model = build_model(dataclasses.replace(cfg, pretrained=False))
    try:
        model.set_weights(weights)
    except ValueError as exc:
        raise DetectorError(f"--trained-weights {folder}: weights do not fit this architecture ({exc})") from None
    shutil.copyfile(folder / "history.csv", work / "history.csv")
    log.info("adopted the weights of %s (best epoch %s of %s, trained on %s)", folder, trained_run["best_epoch"],
             trained_run["epochs_run"], trained_run["environment"].get("devices"))
    return model, trained_run


def copy_examples(cfg: TrainConfig, splits, work: Path) -> None:
    """Example images for the UI: from `extra.examples_dir` if set, else from the Test split."""
    from PIL import Image

    ex_dir = work / "examples"
    shutil.rmtree(ex_dir, ignore_errors=True)
    ex_dir.mkdir()
    chosen: list[tuple[Path, str]] = []
    source_dir = cfg.extra.get("examples_dir")
    if source_dir:
        for label in ("real", "fake"):
            files = sorted(p for p in (Path(source_dir) / label.capitalize()).glob("*") if p.is_file())
            chosen += [(p, label) for p in files[: cfg.examples_per_class]]
    else:
        test = splits["Test"]
        for label_id, label in ((0, "real"), (1, "fake")):
            idx = np.flatnonzero(test.labels == label_id)
            chosen += [(test.paths[i], label) for i in idx[: cfg.examples_per_class]]
    for n, (path, label) in enumerate(chosen):
        im = Image.open(path).convert("RGB")
        im.thumbnail((512, 512))
        im.save(ex_dir / f"{label}_{n:02d}.jpg", quality=92)


def environment_info() -> dict:
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
        "numpy": np.__version__, "deepfake_detector": __version__, "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


# -- the run ---------------------------------------------------------------------------------------
def run(cfg: TrainConfig, resume: bool = False, cache_dir: str | None = None, robustness: bool = True,
        argv: list[str] | None = None, trained_weights: str | None = None) -> Path:
    from . import bundle
    from .data import decode, download_kaggle, find_hulls, scan
    from .evaluation import seal
    from .export import export_tflite
    from .model import count_flops

    started = time.time()
    data_root = Path(cfg.data_dir) if cfg.data_dir else download_kaggle(cfg.download_dir)
    cfg.run_name = cfg.run_name or f"{cfg.architecture}-{cfg.image_size}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(cfg.out or Path("artifacts") / cfg.run_name)
    work = out.with_name(out.name + ".partial")
    if work.exists() and not resume:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)

    splits = scan(data_root, cfg.max_per_class, cfg.seed)
    log.info("dataset %s: %s", data_root, {s: sp.counts() for s, sp in splits.items()})
    fitted_here = trained_weights is None
    if fitted_here:
        decode(splits["Train"], cfg.load_size or cfg.image_size, cache_dir=cache_dir, framing=cfg.framing)
        if cfg.self_blend_prob > 0:
            find_hulls(splits["Train"], cache_dir)
    decode(splits["Validation"], cfg.image_size, cache_dir=cache_dir, framing=cfg.framing)
    skipped = {name: splits[name].skipped for name in ("Train", "Validation") if splits[name].images is not None}

    set_seed(cfg.seed)
    if fitted_here:
        model, train_seconds = fit(cfg, splits, work, resume)
        trained = {"environment": environment_info()}
    else:
        model, trained = adopt_trained(cfg, Path(trained_weights), work)
        train_seconds = trained["train_seconds"]
    export_check = export_tflite(model, cfg.image_size, work, splits["Validation"].images[:16])
    history = bundle.read_history(work / "history.csv")

    config = cfg.to_dict()
    config.update({
        "format": bundle.FORMAT,
        "command": "python train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "dataset": {"path": str(data_root), "counts": {s: sp.counts() for s, sp in splits.items()},
                    "skipped_unreadable": {k: len(v) for k, v in skipped.items()}},
        "environment": trained["environment"],
        "train_seconds": round(train_seconds, 1),
        "epochs_run": len(history.get("loss", [])),
    })
    copy_examples(cfg, splits, work)
    (work / "best.weights.h5").unlink(missing_ok=True)
    if not fitted_here:  # where the weights were fitted vs. where they were exported and evaluated
        config["trained_elsewhere"] = {k: v for k, v in trained.items() if k != "environment"}
        config["sealing_environment"] = environment_info()
    config["total_seconds"] = round(time.time() - started, 1)  # up to evaluation
    bundle.write_json(work / "config.json", config)
    model_facts = {"parameters": int(model.count_params()), "flops_per_image": count_flops(model),
                   "tflite_bytes": (work / "model.tflite").stat().st_size, **export_check}
    best_epoch = trained.get("best_epoch")  # a portable run keeps its best Validation AUC; fit() its lowest loss
    if best_epoch is None and history.get("val_loss"):
        best_epoch = int(np.argmin(history["val_loss"]) + 1)
    metrics = seal(work, out, splits, robustness, keep={"model": model_facts, "best_epoch": best_epoch})
    t = metrics["test"]
    log.info("bundle written to %s: test accuracy %.3f, ROC AUC %s, threshold %.3f", out, t["accuracy"],
             f"{t['roc_auc']:.3f}" if t["roc_auc"] is not None else "n/a", metrics["serving"]["threshold"])
    if cfg.push_to_hub:
        from .hub import push_bundle

        url = push_bundle(out, cfg.push_to_hub, private=cfg.private)
        log.info("pushed to the Hub: %s", url)
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg, args = parse_args(argv)
        if args.resume and not (cfg.out or cfg.run_name):
            raise DetectorError("--resume needs the --out (or --run-name) of the interrupted run")
        missing = [name for name in ("tensorflow", "keras", "sklearn") if importlib.util.find_spec(name) is None]
        if missing:  # a serving-only install (requirements.txt)
            raise DetectorError(f"training needs {', '.join(missing)}: pip install -r requirements-train.txt")
        run(cfg, resume=args.resume, cache_dir=args.cache_dir, robustness=not args.no_robustness, argv=argv,
            trained_weights=args.trained_weights)
    except DetectorError as exc:
        log.error("%s", exc)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted: re-run with --resume and the same --out to continue")
        return 130
    return 0
