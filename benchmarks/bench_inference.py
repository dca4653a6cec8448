"""Serving cost of the bundled model: latency, throughput, size, memory; seed CNN for comparison.

    python benchmarks/bench_inference.py [--quick] [--model DIR] [--json OUT]

Measures what a user waits for (decode -> find faces -> frame -> resize -> model -> verdict on a
1024x768 photo), what reading the photo's provenance adds to that (declaring nothing, and carrying
a signed C2PA manifest), BlazeFace beside the OpenCV Haar cascade the project used before (same photo,
same run), the model call alone, batch throughput on face crops, the seed CNN and the previous
compact CNN (random weights: cost does not depend on them), and why serving uses TFLite rather
than Keras. TensorFlow is imported only after the serving numbers and peak RSS are taken, so
they reflect the TensorFlow-free serving process.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _common as bench  # first: puts src/ on sys.path

from deepfake_detector.faces import detect_faces, frame_faces
from deepfake_detector.imaging import load_image, resize_square
from deepfake_detector.inference import Predictor, TFLiteRunner
from deepfake_detector.provenance import read as read_provenance


def haar_largest_face(rgb: np.ndarray):
    """The previous detector (OpenCV Haar cascade on a 320-pixel copy), for comparison only."""
    import cv2

    if not hasattr(haar_largest_face, "cascade"):
        haar_largest_face.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    h, w = rgb.shape[:2]
    scale = min(1.0, 320 / max(h, w))
    gray = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (int(w * scale), int(h * scale)),
                      interpolation=cv2.INTER_AREA)
    side = max(20, int(min(gray.shape) * 0.12))
    return haar_largest_face.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))


def serving(predictor: Predictor, photo: bytes, crops: list[bytes], quick: bool) -> tuple[dict, np.ndarray]:
    """The served path exactly as the app calls it; returns results and one prepared model input."""
    first = predictor.predict(photo)
    if first.error or not first.face_found:
        raise SystemExit(f"the generated photo was not scored through the face-crop path: {first}")
    model_input = predictor.prepare(photo).inputs[0]
    batch = list(predictor.predict_many(crops[:32]))  # warm-up, and a check of the inputs
    errors = [p.error for p in batch if p.error]
    if errors:
        raise SystemExit(f"predict_many failed on a generated crop: {errors[0]}")

    e2e = bench.time_calls(lambda: predictor.predict(photo), 10 if quick else 200)
    explain = bench.time_calls(lambda: predictor.predict(photo, explain=True), 3 if quick else 50, warmup=1)
    x = model_input[None]
    call = bench.time_calls(lambda: predictor.raw_scores(x), 50 if quick else 1000, warmup=5)
    # Where the end-to-end time goes, stage by stage, on the same photo.
    rgb = load_image(photo).rgb
    face = frame_faces(rgb).regions[0].rgb
    no_face = load_image(bench.photo_jpeg(with_face=False)).rgb
    stage_runs = 5 if quick else 100
    stages = {"decode": bench.latency(bench.time_calls(lambda: load_image(photo), stage_runs)),
              "face_detection": bench.latency(bench.time_calls(lambda: detect_faces(rgb), stage_runs)),
              "face_detection_haar_before": bench.latency(bench.time_calls(lambda: haar_largest_face(rgb),
                                                                           stage_runs)),
              "frame_faces": bench.latency(bench.time_calls(lambda: frame_faces(rgb), stage_runs)),
              # No face found: the tight-crop retry and the tiled pass for small faces run too.
              "frame_faces_no_face": bench.latency(bench.time_calls(lambda: frame_faces(no_face), stage_runs)),
              "resize": bench.latency(bench.time_calls(lambda: resize_square(face, predictor.image_size),
                                                       stage_runs))}
    return {
        "photo": {"size": "1024x768", "jpeg_bytes": len(photo), "face_found": first.face_found},
        "end_to_end": bench.latency(e2e),
        "end_to_end_explain": bench.latency(explain),
        "model_call": bench.latency(call),
        "stages": stages,
        "predict_many": {"images": len(crops), "image_size": "256x256 JPEG", "batch_size": 32,
                         "images_per_s": throughput(predictor, crops, True, quick),
                         "images_per_s_no_face_crop": throughput(predictor, crops, False, quick)},
        "peak_rss_mb_serving": bench.peak_rss_mb(),
    }, model_input


def provenance_cost(photo: bytes, quick: bool) -> dict:
    """What `predict` adds per image to read the file's provenance: for the photo as it is (it declares
    nothing: target <= 5 ms) and signed with a C2PA manifest (a throwaway certificate, as in the tests)."""
    sys.path.insert(0, str(bench.REPO / "tests"))
    import provenance_files

    signed = provenance_files.sign(photo)
    if read_provenance(signed)["source"] != "c2pa":
        raise SystemExit("the signed photo's manifest was not read")
    runs = 20 if quick else 200
    return {"declares_nothing": bench.latency(bench.time_calls(lambda: read_provenance(photo), runs)),
            "signed_c2pa": bench.latency(bench.time_calls(lambda: read_provenance(signed), runs)),
            "signed_bytes": len(signed)}


def throughput(predictor: Predictor, sources: list[bytes], crop: bool, quick: bool) -> float:
    """Median images/s of `predict_many` over all of `sources`."""
    rates = []
    for _ in range(1 if quick else 3):
        start = time.perf_counter()
        n = sum(1 for _ in predictor.predict_many(sources, crop=crop, batch_size=32))
        rates.append(n / (time.perf_counter() - start))
    return round(float(np.median(rates)), 1)


def model_facts(folder: Path) -> dict:
    """Size/params/FLOPs of the served model, from metrics.json when training recorded them."""
    recorded = json.loads((folder / "metrics.json").read_text()).get("model", {})
    params, flops = recorded.get("parameters"), recorded.get("flops_per_image")
    if params is None or flops is None:
        from deepfake_detector.bundle import load_keras_model
        from deepfake_detector.model import count_flops

        model = load_keras_model(folder)
        params, flops = model.count_params(), count_flops(model)
    tflite = folder / "model.tflite"
    return {"parameters": int(params), "flops_per_image": int(flops),
            "tflite_bytes": tflite.stat().st_size if tflite.is_file() else None,
            "keras_bytes": (folder / "model.keras").stat().st_size}


SEED_IMAGE_SIZE = 128  # the seed CNN as the project started: 128x128 input


def other_model(cfg, model_input: np.ndarray, quick: bool) -> dict:
    """Another architecture, exported the way training exports, timed like the served model."""
    from PIL import Image

    from deepfake_detector.export import export_tflite
    from deepfake_detector.model import build_model, count_flops

    size = cfg.image_size
    model_input = np.asarray(Image.fromarray(model_input).resize((size, size), Image.Resampling.BILINEAR))
    model = build_model(cfg)  # random weights: the cost of a forward pass does not depend on them
    rng = np.random.default_rng(0)
    check = np.stack([model_input] + [rng.integers(0, 256, model_input.shape, dtype=np.uint8) for _ in range(3)])
    with tempfile.TemporaryDirectory() as work:
        export_tflite(model, size, Path(work), check)
        tflite = Path(work) / "model.tflite"
        runner = TFLiteRunner(tflite)
        x = model_input[None].astype(np.float32)
        call = bench.time_calls(lambda: runner(x), 10 if quick else 300, warmup=3)
        size_bytes = tflite.stat().st_size
    return {"architecture": cfg.architecture, "input_size": size, "parameters": int(model.count_params()),
            "flops_per_image": count_flops(model), "tflite_bytes": size_bytes, "model_call": bench.latency(call)}


def keras_calls(folder: Path, model_input: np.ndarray, quick: bool) -> dict:
    """One image through Keras: direct call vs model.predict (per-call graph/loop overhead)."""
    from deepfake_detector.bundle import load_keras_model

    model = load_keras_model(folder)
    x = model_input[None].astype(np.float32)
    runs = 10 if quick else 100
    direct = bench.time_calls(lambda: model(x, training=False), runs, warmup=3)
    predict = bench.time_calls(lambda: model.predict(x, verbose=0), runs, warmup=3)
    return {"direct_call": bench.latency(direct), "model_predict": bench.latency(predict)}


def main() -> None:
    args = bench.parse_args("inference", __doc__.splitlines()[0])
    folder = bench.require_bundle(args.model)
    photo, crops = bench.photo_jpeg(), bench.face_crops_jpeg(64 if args.quick else 256)
    rss_harness = bench.peak_rss_mb()  # imports + generated inputs: not the predictor's doing
    start = time.perf_counter()
    predictor = Predictor(folder)
    load_s = time.perf_counter() - start
    served, model_input = serving(predictor, photo, crops, args.quick)
    served["provenance"] = provenance_cost(photo, args.quick)
    facts = model_facts(folder)
    from deepfake_detector.config import TrainConfig

    seed = other_model(TrainConfig(architecture="seed", image_size=SEED_IMAGE_SIZE), model_input, args.quick)
    compact = other_model(TrainConfig.from_json(bench.REPO / "configs" / "compact.json"), model_input, args.quick)
    keras = keras_calls(folder, model_input, args.quick)
    ratio = seed["model_call"]["p50_ms"] / served["model_call"]["p50_ms"]
    results = {"model_dir": str(folder), "architecture": predictor.config.get("architecture"),
               "backend": predictor.backend, "input_size": predictor.image_size,
               "predictor_load_s": round(load_s, 3), "peak_rss_mb_harness": rss_harness, **served, "model": facts, "seed": seed, "compact": compact,
               "seed_over_served_model_call": round(ratio, 2), "keras": keras,
               "peak_rss_mb_total": bench.peak_rss_mb()}

    lat = bench.fmt_latency
    bench.print_table(f"Served model: {folder} ({results['architecture']}, {predictor.backend}, "
                      f"{predictor.image_size}px)", [
        ("predictor load", f"{load_s * 1000:.0f} ms"),
        ("predict(1024x768 JPEG)", lat(served["end_to_end"])),
        ("predict(..., explain=True)", lat(served["end_to_end_explain"])),
        ("  + provenance, file declaring nothing", lat(served["provenance"]["declares_nothing"])),
        ("  + provenance, signed C2PA manifest", lat(served["provenance"]["signed_c2pa"])),
        ("model call (raw_scores, 1 img)", lat(served["model_call"])),
        ("  decode", lat(served["stages"]["decode"])),
        ("  face detection (BlazeFace)", lat(served["stages"]["face_detection"])),
        ("  face detection (Haar, before)", lat(served["stages"]["face_detection_haar_before"])),
        ("  find + frame every face", lat(served["stages"]["frame_faces"])),
        ("  same, photo without a face", lat(served["stages"]["frame_faces_no_face"])),
        ("  resize", lat(served["stages"]["resize"])),
        ("predict_many (256px JPEG crops)", f"{served['predict_many']['images_per_s']:.1f} images/s "
                                            f"over {served['predict_many']['images']} images"),
        ("  same, crop=False", f"{served['predict_many']['images_per_s_no_face_crop']:.1f} images/s"),
        ("parameters", f"{facts['parameters']:,}"),
        ("FLOPs per image", f"{facts['flops_per_image'] / 1e6:,.0f} M"),
        ("model.tflite size", f"{(facts['tflite_bytes'] or 0) / 1e6:.2f} MB"),
        ("peak RSS (serving, before TF)", f"{served['peak_rss_mb_serving']:.0f} MB "
                                          f"(harness alone: {rss_harness:.0f} MB)"),
    ])
    for other in (seed, compact):
        bench.print_table(f"{other['architecture']} architecture ({other['input_size']}px, TFLite float32, "
                          f"random weights)", [
            ("model call (1 img)", lat(other["model_call"])),
            ("parameters", f"{other['parameters']:,}"),
            ("FLOPs per image", f"{other['flops_per_image'] / 1e6:,.0f} M"),
            ("model.tflite size", f"{other['tflite_bytes'] / 1e6:.2f} MB"),
            ("this / served (p50 model call)", f"{other['model_call']['p50_ms'] / served['model_call']['p50_ms']:.1f}x"),
        ])
    bench.print_table("Why TFLite: one image through the served model", [
        ("TFLite interpreter", lat(served["model_call"])),
        ("Keras model(x, training=False)", lat(keras["direct_call"])),
        ("Keras model.predict(x)", lat(keras["model_predict"])),
        ("peak RSS (after TF import)", f"{results['peak_rss_mb_total']:.0f} MB"),
    ])
    bench.write_results(args.json, "inference", args.quick, results)


if __name__ == "__main__":
    main()
