"""Can the input pipeline keep the training step fed? tf.data images/s vs train-step images/s.

    python benchmarks/bench_pipeline.py [--quick] [--json OUT]

The pipeline (`make_tf_dataset` over an in-memory Split, with and without augmentation) and the
train step (`train_on_batch` on fixed tensors, so no input cost) are timed separately; training
is input-bound unless the pipeline is several times faster than the step (target: >= 3x),
because during training both share the same CPU cores.
Models are built fresh from configs/default.json (and the seed architecture at the same size).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import _common as bench  # first: puts src/ on sys.path

from deepfake_detector.config import TrainConfig
from deepfake_detector.data import Augmentation, Split, make_tf_dataset
from deepfake_detector.model import build_model, compile_model

TARGET_RATIO = 3.0


def synthetic_split(n: int, size: int, seed: int = 0) -> Split:
    """Blocky colour fields plus noise: JPEG-augmentation cost like photos, built in uint8 (memory)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 200, (n, size // 8, size // 8, 3), dtype=np.uint8)
    images = np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)
    images += rng.integers(0, 56, images.shape, dtype=np.uint8)
    labels = (np.arange(n) % 2).astype(np.int32)
    return Split("Train", [Path(f"syn_{i:05d}.jpg") for i in range(n)], labels, images)


def pipeline_rate(split: Split, cfg: TrainConfig, augment: bool, warmup: int = 2) -> dict:
    """Images/s over one epoch of the training dataset, first batches (start-up, buffers) excluded."""
    ds = make_tf_dataset(split, cfg.batch_size, training=True, seed=0, out_size=cfg.image_size,
                         augment=Augmentation.from_config(cfg) if augment else None)
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    images, start = 0, time.perf_counter()
    for x, _ in it:
        images += int(x.shape[0])
    seconds = time.perf_counter() - start
    return {"images": images, "seconds": round(seconds, 3), "images_per_s": round(images / seconds, 1)}


def step_rate(cfg: TrainConfig, steps: int, warmup: int) -> dict:
    """Training steps on fixed tensors: the model's speed with the input cost taken away."""
    model = compile_model(build_model(cfg), cfg, steps_per_epoch=100)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (cfg.batch_size, cfg.image_size, cfg.image_size, 3)).astype(np.float32)
    y = (np.arange(cfg.batch_size) % 2).astype(np.float32).reshape(-1, 1)
    times = bench.time_calls(lambda: model.train_on_batch(x, y), steps, warmup=warmup)  # 1st: tracing
    per_step = float(np.median(times))
    return {"architecture": cfg.architecture, "width": cfg.width, "image_size": cfg.image_size,
            "batch_size": cfg.batch_size, "parameters": int(model.count_params()),
            "step": bench.latency(times), "images_per_s": round(cfg.batch_size / per_step, 1)}


def main() -> None:
    args = bench.parse_args("pipeline", __doc__.splitlines()[0], model=False)
    cfg = TrainConfig.from_json(bench.REPO / "configs" / "default.json")
    split = synthetic_split(512 if args.quick else 2048, cfg.load_size or cfg.image_size)  # as training decodes
    augmented = pipeline_rate(split, cfg, augment=True)
    plain = pipeline_rate(split, cfg, augment=False)
    warmup = 1 if args.quick else 3
    default = step_rate(cfg, 6 if args.quick else 50, warmup)
    seed_cfg = TrainConfig(architecture="seed", image_size=cfg.image_size, batch_size=cfg.batch_size)
    seed = step_rate(seed_cfg, 2 if args.quick else 20, warmup)
    ratios = {name: round(augmented["images_per_s"] / step["images_per_s"], 2)
              for name, step in ((cfg.architecture, default), ("seed", seed))}
    results = {"config": "configs/default.json", "split_images": len(split.labels),
               "pipeline_augmented": augmented, "pipeline_plain": plain,
               f"train_step_{cfg.architecture}": default, "train_step_seed": seed,
               "ratio_augmented_pipeline_over_step": ratios, "target_ratio": TARGET_RATIO}

    def verdict(ratio: float) -> str:
        return f"{ratio:.1f}x  ({'ok' if ratio >= TARGET_RATIO else 'BELOW'} target {TARGET_RATIO:.0f}x)"

    def step(r: dict) -> str:
        return f"{r['images_per_s']:8.1f} images/s   step {bench.fmt_latency(r['step'])}"

    bench.print_table(f"Input pipeline vs training step (batch {cfg.batch_size}, {cfg.image_size}px, "
                      f"{len(split.labels)} images)", [
        ("pipeline, augmented", f"{augmented['images_per_s']:8.1f} images/s"),
        ("pipeline, no augmentation", f"{plain['images_per_s']:8.1f} images/s"),
        (f"train step, {cfg.architecture}", step(default)),
        ("train step, seed", step(seed)),
        (f"augmented pipeline / {cfg.architecture} step", verdict(ratios[cfg.architecture])),
        ("augmented pipeline / seed step", verdict(ratios["seed"])),
    ])
    bench.write_results(args.json, "pipeline", args.quick, results)


if __name__ == "__main__":
    main()
