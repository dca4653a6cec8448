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
    old = results.new_folder()
    (old / "faces.jpg").write_bytes(b"x")
    os.utime(old, (time.time() - 1000, time.time() - 1000))
    results._last_prune = 0.0  # as if the last sweep were long ago
    fresh = results.new_folder()
    assert fresh.is_dir() and not old.exists()


def test_settings_from_environment():
    s = ServingSettings.from_env({"DEEPFAKE_WORKERS": "3", "DEEPFAKE_QUEUE_SIZE": "10", "DEEPFAKE_RESULT_TTL_S": "120"})
    assert (s.workers, s.queue_size, s.result_ttl_s) == (3, 10, 120)
    assert s.server_threads >= 3 * (3 + 10)
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
