"""Gradio UI and API. Handlers are plain functions of a `Predictor`, testable without a browser.

Endpoints (also used by `gradio_client`): /predict, /predict_batch, /predict_video, /model_info,
/server_status.
"""

from __future__ import annotations

import functools
import gc
import logging
import sys
from pathlib import Path

import gradio as gr
import numpy as np

from . import provenance
from .bundle import examples as bundle_examples
from .errors import DetectorError, ImageError, VideoError
# The handlers' work lives in handlers.py (no Gradio: the worker processes import it); re-exported.
from .handlers import (BATCH_COLUMNS, FACE_COLUMNS, HEATMAP_LEGEND, MAX_BATCH_FILES, MAX_ZIP_BYTES,  # noqa: F401
                       VERDICT_COLOURS, annotate_faces, detect, detect_batch, face_rows, overlay_heatmap, raw_detect,
                       upload_path, verdict_markdown)
from .inference import Predictor
from .report import fmt as _fmt
from .report import TRUST_COMMAND, metric_rows, trust_table, unfamiliarity_table
from .serving import (Gate, ResultFiles, ServingSettings, WorkerError, WorkerPool, as_files, lighten_gradio_queue,
                      lighten_gradio_sessions, skip_gradio_login_check)
from .video import (CLIP_RULE, FPS_RANGE, MAX_FRAMES_LIMIT, VideoPrediction, VideoSettings, predict_video,
                    timeline_image, top_frames)

log = logging.getLogger(__name__)


UPLOADS_ONLY = "files must be uploaded with the request (gradio_client: handle_file(path))"
NOT_RECEIVED = f"{UPLOADS_ONLY}; a path on the server is not read"


def was_received(path) -> bool:
    """Whether `path` lies in Gradio's upload folder: uploads, cached examples and result files."""
    try:
        return gr.utils.is_in_or_equal(path, gr.utils.get_upload_folder())
    except (ValueError, OSError):  # a NUL byte, a name too long: not a file we wrote
        return False


class SafeImage(gr.Image):
    """gr.Image that hands undecodable uploads to our loader (which explains them) instead of failing,
    and reads only files the server received: Gradio checks a path on its own only when the client
    marks it as a file ({"meta": {"_type": "gradio.FileData"}}, as gradio_client does)."""

    is_template = True  # render with the built-in Image front end

    def preprocess(self, payload):
        path = getattr(payload, "path", None)
        if path and not was_received(path):
            raise gr.Error(NOT_RECEIVED, print_exception=False)
        try:
            return super().preprocess(payload)
        except Exception:  # noqa: BLE001 - Gradio's PIL decode failed; our loader says why
            if payload is not None and getattr(payload, "path", None):
                return str(payload.path)
            raise gr.Error("the uploaded image could not be read", print_exception=False) from None


class RejectedInput(gr.Error):
    """A file or value the detector refused (a `DetectorError`): the user's to fix, said in one line."""


def _user_errors(fn):
    """Turn every failure into a readable gr.Error; log unexpected ones with their traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except WorkerError as exc:  # a worker process died or failed; it logged why, with its traceback
            log.warning("request failed in a worker process: %s", exc)
            raise gr.Error(str(exc), print_exception=False) from None
        except DetectorError as exc:
            log.info("rejected input: %s", exc)  # the user's mistake, not ours: one line, no traceback
            raise RejectedInput(str(exc), print_exception=False) from None
        except Exception:  # noqa: BLE001
            log.exception("unexpected error")
            raise gr.Error("internal error while processing this request; it has been logged",
                           print_exception=False) from None

    return wrapper


# -- handlers ----------------------------------------------------------------------------------
def video_markdown(result: VideoPrediction) -> str:
    faces = sum(f.face_found for f in result.frames)
    text = (f"### {result.headline}\n\n**Rule:** {result.rule}.\n\n{result.frames_sampled} frames sampled over "
            f"{result.duration_s:.1f} s (the video runs at {result.fps:g} fps); a face was found in {faces}.")
    if result.notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in result.notes)
    return text


class CheckedNumber(gr.Number):
    """A number field whose bad API input (out of range, not a number) is a one-line error naming
    the field: Gradio's own check names no field and logs a traceback for each such call."""

    is_template = True  # as Gradio's own variants (gr.TextArea): drawn by the browser's number field

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception as exc:  # noqa: BLE001 - any bad value is the caller's, said in one line
            reason = (exc.message.rstrip(".").replace("Value", "value", 1) if isinstance(exc, gr.Error)
                      else f"expected a number, got {str(payload)[:40]!r}")
            raise gr.Error(f"{self.label}: {reason}", print_exception=False) from None


def detect_video(predictor: Predictor, video: str | None, crop_face: bool = True, fps: float | None = 1.0,
                 max_frames: int | None = 64, progress=gr.Progress(), results: ResultFiles | None = None):
    """A clip -> (result JSON, verdict text, timeline plot, top frames as [(picture, caption)])."""
    if not video:
        raise VideoError("no video uploaded: drop an MP4, WebM, MOV, AVI or MKV file")
    settings = VideoSettings(fps=1.0 if fps is None else float(fps),
                             max_frames=64 if max_frames is None else max_frames,
                             max_seconds=predictor.limits.max_video_seconds, max_mb=predictor.limits.max_video_mb)
    progress(0, desc="Opening the video")
    result = predict_video(predictor, video, settings, crop=crop_face, name=Path(video).name,
                           progress=lambda done, total: progress((done, total), desc="Scoring frames", unit="frames"))
    gallery = top_frames(result)
    if results is not None:  # written once each under a fresh name, like the other handlers' pictures
        folder = results.new_folder()
        gallery = [(results.write_image(folder, f"frame_{i}.jpg", rgb), caption)
                   for i, (rgb, caption) in enumerate(gallery, start=1)]
    return result.to_dict(), video_markdown(result), timeline_image(result, predictor.uncertain_band), gallery


# -- evaluation tab ----------------------------------------------------------------------------
def evaluation_markdown(predictor: Predictor) -> str:
    info, m = public_info(predictor), predictor.metrics
    test = m.get("test", {})
    counts = info["dataset"].get("counts", {})
    lines = [f"**Model served:** {info['source']} — `{info['architecture']}`, input "
             f"{info['input_size']}², {info['parameters'] or '?'} parameters, {info['backend']} backend, "
             f"sha256 `{(info['model_sha256'] or '?')[:16]}…`"]
    if info.get("fallback_reason"):
        lines.append(f"\n> Not serving a Hub model: {info['fallback_reason']}")
    lines.append(f"\n**Dataset:** `{info['dataset'].get('folder', '?')}` — Test split: "
                 f"{test.get('n', '?')} images ({counts.get('Test', {})})\n")
    serving = m.get("serving", {})
    band = serving.get("uncertain_band") or [serving.get("threshold"), serving.get("threshold")]
    lines.append("| metric | value |\n|---|---|\n" + metric_rows(test))
    lines.append(f"| decision threshold (chosen on Validation) | {_fmt(serving.get('threshold'))} |")
    lines.append(f"| uncertain band (chosen on Validation) | {_fmt(band[0])} ≤ P(fake) < {_fmt(band[1])} |")
    lines.append(f"| share of Test verdicts that are \"uncertain\" | {_fmt(test.get('uncertain_rate'))} |")
    lines.append(f"| accuracy of the confident verdicts | {_fmt(test.get('selective_accuracy'))} |")
    lines.append(f"\nInside the band a verdict would be right less than {serving.get('verdict_min_precision', 0.8):.0%} "
                 "of the time (precision among Validation pictures scored alike), so the app says *uncertain* "
                 "instead of guessing; `label` still names the more probable class.")
    if test.get("per_source"):
        lines.append("\n| source | classes | n | accuracy | ROC AUC | uncertain | accuracy when confident |"
                     "\n|---|---|---|---|---|---|---|")
        for s, v in test["per_source"].items():
            lines.append(f"| {s} | {v.get('classes', 'both')} | {v['n']} | {_fmt(v['accuracy'])} | "
                         f"{_fmt(v['roc_auc'])} | {_fmt(v.get('uncertain_rate'))} | "
                         f"{_fmt(v.get('selective_accuracy'))} |")
    if trust_table(m):
        lines.append("\n**Trust** — how often a picture is called the right way, \"uncertain\", or the wrong way "
                     "(for a real picture: a false alarm), by the served rules (`" + TRUST_COMMAND + "`):\n")
        lines.append(trust_table(m))
    if unfamiliarity_table(m):
        lines.append("\nUnfamiliar faces: each source left out of the unfamiliarity statistics in turn, how well "
                     "its faces stand out from the others (1.0: all of them less familiar than any other face):\n")
        lines.append(unfamiliarity_table(m))
    if m.get("robustness"):
        lines.append("\n| Test images degraded by | accuracy | ROC AUC |\n|---|---|---|")
        for k, v in m["robustness"].items():
            lines.append(f"| {k} | {_fmt(v['accuracy'])} | {_fmt(v['roc_auc'])} |")
    return "\n".join(lines)



def explain_malformed_requests(demo: gr.Blocks) -> None:
    """Answer a request whose data Gradio cannot take (a bare string where a file goes, too few
    values, a server path marked as a file) with a one-line message and no traceback: Gradio checks
    these before any handler of ours runs, and otherwise answers with no message and logs a
    traceback for each."""
    from gradio.exceptions import InvalidPathError
    from pydantic import ValidationError

    preprocess = demo.preprocess_data

    async def checked(block_fn, inputs, state, explicit_call=False):
        if _names_a_url(inputs):  # Gradio would fetch it, with no size limit
            raise gr.Error(f"{UPLOADS_ONLY}; URLs are not fetched", print_exception=False)
        try:
            return await preprocess(block_fn, inputs, state, explicit_call)
        except gr.Error:  # ours, already one line (gr.Error is a ValueError too)
            raise
        except InvalidPathError:
            raise gr.Error(NOT_RECEIVED, print_exception=False) from None
        except ValidationError as exc:
            problem = exc.errors()[0]
            got = type(problem["input"]).__name__
            raise gr.Error(f"invalid request data: {problem['msg'].rstrip('.')} (got {got}); "
                           f"send files with gradio_client's handle_file(path)", print_exception=False) from None
        except (ValueError, AttributeError, OSError) as exc:  # too few values; a "meta" not a dict; a long name
            log.info("invalid request data: %s: %s", type(exc).__name__, exc)
            detail = str(exc).splitlines()[0] if isinstance(exc, ValueError) else "a file value is malformed"
            raise gr.Error(f"invalid request data: {detail}", print_exception=False) from None

    demo.preprocess_data = checked


def _names_a_url(value) -> bool:
    """Whether a request's data hold a file value whose path is a web address."""
    if isinstance(value, dict):
        path = value.get("path")
        return (isinstance(path, str) and path.lower().startswith(("http://", "https://"))) or any(
            _names_a_url(v) for v in value.values() if isinstance(v, (dict, list)))
    if isinstance(value, list):
        return any(_names_a_url(v) for v in value)
    return False


def received_upload(image) -> str | None:
    """The path of the image a /predict caller sent, if it is a file this server received. /predict
    skips Gradio's preprocessing (see `SafeImage`): without the check, a raw call naming any path on
    the server would have that file read and, if an image, returned boxed."""
    path = upload_path(image)
    if path is not None and not was_received(path):
        raise ImageError(NOT_RECEIVED)
    return path


# -- what the page shows ------------------------------------------------------------------------
def public_info(predictor: Predictor) -> dict:
    """`predictor.info()` as the page and /model_info show it: the training data by its folder's
    name only, never a path on the machine that trained the model."""
    info = predictor.info()
    dataset = dict(info.get("dataset") or {})
    if dataset.get("folder"):
        dataset["folder"] = str(dataset["folder"]).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return {**info, "dataset": dataset}


def not_scored_markdown(message: str) -> str:
    return f"### Not scored\n\n{message}"


def provenance_markdown(prov: dict | None) -> str:
    """The Provenance panel beside the verdict: what the file itself declares about how it was made."""
    return "#### Provenance\n\n" + provenance.describe_markdown(prov)


def on_page(handler):
    """The Detect tab's answer from `handler` (async; Detect's six outputs): those outputs, the
    Provenance panel and the photo field. A failure is said in the verdict panel, not raised:
    raised, it would leave a red "Error" badge on every output once its pop-up fades. A refused
    file also leaves the photo field (a non-image showed there as a broken picture); after
    'busy' the photo stays, to try again."""
    @functools.wraps(handler)
    async def page(image, crop_face=True, explain=False):
        try:
            outputs = await handler(image, crop_face, explain)
        except gr.Error as exc:
            photo = None if isinstance(exc, RejectedInput) else gr.skip()
            return None, None, not_scored_markdown(exc.message), None, None, None, "", photo
        return (*outputs, provenance_markdown(outputs[0].get("provenance")), gr.skip())

    return page


# Codecs (OpenCV's four-character names) Chromium, Firefox and Safari play in an MP4, MOV or WebM file.
BROWSER_CODECS = {"avc1", "h264", "vp80", "vp90", "vp08", "vp09", "av01"}
BROWSER_CONTAINERS = {".mp4", ".m4v", ".mov", ".webm"}
CODEC_NAMES = {"fmp4": "MPEG-4 Part 2", "mp4v": "MPEG-4 Part 2", "xvid": "MPEG-4 Part 2", "divx": "MPEG-4 Part 2",
               "mjpg": "Motion JPEG", "hevc": "H.265", "hvc1": "H.265", "hev1": "H.265", "h265": "H.265"}


def video_still(path: str | None, max_pixels: int) -> tuple[np.ndarray | None, str]:
    """(first frame, a note saying why it is shown) for a clip the browser cannot play (an MP4 of
    MPEG-4 Part 2 'mp4v', an AVI, ...), which the video player shows as a grey box; (None, "")
    for one it plays, or whose first frame cannot be read (Detect then says why)."""
    import cv2

    if not path:
        return None, ""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return None, ""
        codec = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1").strip("\x00 ").lower()
        if codec in BROWSER_CODECS and Path(path).suffix.lower() in BROWSER_CONTAINERS:
            return None, ""
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width * height > max_pixels:  # from the header, before a frame is decoded; Detect says why
            return None, ""
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        return None, ""
    scale = min(1.0, 480 / max(frame.shape[:2]))
    if scale < 1:
        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    what = f"{CODEC_NAMES.get(codec, codec)} video" if codec else "this file"
    if codec in BROWSER_CODECS:  # a codec browsers play, in a container they do not (AVI, MKV)
        what = f"a {Path(path).suffix.lower().lstrip('.').upper()} file"
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), f"First frame (a browser cannot play {what}; it is scored all the same)"


def example_gallery(examples: list[tuple[Path, str]]) -> list[tuple[str, str]]:
    """The bundle's examples as (picture, caption), real ones first: what each truly is, not
    what the model says of it (the answer shows that)."""
    ordered = sorted(examples, key=lambda e: (e[1] != "real", e[0].name))
    return [(str(p), "Real photo" if kind == "real" else "Manipulated") for p, kind in ordered]


# -- layout --------------------------------------------------------------------------------------
def _detect_kind(image=None, crop_face=True, explain=False, *_, **__) -> str:
    """For the gate's cost estimate: an explanation costs ~15x a plain detection."""
    return "explain" if explain else "detect"


def build_demo(predictor: Predictor, settings: ServingSettings | None = None,
               pool: WorkerPool | None = None) -> gr.Blocks:
    """The app. With `pool` (see `start_workers`), detection and batch requests are computed by its
    worker processes; without, on the gate's threads in this process. Videos always run here (their
    progress bar is updated from the handler)."""
    settings = settings or ServingSettings.from_env()
    # CPU-heavy handlers run through the gate: `workers` at a time, a bounded queue waiting (at most
    # `queue_size` requests and `max_wait_s` of work), the rest told at once that the detector is
    # busy. Their pictures come back as files written once each.
    gate = Gate(settings.workers, settings.queue_size, settings.max_wait_s)
    results = ResultFiles(ttl_s=settings.result_ttl_s)
    if pool is None:
        detect_files = as_files(results, {3: "faces.jpg", 5: "explanation.jpg"})(functools.partial(detect, predictor))
        detect_work = detect_files
        raw_work = raw_detect(detect_files)

        def predict_work(image, crop_face=True, explain=False):
            return raw_work(received_upload(image), crop_face, explain)

        batch_work = functools.partial(detect_batch, predictor, results=results)
    else:  # the same functions (handlers.worker_handlers), run by a worker process
        time_limits = settings.time_limits()

        def on_worker(name, *args):
            # The workers write result folders where `results` lives but never sweep them: this
            # process does, at most every TTL/4, on a thread of its own.
            results.maybe_prune()
            return pool.call(name, *args, time_limit_s=time_limits[name])

        def detect_work(image, crop_face=True, explain=False):
            return on_worker("detect", image, crop_face, explain)

        def predict_work(image, crop_face=True, explain=False):
            # Only the upload's path crosses to the worker (received_upload checked it is an upload).
            return on_worker("predict", received_upload(image), crop_face, explain)

        def batch_work(files, crop_face=True):
            return on_worker("batch", files, crop_face)

    page_fn = on_page(gate.wrap(_user_errors(detect_work), kind=_detect_kind))  # the page: Detect, examples
    detect_raw_fn = gate.wrap(_user_errors(predict_work), kind=_detect_kind)  # /predict
    batch_fn = gate.wrap(_user_errors(batch_work), kind="batch")
    video_fn = gate.wrap(_user_errors(as_files(results, {2: "timeline.png"})(
        functools.partial(detect_video, predictor, results=results))), kind="video")

    # A coroutine returning plain JSON: no hand-off to a thread, which under load waits behind the workers.
    async def info_fn() -> dict:
        """The served model: source, checksum, decision threshold, test metrics."""
        return public_info(predictor)

    def still_fn(path):
        still, note = video_still(path, int(predictor.limits.max_megapixels * 1e6))
        return gr.Image(value=still, label=note or None, visible=still is not None)

    # Gradio deletes uploads and result files `result_ttl_s` after they were written.
    with gr.Blocks(title="Deepfake detector", analytics_enabled=False,
                   delete_cache=(max(15, settings.result_ttl_s // 4), settings.result_ttl_s)) as demo:
        gr.Markdown("# Deepfake detector\nDrop a photo or a video clip: every face in it is found and scored, and the "
                    "answer says whether it looks **real** or **manipulated**, how sure the model is, or that it "
                    "cannot tell.")
        with gr.Tab("Detect"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=6):
                    with gr.Row(equal_height=False):
                        image = SafeImage(type="filepath", label="Photo", sources=["upload", "clipboard", "webcam"],
                                          image_mode=None,  # our loader converts modes, Gradio must not re-encode
                                          height=420, scale=1, elem_id="photo")
                        examples = example_gallery(bundle_examples(predictor.folder))
                        gallery = gr.Gallery(examples, label="Examples: click one", columns=2, height=420,
                                             allow_preview=False, object_fit="cover", interactive=False,
                                             scale=1, visible=bool(examples), elem_id="examples")
                    crop = gr.Checkbox(value=True, label="Find faces and score each one (off: score the whole image)")
                    explain = gr.Checkbox(value=False, label="Explain the deciding face (occlusion map: 64 more "
                                                             "model calls, 20-40x the time)")
                    button = gr.Button("Detect", variant="primary")
                with gr.Column(scale=5):
                    with gr.Row(equal_height=False):
                        verdict = gr.Markdown(scale=3, elem_id="verdict")
                        provenance_panel = gr.Markdown(scale=2, elem_id="provenance")
                    label = gr.Label(num_top_classes=2, show_heading=False,
                                     label="Calibrated probabilities of the deciding face", elem_id="probabilities")
                    annotated = gr.Image(label="Faces scored (numbered; red fake, green real, amber uncertain)",
                                         interactive=False, elem_id="faces")
                    faces_table = gr.Dataframe(headers=FACE_COLUMNS, label="Every face", interactive=False,
                                               elem_id="face-table")
                    with gr.Column(visible=False, elem_id="explanation") as explanation:  # while "Explain" is ticked
                        heat_view = gr.Image(label="Explanation (occlusion map)", interactive=False, height=300)
                        gr.Markdown(HEATMAP_LEGEND)
                    with gr.Accordion("Result as JSON (the API's answer)", open=False, elem_id="result-json"):
                        details = gr.JSON(show_label=False)
            outputs = [details, label, verdict, annotated, faces_table, heat_view]
            page_outputs = [*outputs, provenance_panel, image]
            explain.change(lambda on: gr.Column(visible=on), explain, explanation, queue=False, api_name=False)

            def cleared():  # a new request first clears the answer: a failure never leaves an old verdict
                return None, None, "", None, None, None, ""

            # Detect and the examples run `page_fn` (failures said in the verdict panel); the API's
            # /predict (`detect_raw_fn`) raises them, on a trigger the page never shows.
            button.click(cleared, None, page_outputs[:-1], queue=False, api_name=False).then(
                page_fn, [image, crop, explain], page_outputs, api_name="detect_work", api_visibility="undocumented",
                concurrency_limit=None)  # the gate limits it

            def picked(evt: gr.SelectData):  # the example, into the photo field; Explain is left as it is
                return examples[evt.index][0]

            gallery.select(picked, None, image, queue=False, api_name=False).then(
                cleared, None, page_outputs[:-1], queue=False, api_name=False).then(
                page_fn, [image, crop, explain], page_outputs, api_name=False, concurrency_limit=None)
            api_trigger = gr.Button(visible=False)
            api_trigger.click(detect_raw_fn, [image, crop, explain], outputs, api_name="predict",
                              concurrency_limit=None,  # the gate limits it
                              preprocess=False, postprocess=False)  # raw_detect does both
        with gr.Tab("Video"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    video = gr.Video(label="Video (MP4, WebM, MOV, AVI, MKV)", sources=["upload"],
                                     include_audio=True)  # as uploaded: no re-encoding
                    still = gr.Image(visible=False, interactive=False, height=260,  # a clip the browser cannot play
                                     elem_id="video-still")
                    video_crop = gr.Checkbox(value=True, label="Find faces and follow the main one "
                                                               "(off: score whole frames)")
                    with gr.Row():
                        video_fps = CheckedNumber(value=1.0, minimum=FPS_RANGE[0], maximum=FPS_RANGE[1],
                                                  label="Frames per second sampled")
                        video_max = CheckedNumber(value=64, minimum=1, maximum=MAX_FRAMES_LIMIT, precision=0,
                                                  label="At most this many frames (spread over the clip)")
                    video_button = gr.Button("Detect in video", variant="primary")
                    gr.Markdown(f"Frames are sampled uniformly and scored like photos; the main face is "
                                f"followed from frame to frame. Verdict rule: {CLIP_RULE}.")
                with gr.Column(scale=6):
                    video_verdict = gr.Markdown()
                    # The figure's legend sits on its top edge: a component label would cover it.
                    gr.Markdown("**P(fake) per sampled frame** (dashed: threshold; shaded: uncertain band; "
                                "hollow: no face found)")
                    timeline = gr.Image(show_label=False, interactive=False, elem_id="timeline")
                    top_gallery = gr.Gallery(label="Highest-scoring frames (main face boxed)", columns=2,
                                             interactive=False)
                    with gr.Accordion("Result as JSON (the API's answer)", open=False):
                        video_details = gr.JSON(show_label=False)
            video.upload(still_fn, video, still, api_name=False, concurrency_limit=2)
            video.clear(lambda: gr.Image(value=None, visible=False), None, still, queue=False, api_name=False)
            video_outputs = [video_details, video_verdict, timeline, top_gallery]
            video_button.click(lambda: (None, "", None, None), None, video_outputs, api_name=False,
                               queue=False).then(video_fn, [video, video_crop, video_fps, video_max], video_outputs,
                                                 api_name="predict_video", concurrency_limit=None)  # the gate limits it
        with gr.Tab("Batch"):
            files = gr.File(file_count="multiple", label="Images or a zip of images", type="filepath")
            batch_crop = gr.Checkbox(value=True, label="Find faces and score each one (off: score the whole image)")
            batch_button = gr.Button("Score all", variant="primary")
            table = gr.Dataframe(headers=BATCH_COLUMNS, label="Predictions", interactive=False)
            csv_file = gr.File(label="CSV download")
            batch_button.click(batch_fn, [files, batch_crop], [table, csv_file], api_name="predict_batch",
                               concurrency_limit=None)  # the gate limits it
        with gr.Tab("Evaluation"):
            gr.Markdown(evaluation_markdown(predictor))
            # Titles are in the figures; Gradio's overlay labels would cover them, so none are shown.
            plots = predictor.folder / "plots"
            with gr.Row():
                for name in ("confusion_matrix", "roc_curve"):
                    if (plots / f"{name}.png").is_file():
                        gr.Image(str(plots / f"{name}.png"), show_label=False, interactive=False)
            if (plots / "training_curves.png").is_file():  # wide figure: a row of its own
                gr.Image(str(plots / "training_curves.png"), show_label=False, interactive=False)
            info_json = gr.JSON(label="Model info")
            info_button = gr.Button("Refresh model info")
            info_button.click(info_fn, None, info_json, api_name="model_info", concurrency_limit=None,
                              postprocess=False, queue=False)  # already JSON: no hand-off to a thread for the JSON output
            demo.load(info_fn, None, info_json, api_name=False, postprocess=False)

        async def server_status() -> dict:
            """Requests running and waiting now, and the limits (cheap: never waits behind the model)."""
            return gate.status()

        gr.api(server_status, api_name="server_status", concurrency_limit=None, queue=False)
        gr.Markdown(f"Uploads up to {predictor.limits.max_upload_mb:.0f} MB (videos {predictor.limits.max_video_mb:.0f} MB). "
                    "A score is evidence, not proof: see the Evaluation tab for how this model was measured "
                    "and its limits.")
    return demo


def start_workers(predictor: Predictor, settings: ServingSettings) -> WorkerPool:
    """`settings.workers` worker processes serving `predictor`'s bundle, writing their result files
    where this process's `ResultFiles` sweeps them; stopped when this process exits."""
    import atexit
    from dataclasses import asdict

    # Several worker processes share the cores: one thread each per model call, never a call that
    # takes every core because its own process happens to be idle.
    spec = {"folder": str(predictor.folder), "source": predictor.source, "limits": asdict(predictor.limits),
            "results_root": str(ResultFiles().root), "solo_threads": 1 if settings.workers > 1 else None}
    pool = WorkerPool(settings.workers, "deepfake_detector.handlers:worker_from_spec", spec, nice=settings.worker_nice)
    atexit.register(pool.close)
    return pool


def launch(env) -> int:
    """Load the served model, build the UI and serve it until interrupted."""
    from .served_model import load_served_predictor

    settings = ServingSettings.from_env(env)
    try:
        predictor = load_served_predictor(settings.input_limits())
    except DetectorError as exc:
        log.error("no model to serve: %s", exc)
        return 2
    # The worker processes load the model while the server below builds the UI.
    pool = start_workers(predictor, settings) if settings.processes else None
    lighten_gradio_sessions()  # a new browser tab or API client costs ~0 instead of ~5-10 ms of the event loop
    sys.setswitchinterval(settings.switch_ms / 1000)
    demo = build_demo(predictor, settings, pool=pool)
    # The port opens once the model that answers detections is loaded and has run once: the first
    # requests are served warm, and their durations (the gate's estimate of the work ahead) are a
    # warm server's. (With worker processes the server's own copy only serves videos: not warmed,
    # it would hold the face models for nothing.)
    if pool is None:
        predictor.warm_up()
    else:
        try:
            pool.wait_ready()
        except WorkerError as exc:
            log.error("cannot serve: %s", exc)
            pool.close()
            return 2
    # No Gradio-level limit: the gate in build_demo bounds the heavy handlers and answers 'busy'.
    # Gradio runs at most `max_threads` events at once and queues the rest, sending every queued
    # event a position update each time one starts (quadratic in a burst): enough slots that a
    # burst reaches the gate at once, updates once a second, and Gradio's own limit (generic
    # message) only as a backstop against floods.
    demo.queue(default_concurrency_limit=None, status_update_rate=1, max_size=4 * settings.server_threads)
    lighten_gradio_queue(demo._queue)  # no traffic summary for the dashboard turned off below, fewer polls
    explain_malformed_requests(demo)
    host = env.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(env.get("GRADIO_SERVER_PORT", "7860"))
    log.info("serving %s on http://%s:%d (%s)", predictor.source, host, port, settings)
    upload_mb = max(settings.max_upload_mb, settings.max_video_mb)  # imaging.py holds photos to theirs
    demo.launch(server_name=host, server_port=port, max_file_size=f"{upload_mb:.0f}mb",
                # Only what the page shows; the model files are not served.
                allowed_paths=[str(predictor.folder / "examples"), str(predictor.folder / "plots")],
                ssr_mode=False, max_threads=settings.server_threads,
                state_session_capacity=settings.max_sessions, enable_monitoring=False, prevent_thread_lock=True)
    skip_gradio_login_check(demo.app)  # on the app that launch built; then serve until interrupted
    # Everything built so far (libraries, model, UI) lives as long as the server: keep it out of the
    # garbage collector's full passes, which otherwise stop every thread for 0.2-0.4 s under load.
    gc.freeze()
    demo.block_thread()
    return 0


def main() -> int:
    """Console entry point `deepfake-app` (same as `python app.py`)."""
    import os

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return launch(os.environ)
