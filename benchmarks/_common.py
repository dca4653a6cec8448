"""Shared pieces of the benchmarks: arguments, generated inputs, timing statistics, reports.

Every benchmark makes its own inputs (no dataset, no network) so that any checkout can
reproduce the numbers; results are printed as a table and saved as JSON for comparison.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(name: str, description: str, model: bool = True) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"bench_{name}.py", description=description)
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke run, not a measurement")
    if model:
        p.add_argument("--model", type=Path, default=REPO / "models" / "default",
                       help="model bundle folder (default: models/default)")
    p.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / f"{name}.json",
                   help="where to write the results (default: benchmarks/results/%(default)s)")
    return p.parse_args()


def require_bundle(folder: Path) -> Path:
    """Fail with a hint instead of a traceback when there is no trained bundle to measure."""
    if not (folder / "manifest.json").is_file():
        sys.exit(f"no complete model bundle at {folder}: train one (python train.py --config "
                 f"configs/default.json) or pass --model DIR")
    return folder.resolve()


# -- inputs --------------------------------------------------------------------------------------
def _portrait() -> Image.Image:
    """matplotlib's sample photo of Grace Hopper, found without importing matplotlib (memory)."""
    from importlib.util import find_spec

    path = Path(find_spec("matplotlib").origin).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    return Image.open(path).convert("RGB")


def photo_jpeg(width: int = 1024, height: int = 768, seed: int = 0, portrait_height: int | None = None,
               with_face: bool = True) -> bytes:
    """A camera-sized JPEG with a real face off-centre on a textured background, as users upload.

    The 512x600 portrait is pasted as it is (shrunk to fit), or scaled to `portrait_height`;
    `with_face=False`: the background alone.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    canvas = np.stack([90 + 80 * xx / width, 110 + 60 * yy / height, 140 - 40 * xx / width], axis=-1)
    canvas += rng.normal(0, 12, canvas.shape).astype(np.float32)
    im = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    if not with_face:
        return encode_jpeg(np.asarray(im))
    face = _portrait()
    if portrait_height:
        face = face.resize((round(face.width * portrait_height / face.height), portrait_height), Image.Resampling.BICUBIC)
    face.thumbnail((height - 100, height - 100))
    im.paste(face, (width - face.width - 120, (height - face.height) // 2))
    return encode_jpeg(np.asarray(im))


def face_crops_jpeg(n: int, size: int = 256, seed: int = 0) -> list[bytes]:
    """`n` distinct face-crop JPEGs framed like the training images (face ~75% of the width).

    Shifted, tinted views of one face: the detector still runs on each, then scores it whole.
    """
    rng = np.random.default_rng(seed)
    face = np.asarray(_portrait(), dtype=np.float32)
    side = 300
    out = []
    for _ in range(n):
        top, left = 67 + rng.integers(-15, 16), 114 + rng.integers(-15, 16)
        view = face[top:top + side, left:left + side] * rng.uniform(0.8, 1.2, 3) + rng.normal(0, 4, (side, side, 3))
        out.append(encode_jpeg(np.clip(view, 0, 255).astype(np.uint8), size))
    return out


def encode_jpeg(rgb: np.ndarray, size: int | None = None, quality: int = 90) -> bytes:
    im = Image.fromarray(rgb)
    if size:
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# -- measuring -----------------------------------------------------------------------------------
def time_calls(fn: Callable[[], object], runs: int, warmup: int = 2) -> np.ndarray:
    """Seconds per call of `fn`, first-call costs (allocation, tracing, caches) excluded."""
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out


def latency(samples: np.ndarray) -> dict:
    ms = np.asarray(samples) * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3), "runs": int(len(ms))}


def fmt_latency(stats: dict) -> str:
    return f"p50 {stats['p50_ms']:8.2f} ms   p95 {stats['p95_ms']:8.2f} ms   (n={stats['runs']})"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def process_memory_mb(pid: int, field: str = "VmRSS") -> float | None:
    """Another process's memory from /proc: VmRSS (now) or VmHWM (its peak); None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


# -- reporting -----------------------------------------------------------------------------------
def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}\n{'-' * len(title)}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def environment(quick: bool) -> dict:
    """What the numbers depend on; load average flags runs disturbed by other work."""
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
            "quick": quick, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_results(path: Path, name: str, quick: bool, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "environment": environment(quick), "results": results}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"\nresults written to {path}")
