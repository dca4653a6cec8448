"""Serving under load, without a server: the admission gate, result files, settings."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from deepfake_detector.serving import BUSY_MESSAGE, Gate, ResultFiles, ServingSettings, as_files


def test_gate_runs_workers_queues_the_rest_and_refuses_beyond_at_once():
    gate = Gate(workers=2, queue_size=3)
    release = threading.Event()
    started = []

    def work(i):
        started.append(i)
        release.wait(10)
        return i * 10

    async def scenario():
        admitted = [asyncio.create_task(gate.run(work, i)) for i in range(5)]  # 2 running + 3 waiting
        await asyncio.sleep(0.2)
        assert gate.status()["running"] == 2 and gate.status()["waiting"] == 3
        t0 = time.perf_counter()
        with pytest.raises(gr.Error) as refused:
            await gate.run(work, 99)
        assert time.perf_counter() - t0 < 0.1  # immediate, not after a wait
        assert refused.value.message.startswith("The detector is busy")
        assert "Try again in a few seconds" in refused.value.message
        release.set()
        return await asyncio.gather(*admitted)

    assert asyncio.run(scenario()) == [0, 10, 20, 30, 40]
    assert 99 not in started
    status = gate.status()
    assert status["running"] == status["waiting"] == 0 and status["refused_busy"] == 1 and status["finished"] == 5
    gate.shutdown()


def test_gate_frees_the_slot_of_a_caller_that_goes_away():
    gate = Gate(workers=1, queue_size=0)
    release = threading.Event()

    async def scenario():
        running = asyncio.create_task(gate.run(release.wait, 10))
        await asyncio.sleep(0.1)
        with pytest.raises(gr.Error):
            await gate.run(lambda: None)
        running.cancel()  # the client disconnected; the work itself finishes, then frees the slot
        release.set()
        for _ in range(50):
            if gate.status()["running"] == 0:
                break
            await asyncio.sleep(0.02)
        return await gate.run(lambda: "served")

    assert asyncio.run(scenario()) == "served"
    gate.shutdown()


def test_gate_bounds_the_work_ahead_not_only_the_count():
    """Once a kind of request is known to be slow, fewer of it may wait: the wait stays under max_wait_s."""
    gate = Gate(workers=1, queue_size=50, max_wait_s=1.0)
    release = threading.Event()

    async def scenario():
        await gate.run(time.sleep, 0.4, kind="slow")  # measured: ~0.4 s each
        waiting = [asyncio.create_task(gate.run(release.wait, 10, kind="slow")) for _ in range(3)]
        await asyncio.sleep(0.1)  # 1 running + 2 waiting, ~1.2 s of work ahead: no more
        with pytest.raises(gr.Error, match="The detector is busy"):
            await gate.run(release.wait, 10, kind="slow")
        assert gate.status()["work_ahead_s"] > 1.0
        release.set()
        await asyncio.gather(*waiting)

    asyncio.run(scenario())
    assert gate.status()["refused_busy"] == 1 and gate.status()["work_ahead_s"] == 0
    gate.shutdown()


async def _admitted(gate: Gate, attempts: int, kind: str = "k") -> int:
    """How many of `attempts` requests of `kind` arriving at once the gate lets in (each holds its
    worker until all have arrived)."""
    release = threading.Event()
    tasks = [asyncio.create_task(gate.run(release.wait, 10, kind=kind)) for _ in range(attempts)]
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return sum(not isinstance(r, Exception) for r in results)


def test_gate_estimate_ignores_one_slow_request_but_follows_a_slowdown():
    """The work ahead comes from the lower median of recent durations: one slow request (a cold
    cache), even one of the first two, does not shorten the queue; a run of slow ones does."""
    gate = Gate(workers=1, queue_size=50, max_wait_s=1.0)

    async def scenario():
        await gate.run(time.sleep, 0.6, kind="k")  # the first request is slow (a cold cache),
        await gate.run(lambda: None, kind="k")  # the second is fast
        wide = await _admitted(gate, 30)
        for _ in range(3):
            await gate.run(time.sleep, 0.6, kind="k")
        return wide, await _admitted(gate, 30)

    wide, narrow = asyncio.run(scenario())
    assert wide == 30  # one cold request did not cut the queue
    assert narrow <= 3  # three slow ones did: ~0.6 s each, at most ~1 s ahead
    gate.shutdown()


def test_gate_estimate_counts_answers_not_quick_refusals():
    """A run of bad uploads (refused at once) does not make the gate think requests are cheap."""
    gate = Gate(workers=1, queue_size=50, max_wait_s=1.0)

    def refuse():
        raise gr.Error("the file is empty (0 bytes)")

    async def scenario():
        await gate.run(time.sleep, 0.6, kind="k")
        for _ in range(4):
            with pytest.raises(gr.Error):
                await gate.run(refuse, kind="k")
        return await _admitted(gate, 10)

    assert asyncio.run(scenario()) <= 3  # still ~0.6 s each: at most ~1 s of work ahead
    gate.shutdown()


def test_gate_passes_errors_through():
    gate = Gate(workers=1, queue_size=1)

    def fail():
        raise gr.Error("the file is empty (0 bytes)")

    with pytest.raises(gr.Error, match="empty"):
        asyncio.run(gate.run(fail))
    assert gate.status()["running"] == 0
    gate.shutdown()


def test_busy_message_says_busy_and_when_to_retry():
    text = BUSY_MESSAGE.format(running=2, waiting=64, seconds=3.2)
    assert text.startswith("The detector is busy") and text.endswith("Try again in a few seconds.")


def test_result_files_are_unique_whole_and_decodable(tmp_path):
    results = ResultFiles(tmp_path / "results")
    picture = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    paths = set()

    def write():
        out = results.outputs_as_files(("json", picture, None), {1: "faces.jpg", 2: "explanation.jpg"})
        assert out[0] == "json" and out[2] is None
        paths.add(out[1])

    threads = [threading.Thread(target=write) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(paths) == 16  # identical results, one file each: no request reads another's file
    data = {open(p, "rb").read() for p in paths}
    assert len(data) == 1  # and each is complete
    with Image.open(next(iter(paths))) as im:
        assert im.size == (60, 40)
    assert not list((tmp_path / "results").rglob(".*partial"))


def test_result_pictures_are_capped_for_display(tmp_path):
    results = ResultFiles(tmp_path, max_side=100)
    path = results.outputs_as_files((np.zeros((300, 500, 3), np.uint8),), {0: "faces.jpg"})[0]
    with Image.open(path) as im:
        assert max(im.size) == 100


def test_as_files_leaves_non_array_outputs_alone(tmp_path):
    results = ResultFiles(tmp_path)
    wrapped = as_files(results, {0: "faces.jpg"})(lambda: ("not an array", 1))
    assert wrapped() == ("not an array", 1)
    assert not any(tmp_path.iterdir())


def test_old_result_folders_are_pruned(tmp_path):
    results = ResultFiles(tmp_path, ttl_s=60)
    old = results.new_folder()  # the first folder starts a sweep: let it end before the next is due
    results.pruning.join(10)
    (old / "faces.jpg").write_bytes(b"x")
    os.utime(old, (time.time() - 1000, time.time() - 1000))
    results._last_prune = 0.0  # as if the last sweep were long ago
    fresh = results.new_folder()
    assert results.pruning is not None and results.pruning.name == "result-prune"  # not on the request's thread
    results.pruning.join(10)
    assert fresh.is_dir() and not old.exists()


def test_settings_from_environment():
    s = ServingSettings.from_env({"DEEPFAKE_WORKERS": "3", "DEEPFAKE_QUEUE_SIZE": "10", "DEEPFAKE_RESULT_TTL_S": "120",
                                  "DEEPFAKE_SWITCH_MS": "0.5"})
    assert (s.workers, s.queue_size, s.result_ttl_s, s.switch_ms) == (3, 10, 120, 0.5)
    assert s.server_threads >= 3 + 10 + ServingSettings.SPARE_EVENT_SLOTS
    fallback = ServingSettings.from_env({"DEEPFAKE_WORKERS": "many", "DEEPFAKE_QUEUE_SIZE": "-5"})
    assert fallback.workers >= 1 and fallback.queue_size == 0


def test_lean_gradio_sessions_hold_the_same_state():
    """The lazy per-session configs (see serving.lighten_gradio_sessions) look the same as Gradio's own."""
    from gradio.state_holder import SessionState

    from deepfake_detector.serving import lighten_gradio_sessions

    with gr.Blocks() as demo:
        box = gr.Textbox(value="hello")
        number = gr.Number(value=3)
        gr.Markdown("text")
        box.submit(lambda s: s, box, number)
    original_init = getattr(SessionState.__init__, "original", SessionState.__init__)
    before = SessionState.__new__(SessionState)
    original_init(before, demo)
    assert lighten_gradio_sessions()
    lean = SessionState(demo)
    assert set(vars(lean)) == set(vars(before))
    lean._update_value_in_config(number._id, 7)  # what an event's output does
    assert lean.config_values[number._id]["props"]["value"] == 7
    before._update_value_in_config(number._id, 7)
    assert list(lean.components) == list(before.components)  # deep links see every component


def test_light_gradio_queue_keeps_no_traffic_summary():
    """Gradio's queue summarises its recent requests with pandas after each one (serving.lighten_gradio_queue)."""
    from deepfake_detector.serving import lighten_gradio_queue

    with gr.Blocks() as demo:
        gr.Button().click(lambda: None, None, None)
    demo.queue()
    queue = demo._queue
    records = [{"time": 0.0, "status": "success", "process_time": 0.02, "function": "predict", "session_hash": "s"}] * 50
    queue.events_recorded = 1
    assert queue.compute_analytics_summary(records)["functions"]  # Gradio's own: a summary per request
    assert lighten_gradio_queue(queue)
    queue.events_recorded += 1_000_000
    assert queue.compute_analytics_summary(records) is queue.cached_event_analytics_summary  # not recomputed
    assert queue.ANALYTICS_MAX_EVENTS <= 100 and queue.sleep_when_free >= 0.005


def test_login_check_runs_on_the_event_loop():
    """Without a login, no request waits for a worker thread to run Gradio's login check."""
    import fastapi.dependencies.utils as fastapi_deps
    import httpx

    from deepfake_detector.serving import skip_gradio_login_check

    with gr.Blocks() as demo:
        box = gr.Textbox()
        gr.Button().click(lambda s: s, box, box, api_name="echo")
    demo.queue()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    handed_off = []
    original = fastapi_deps.run_in_threadpool

    async def counting(fn, *args, **kwargs):
        handed_off.append(getattr(fn, "__name__", fn))
        return await original(fn, *args, **kwargs)

    def call(base: str) -> str:
        with httpx.Client(base_url=base, trust_env=False, timeout=30) as http:
            assert http.post("gradio_api/upload", files=[("files", ("a.txt", b"hi"))]).status_code == 200
            event = http.post("gradio_api/call/echo", json={"data": ["hello"]}).json()["event_id"]
            return http.get(f"gradio_api/call/echo/{event}").text

    try:
        fastapi_deps.run_in_threadpool = counting
        assert '["hello"]' in call(demo.local_url)
        assert "login_check" in handed_off  # Gradio's own: one hand-off per request
        handed_off.clear()
        assert skip_gradio_login_check(demo.app)
        assert '["hello"]' in call(demo.local_url)
        assert handed_off == []
    finally:
        fastapi_deps.run_in_threadpool = original
        demo.close()


def test_raw_detect_sends_what_gradio_components_would(tmp_path):
    """/predict skips Gradio's pre- and postprocessing (ui.raw_detect): same values on the wire."""
    from gradio.data_classes import FileData

    from deepfake_detector import ui

    picture = tmp_path / "faces.jpg"
    Image.new("RGB", (8, 8)).save(picture)
    outputs = ({"p_fake": np.float32(0.25), "faces": [{"box": [np.int64(1), 2, 3, 4]}], "error": None},
               {"fake": np.float64(0.25), "real": 0.75}, "### Real — 75% confident\n\n- a note\n", str(picture),
               [[1, "real", 0.25, 0.75, "1, 2, 3, 4"]], None)
    received = []
    raw = ui.raw_detect(lambda *args: received.append(args) or outputs)
    sent = raw({"path": "/tmp/gradio/x/upload.jpg", "orig_name": "upload.jpg", "meta": {"_type": "gradio.FileData"}},
               True, False)
    assert received == [("/tmp/gradio/x/upload.jpg", True, False)]
    components = [gr.JSON(), gr.Label(num_top_classes=2), gr.Markdown(), gr.Image(),
                  gr.Dataframe(headers=ui.FACE_COLUMNS), gr.Image()]
    for component, value, ours in zip(components, outputs, sent, strict=True):
        theirs = component.postprocess(value)
        theirs = theirs.model_dump() if hasattr(theirs, "model_dump") else theirs
        if isinstance(component, gr.Image) and ours is not None:
            ours = FileData(**ours).model_dump()  # as Gradio reads it before adding the URL
        assert ours == theirs, type(component).__name__
