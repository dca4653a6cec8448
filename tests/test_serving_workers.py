"""The worker processes (serving.WorkerPool): same answers and messages as in process, a killed
worker replaced, none left behind. Real processes and the shipped model; each test takes seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from importlib.util import find_spec
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from deepfake_detector import handlers, ui
from deepfake_detector.errors import DetectorError, ImageError
from deepfake_detector.imaging import DEFAULT_LIMITS
from deepfake_detector.serving import WORKER_DIED, WORKER_FAILED, ResultFiles, ServingSettings, WorkerError, WorkerPool

MODEL = ROOT / "models" / "default"
TESTS = Path(__file__).resolve().parent
PORTRAIT = Path(find_spec("matplotlib").origin).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"


# -- a light factory (worker_helpers.py): the pool's own behaviour, without loading a model --------
@pytest.fixture
def light_pool(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    pool = WorkerPool(2, "worker_helpers:light_handlers")
    pool.wait_ready(timeout=60)
    yield pool
    pool.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids, timeout=10.0) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_pool_answers_in_separate_processes_and_passes_values_back(light_pool):
    pids = {light_pool.call("pid") for _ in range(10)}
    assert os.getpid() not in pids and pids <= set(light_pool.pids())
    value = {"p_fake": 0.25, "faces": [[1, "fake", 0.9]], "array": np.arange(3)}
    back = light_pool.call("echo", value)
    assert back["faces"] == value["faces"] and back["array"].tolist() == [0, 1, 2]


def test_pool_keeps_user_messages_and_hides_tracebacks(light_pool):
    with pytest.raises(DetectorError, match=r"^the file is empty \(0 bytes\)$"):
        light_pool.call("refuse")
    with pytest.raises(WorkerError) as raised:
        light_pool.call("boom")
    assert str(raised.value) == WORKER_FAILED and "Traceback" not in str(raised.value)
    assert light_pool.call("echo", 7) == 7  # the worker that raised still serves


def test_killed_worker_is_replaced_and_its_request_told_so(light_pool):
    # Killed while idle: the next request goes to its replacement, nobody is told anything.
    idle = light_pool.pids()[0]
    os.kill(idle, signal.SIGKILL)
    light_pool.workers[0].proc.wait(timeout=5)
    assert {light_pool.call("pid") for _ in range(4)} and idle not in light_pool.pids()
    # Killed while working: that request gets a clear error at once, not a hang; the pool recovers.
    outcome = {}

    def slow_call():
        try:
            outcome["value"] = light_pool.call("sleep", 30)
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = exc

    caller = threading.Thread(target=slow_call)
    before = set(light_pool.pids())
    caller.start()
    time.sleep(0.5)
    free = {light_pool.call("pid") for _ in range(4)}  # answered by the other one
    (victim,) = before - free  # the worker sleeping on the slow call
    t0 = time.perf_counter()
    os.kill(victim, signal.SIGKILL)
    caller.join(timeout=10)
    assert not caller.is_alive() and time.perf_counter() - t0 < 5
    assert isinstance(outcome.get("error"), WorkerError) and str(outcome["error"]) == WORKER_DIED
    assert light_pool.restarts == 2 and victim not in light_pool.pids()
    assert len({light_pool.call("pid") for _ in range(8)}) >= 1
    assert not _wait_gone([idle, victim], timeout=5)  # reaped, no zombies


def test_worker_busy_past_its_time_limit_is_stopped_and_replaced(light_pool):
    """A request that keeps a worker busy (an input that makes a decoder spin) is stopped after its
    time limit: the caller is told so, the worker process is gone, its replacement answers."""
    before = light_pool.pids()
    t0 = time.perf_counter()
    with pytest.raises(WorkerError, match="took over 1 s and was stopped"):
        light_pool.call("sleep", 60, time_limit_s=1.0)
    assert time.perf_counter() - t0 < 10
    stopped = set(before) - set(light_pool.pids())
    assert len(stopped) == 1 and light_pool.restarts == 1 and not _wait_gone(stopped, timeout=5)
    assert len({light_pool.call("pid", time_limit_s=30) for _ in range(6)}) == 2  # both serve again
    assert light_pool.call("sleep", 0.2, time_limit_s=5) in light_pool.pids()  # within the limit: answered


def test_wait_ready_says_which_worker_could_not_load_and_why(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    pool = WorkerPool(1, "worker_helpers:broken_handlers")
    try:
        with pytest.raises(WorkerError, match="worker process 0 could not load the model .*model.tflite is missing"):
            pool.wait_ready(timeout=60)
    finally:
        pool.close()


def test_no_worker_outlives_the_pool_or_a_killed_server(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    pool = WorkerPool(2, "worker_helpers:light_handlers")
    pool.wait_ready(timeout=60)
    pids = pool.pids()
    pool.close()
    assert not _wait_gone(pids, timeout=5)
    # A server killed outright (no clean shutdown, no atexit): its workers see the socket close and exit.
    script = ("import sys, time; from deepfake_detector.serving import WorkerPool\n"
              "pool = WorkerPool(2, 'worker_helpers:light_handlers'); pool.wait_ready()\n"
              "print(*pool.pids(), flush=True); time.sleep(60)\n")
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # its own group: only the server itself is killed below
    try:
        pids = [int(p) for p in server.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        assert not _wait_gone(pids, timeout=10), "worker processes outlived their server"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)


# -- the real handlers, on the shipped model --------------------------------------------------------
@pytest.fixture(scope="module")
def model_pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("worker-results")
    pool = WorkerPool(1, "deepfake_detector.handlers:worker_from_spec",
                      {"folder": str(MODEL), "source": "bundled default", "limits": asdict(DEFAULT_LIMITS),
                       "results_root": str(root)})
    pool.wait_ready(timeout=120)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    from deepfake_detector.inference import Predictor

    results = ResultFiles(tmp_path_factory.mktemp("local-results"), sweep=False)
    return handlers.worker_handlers(Predictor(MODEL), results)


def _photo(path: Path) -> Path:
    canvas = Image.fromarray(np.random.default_rng(5).integers(60, 200, (600, 800, 3), dtype=np.uint8))
    canvas.paste(Image.open(PORTRAIT).convert("RGB").resize((300, 350)), (380, 120))
    canvas.save(path, quality=92)
    return path


def test_worker_answers_equal_the_in_process_handlers(model_pool, in_process, tmp_path):
    image = _photo(tmp_path / "photo.jpg")
    for explain in (False, True):
        remote = model_pool.call("predict", str(image), True, explain)
        local = in_process["predict"](str(image), True, explain)
        assert remote[0] == local[0] and remote[1] == local[1] and remote[2] == local[2] and remote[4] == local[4]
        assert remote[0]["p_fake"] == local[0]["p_fake"] and remote[0]["faces"]
        for index in (3, 5):  # annotated faces, explanation: each its own file, identical bytes
            if local[index] is None:
                assert remote[index] is None and not explain
                continue
            assert remote[index]["path"] != local[index]["path"]
            assert Path(remote[index]["path"]).read_bytes() == Path(local[index]["path"]).read_bytes()
            Image.open(remote[index]["path"]).load()
    # The examples' handler (Gradio post-processes its outputs): the same values, its own files.
    remote, local = model_pool.call("detect", str(image), True, True), in_process["detect"](str(image), True, True)
    assert [remote[i] for i in (0, 1, 2, 4)] == [local[i] for i in (0, 1, 2, 4)]
    assert all(Path(remote[i]).read_bytes() == Path(local[i]).read_bytes() for i in (3, 5))
    rows, csv_path = model_pool.call("batch", [str(image), str(PORTRAIT)], True)
    local_rows, local_csv = in_process["batch"]([str(image), str(PORTRAIT)], True)
    assert rows == local_rows and Path(csv_path).read_bytes() == Path(local_csv).read_bytes()


def test_worker_gives_the_same_clear_message_for_a_bad_file(model_pool, in_process, tmp_path):
    for name, data in [("empty.jpg", b""), ("cut.jpg", PORTRAIT.read_bytes()[:3000]), ("note.png", b"hello")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageError) as local:
            in_process["predict"](str(tmp_path / name), True, False)
        with pytest.raises(DetectorError) as remote:
            model_pool.call("predict", str(tmp_path / name), True, False)
        assert str(remote.value) == str(local.value) and "Traceback" not in str(remote.value)
        # What the app's handler (the same wrapper as in build_demo) shows the user.
        with pytest.raises(gr.Error) as shown:
            ui._user_errors(lambda: model_pool.call("predict", str(tmp_path / name), True, False))()
        assert shown.value.message == str(local.value)


def test_worker_settings_from_environment():
    s = ServingSettings.from_env({"DEEPFAKE_WORKER_PROCESSES": "0", "DEEPFAKE_WORKER_NICE": "25"})
    assert (s.processes, s.worker_nice) == (False, 19)
    default = ServingSettings.from_env({})
    assert default.processes and default.worker_nice == 10
    assert default.time_limits() == {"detect": 120.0, "predict": 120.0, "batch": 1200.0}
    assert ServingSettings.from_env({"DEEPFAKE_TIME_LIMIT_S": "30"}).time_limits()["batch"] == 300.0
