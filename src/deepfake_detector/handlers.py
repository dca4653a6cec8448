"""The detection handlers' work, without Gradio: what a worker process runs (serving.WorkerPool).

Plain functions of a `Predictor`; `ui.py` wires them into the Gradio app (and re-exports them).
Importing this module costs no Gradio (~5 s and ~110 MB per process), so the worker processes
stay small and start quickly.
"""

from __future__ import annotations

import csv
import functools
import inspect
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .archives import MAX_ZIP_BYTES, read_zip
from .errors import ImageError
from .inference import FaceResult, Prediction, Predictor
from .provenance import summary as provenance_summary
from .serving import ResultFiles, as_files

MAX_BATCH_FILES = 200


def overlay_heatmap(rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """Blend a [0, 1] heatmap (any grid size) over an image as a red-yellow overlay."""
    from PIL import Image

    h, w = rgb.shape[:2]
    heat_img = Image.fromarray((heat * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    hv = np.asarray(heat_img, dtype=np.float32)[..., None] / 255.0
    color = np.concatenate([np.ones_like(hv), hv, np.zeros_like(hv)], axis=-1) * 255.0
    weight = alpha * hv
    return (rgb.astype(np.float32) * (1 - weight) + color * weight).clip(0, 255).astype(np.uint8)


VERDICT_COLOURS = {"fake": (220, 40, 40), "real": (30, 170, 70), "uncertain": (240, 170, 0)}


def annotate_faces(image: np.ndarray, faces: list[FaceResult]) -> np.ndarray:
    """The picture with each scored area boxed in its verdict's colour and numbered as in the table."""
    import cv2

    out = image.copy()
    thickness = max(2, round(max(image.shape[:2]) / 300))
    for face in faces:
        x, y, w, h = face.box
        colour = VERDICT_COLOURS[face.verdict]
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), colour, thickness)
        scale = max(0.6, thickness / 2)
        label = str(face.index)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        cv2.rectangle(out, (x, y), (x + tw + 2 * thickness, y + th + 3 * thickness), colour, -1)
        cv2.putText(out, label, (x + thickness, y + th + thickness), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)
    return out


FACE_COLUMNS = ["face", "verdict", "p_fake", "confidence", "box (x, y, w, h)"]


def face_rows(pred: Prediction) -> list[list]:
    return [[f.index, f.verdict, round(f.p_fake, 3), round(f.confidence, 3), ", ".join(map(str, f.box))]
            for f in pred.faces]


def verdict_markdown(pred: Prediction) -> str:
    text = f"### {pred.headline}"
    decider = pred.deciding_face
    if len(pred.faces) > 1 and decider is not None:
        text += f"\n\nDecided by face {decider.index} (the most suspicious of {len(pred.faces)})."
    if pred.notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in pred.notes)
    return text


HEATMAP_LEGEND = ("Explanation: each cell was hidden in turn; **yellow/red** cells are those whose hiding moved "
                  "P(fake) most *away from* the verdict, i.e. the evidence *for* it. Uncoloured cells barely "
                  "mattered. Shown for the face that decided.")


def detect(predictor: Predictor, image: str | np.ndarray | None, crop_face: bool = True, explain: bool = False):
    """One image -> (result JSON, probabilities, verdict text, annotated picture, face table, explanation)."""
    if image is None:
        raise ImageError("no image uploaded: drop a face photo, paste one or use the webcam")
    name = Path(image).name if isinstance(image, str) else "upload"
    pred = predictor.predict(image, crop=crop_face, explain=explain, name=name)
    if pred.error:
        raise ImageError(pred.error)
    probabilities = {"fake": pred.p_fake, "real": 1.0 - pred.p_fake}
    heat_view = None
    if pred.heatmap is not None:
        crop_view = np.asarray(Image.fromarray(pred.crop).resize((256, 256), Image.Resampling.BILINEAR))
        heat_view = overlay_heatmap(crop_view, pred.heatmap)
    return (pred.to_dict(), probabilities, verdict_markdown(pred), annotate_faces(pred.image, pred.faces),
            face_rows(pred), heat_view)


def _batch_inputs(files: list[str], max_bytes: int) -> tuple[list[Any], list[str], list[dict]]:
    """Expand uploads (images or zips) into (sources, names, rejected rows): at most
    MAX_BATCH_FILES images; every file of a zip that is not scored gets a row saying why."""
    sources, names, rejected = [], [], []
    budget = [MAX_ZIP_BYTES]  # shared by the batch's zips
    for f in files or []:
        path = Path(f)
        if path.suffix.lower() != ".zip":
            sources.append(str(path))
            names.append(path.name)
            continue
        found = read_zip(path, max_bytes, budget, room=MAX_BATCH_FILES - len(sources))
        sources += found.data
        names += found.names
        rejected += [_error_row(name, problem) for name, problem in found.problems]
    if len(sources) > MAX_BATCH_FILES:
        raise ImageError(f"{len(sources)} images in one batch; the limit is {MAX_BATCH_FILES}")
    return sources, names, rejected


BATCH_COLUMNS = ["file", "label", "verdict", "p_fake", "confidence", "faces", "framing", "provenance", "notes",
                 "error"]


def _row(pred: Prediction) -> dict:
    d = pred.to_dict()
    row = {k: d[k] for k in BATCH_COLUMNS if k not in ("faces", "provenance", "notes")}
    # Per face: "index:verdict:p_fake" so a CSV row still says which face is suspicious.
    row["faces"] = " ".join(f"{f['index']}:{f['verdict']}:{f['p_fake']:.3f}" for f in d["faces"])
    row["provenance"] = provenance_summary(d["provenance"])  # "ai_generated (c2pa)": what the file declares
    row["notes"] = "; ".join(d["notes"])
    return row


def _error_row(name: str, error: str) -> dict:
    return _row(Prediction(name, None, None, None, None, None, None, None, error=error))


def detect_batch(predictor: Predictor, files: list[str] | None, crop_face: bool = True,
                 results: ResultFiles | None = None):
    """Several images or zips -> (table rows, CSV file path); the CSV goes to `results` when given."""
    if not files:
        raise ImageError("no files uploaded: add images or a zip of images")
    sources, names, rows = _batch_inputs(files, int(predictor.limits.max_upload_mb * 1e6))
    rows += [_row(pred) for pred in predictor.predict_many(sources, crop=crop_face, names=names)]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=BATCH_COLUMNS)
    writer.writeheader()
    writer.writerows({k: _csv_safe(v) for k, v in row.items()} for row in rows)
    folder = results.new_folder() if results is not None else Path(tempfile.mkdtemp(prefix="deepfake-batch-"))
    out = ResultFiles.write_bytes(folder, "predictions.csv", text.getvalue().encode())
    table = [[r[k] if r[k] is not None else "" for k in BATCH_COLUMNS] for r in rows]
    return table, out



def _csv_safe(value):
    """A text cell a spreadsheet would run as a formula (a file named '=HYPERLINK(...).jpg')
    gets a leading apostrophe, as OWASP advises: shown as text, never run."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _plain(value):
    """JSON types only (numpy scalars and arrays converted), as Gradio's JSON output makes them."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if isinstance(o, (np.ndarray, np.generic)) else str(o)))


def _file_value(path: str | None) -> dict | None:
    """A result file as an image output sends it (Gradio adds its URL)."""
    return None if path is None else {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def upload_path(image):
    """The file path of an upload as a client sent it (Gradio's FileData dict, or a path)."""
    return image.get("path") if isinstance(image, dict) else image


def raw_detect(fn):
    """`fn` (image path, crop, explain -> `detect`'s outputs, pictures as files) for an event that skips
    Gradio's pre- and postprocessing: it takes the upload as the client sent it and returns what
    Gradio's components would have sent back.

    Gradio runs each component's processing on a thread of its own: 9 hand-offs per request, each
    waiting for the interpreter lock behind the workers, plus a pandas table for the face list. Here it
    is a fraction of a millisecond on the worker thread. The app checks that the path is a file it
    received before this runs (`ui.received_upload`): without preprocessing, Gradio does not always.
    """
    @functools.wraps(fn)
    def wrapper(image, crop_face=True, explain=False):
        details, probabilities, verdict, annotated, rows, heat = fn(upload_path(image), crop_face, explain)
        ranked = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)
        label = {"label": ranked[0][0], "confidences": [{"label": k, "confidence": v} for k, v in ranked]}
        return (_plain(details), _plain(label), inspect.cleandoc(verdict), _file_value(annotated),
                {"headers": FACE_COLUMNS, "data": _plain(rows), "metadata": None}, _file_value(heat))

    return wrapper



def worker_handlers(predictor: Predictor, results: ResultFiles) -> dict:
    """What a worker process answers (`serving.WorkerPool`), by name: the same functions the app
    runs in process without worker processes, pictures written as result files by the worker."""
    detect_files = as_files(results, {3: "faces.jpg", 5: "explanation.jpg"})(functools.partial(detect, predictor))
    return {"detect": detect_files,  # the examples: Gradio post-processes these outputs
            "predict": raw_detect(detect_files),  # /predict: already what Gradio would send
            "batch": functools.partial(detect_batch, predictor, results=results)}


def worker_from_spec(folder: str, source: str, limits: dict, results_root: str, max_side: int = 1600,
                     solo_threads: int | None = None) -> dict:
    """A worker process's handlers (`serving.WorkerPool` factory): the served bundle loaded once
    (already verified by the server), result files written under the server's results folder
    (the server sweeps it). `solo_threads`: see `Predictor`."""
    from .imaging import InputLimits

    predictor = Predictor(folder, source=source, verify=False, limits=InputLimits(**limits), solo_threads=solo_threads)
    predictor.warm_up()  # before it says it is ready: the first request it gets runs warm
    return worker_handlers(predictor, ResultFiles(results_root, max_side=max_side, sweep=False))
