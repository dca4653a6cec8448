"""Serving under load: settings, admission (a bounded wait, then a clear 'busy'), result files.

- `ServingSettings`: the app's serving knobs, read once from the environment.
- `Gate`: runs the CPU-heavy handlers on `workers` threads; at most `queue_size` requests, and at
  most `max_wait_s` of work, wait for one; a request beyond that is refused at once with
  `BUSY_MESSAGE` (a `gr.Error`, so the browser shows it and `gradio_client` raises it) instead of
  waiting until its client times out. Waiting requests are coroutines on the event loop, not
  threads, so a burst costs no threads.
- `WorkerPool`: the detection and batch work itself, in worker processes of their own (the model
  loaded once in each), so the web server's event loop, the bottleneck under load, has Python's
  interpreter lock to itself; the gate's threads only hand requests over and wait for the reply.
- `ResultFiles`: every image a request returns is written by us, once, to a name no other request
  uses, inside Gradio's cache folder (so Gradio serves it without copying). Gradio's own handling
  of numpy outputs writes identical results of concurrent requests to the *same* hash-named file,
  in place, so one request's download could read another's half-written copy.
- `lighten_gradio_sessions`, `lighten_gradio_queue`, `skip_gradio_login_check`: remove per-request
  work of the pinned Gradio that this app does not use. Under load the web server's event loop,
  not the model, limits throughput: it handles ~4 HTTP requests and a queue event per prediction
  (~20 ms of Python; it shared the interpreter lock with the workers until they became processes).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import copy
import functools
import gc
import importlib
import logging
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from PIL import Image

from . import atomic
from .errors import DetectorError
from .imaging import InputLimits

log = logging.getLogger(__name__)

BUSY_MESSAGE = ("The detector is busy: {running} requests are running and {waiting} waiting, about {seconds:.0f} s "
                "of work ahead. Try again in a few seconds.")


def _env_number(env: Mapping[str, str], name: str, default, minimum, kind=int):
    """`kind`(env[name]) raised to `minimum`; the default when unset or not a number (with a warning)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        log.warning("%s=%r is not %s; using %s", name, raw, "an integer" if kind is int else "a number", default)
        return default
    return max(minimum, value)


@dataclass(frozen=True)
class ServingSettings:
    """How the app serves requests (environment variables in brackets, documented in the README)."""
    workers: int = 2  # requests computed at once [DEEPFAKE_WORKERS]; default: one per CPU core
    # Detection and batch requests computed in `workers` processes of their own (1), or on threads
    # of the web server's process (0) [DEEPFAKE_WORKER_PROCESSES]; see `WorkerPool`.
    processes: bool = True
    # How much lower the worker processes' CPU priority is than the web server's (Unix nice, 0-19)
    # [DEEPFAKE_WORKER_NICE]. With the workers at the same priority the web server's event loop
    # (one thread) gets about as much CPU as each worker and, under a burst, a backlog of seconds
    # builds up in front of it: page loads and /model_info wait behind it. Lower-priority workers
    # use what the web server leaves, the burst waits at the gate instead, and light requests are
    # answered at once (README, "Serving under load").
    worker_nice: int = 10
    # Requests that may wait for a worker; more get 'busy' [DEEPFAKE_QUEUE_SIZE]. Room for a burst of
    # 200 callers: every one refused comes back, and a refusal costs the server about a third of a
    # plain prediction's work, so refusing what could be served within max_wait_s only adds work.
    queue_size: int = 256
    max_wait_s: float = 10.0  # nor more than this much work ahead of a new request [DEEPFAKE_MAX_WAIT_S]
    # How long a thread may keep the interpreter lock while another waits for it [DEEPFAKE_SWITCH_MS].
    # Python's default, 5 ms, makes the web server's event loop (the bottleneck under load) wait up
    # to that long for the lock after each socket read or write while the workers run: 1 ms served
    # 3-20% more answers a second in six paired 200-caller runs.
    switch_ms: float = 1.0
    result_ttl_s: int = 600  # result files and uploads are deleted this long after [DEEPFAKE_RESULT_TTL_S]
    # Gradio keeps per-session state for each browser tab or API client (up to ~90 KiB here: its copy
    # of every component's config); its default of 10,000 sessions could hold ~1 GB. This app keeps
    # no state between requests, so an evicted session costs only a rebuild. [DEEPFAKE_MAX_SESSIONS]
    max_sessions: int = 1000
    max_upload_mb: float = 20.0  # [DEEPFAKE_MAX_UPLOAD_MB], enforced by the server and imaging.py
    max_megapixels: float = 40.0  # [DEEPFAKE_MAX_MEGAPIXELS], enforced by imaging.py before decoding
    max_video_mb: float = 200.0  # [DEEPFAKE_MAX_VIDEO_MB], enforced by video.py
    max_video_seconds: float = 600.0  # [DEEPFAKE_MAX_VIDEO_SECONDS], enforced by video.py
    # A worker process still busy with one image after this long is stopped and replaced, and the
    # caller told so [DEEPFAKE_TIME_LIMIT_S]: an input that makes a decoder or detector spin must not
    # hold a worker for good. A 40 MP photo takes ~2 s here. A batch (up to 200 images) gets
    # BATCH_TIME_FACTOR times as long.
    time_limit_s: float = 120.0
    BATCH_TIME_FACTOR = 10

    def time_limits(self) -> dict[str, float]:
        """Seconds a worker may spend on one request, by handler name (see `worker_handlers`)."""
        return {"detect": self.time_limit_s, "predict": self.time_limit_s,
                "batch": self.time_limit_s * self.BATCH_TIME_FACTOR}

    def input_limits(self) -> InputLimits:
        return InputLimits(self.max_upload_mb, self.max_megapixels, self.max_video_mb, self.max_video_seconds)

    # Gradio event slots beyond the admitted requests: callers being answered 'busy' at that moment,
    # /model_info and /server_status calls, page loads' events.
    SPARE_EVENT_SLOTS = 64

    @property
    def server_threads(self) -> int:
        """Gradio's event slots (also its cap on pre/post-processing threads, made only when needed):
        every admitted request and spare ones, so every request reaches the gate at once (admitted
        or told 'busy') and light calls never wait behind queued predictions in Gradio's queue."""
        return self.workers + self.queue_size + self.SPARE_EVENT_SLOTS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ServingSettings":
        env = os.environ if env is None else env
        def number(name: str, default, minimum, kind=int):
            return _env_number(env, name, default, minimum, kind)

        return cls(workers=number("DEEPFAKE_WORKERS", min(os.cpu_count() or 2, 8), 1),
                   processes=bool(number("DEEPFAKE_WORKER_PROCESSES", 1, 0)),
                   worker_nice=min(19, number("DEEPFAKE_WORKER_NICE", cls.worker_nice, 0)),
                   queue_size=number("DEEPFAKE_QUEUE_SIZE", cls.queue_size, 0),
                   max_wait_s=number("DEEPFAKE_MAX_WAIT_S", cls.max_wait_s, 1.0, float),
                   switch_ms=number("DEEPFAKE_SWITCH_MS", cls.switch_ms, 0.1, float),
                   result_ttl_s=number("DEEPFAKE_RESULT_TTL_S", cls.result_ttl_s, 60),
                   max_sessions=number("DEEPFAKE_MAX_SESSIONS", cls.max_sessions, 10),
                   max_upload_mb=number("DEEPFAKE_MAX_UPLOAD_MB", cls.max_upload_mb, 0.01, float),
                   max_megapixels=number("DEEPFAKE_MAX_MEGAPIXELS", cls.max_megapixels, 0.01, float),
                   max_video_mb=number("DEEPFAKE_MAX_VIDEO_MB", cls.max_video_mb, 0.01, float),
                   max_video_seconds=number("DEEPFAKE_MAX_VIDEO_SECONDS", cls.max_video_seconds, 1.0, float),
                   time_limit_s=number("DEEPFAKE_TIME_LIMIT_S", cls.time_limit_s, 1.0, float))


class Gate:
    """Admission control: `workers` requests run; others wait while the queue holds fewer than
    `queue_size` and the work ahead of them is under `max_wait_s`; the rest are told 'busy' at once.

    The work ahead is estimated per kind of request (a plain detection, an explanation, a batch, a
    video) from the measured durations of the recent ones of that kind, so a queue of explanations
    (~0.25 s each) is cut shorter than a queue of plain detections (~0.015 s each). The estimate is
    the lower median of the last `RECENT` durations: a lasting slowdown shows after three requests,
    and one slow request (a cold cache, a worker being replaced) does not turn a burst away once
    there are two. Until the first answer of a kind nothing is refused for time; after only one,
    that one is the estimate, so on a slow or crowded machine a burst may be told 'busy' early.
    """

    RECENT = 5

    def __init__(self, workers: int, queue_size: int, max_wait_s: float | None = None):
        self.workers = workers
        self.queue_size = queue_size
        self.max_wait_s = max_wait_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="detector")
        self._lock = threading.Lock()
        self._in_flight = 0  # admitted and not finished (running or waiting)
        self._backlog_s = 0.0  # expected seconds of work of the admitted, unfinished requests
        self._recent_s: dict[str, collections.deque] = {}  # per kind: the last RECENT durations
        self.finished = 0
        self.refused = 0

    @property
    def capacity(self) -> int:
        return self.workers + self.queue_size

    def status(self) -> dict[str, Any]:
        with self._lock:
            running = min(self._in_flight, self.workers)
            return {"running": running, "waiting": self._in_flight - running, "workers": self.workers,
                    "queue_size": self.queue_size, "max_wait_s": self.max_wait_s,
                    "work_ahead_s": round(self._backlog_s / self.workers, 2),
                    "finished": self.finished, "refused_busy": self.refused}

    def _admit(self, kind: str) -> float:
        """Count the request in, or raise 'busy'; returns its expected duration."""
        import gradio as gr

        with self._lock:
            ahead_s = self._backlog_s / self.workers
            full = self._in_flight >= self.capacity
            too_long = (self.max_wait_s is not None and self._in_flight >= self.workers
                        and ahead_s > self.max_wait_s)
            if full or too_long:
                self.refused += 1
                message = BUSY_MESSAGE.format(running=min(self._in_flight, self.workers),
                                              waiting=max(0, self._in_flight - self.workers), seconds=ahead_s)
                raise gr.Error(message, title="Busy", duration=8, print_exception=False)
            recent = self._recent_s.get(kind)
            expected = statistics.median_low(recent) if recent else 0.0
            self._in_flight += 1
            self._backlog_s += expected
            return expected

    def _release(self, kind: str, expected: float, seconds: float | None) -> None:
        with self._lock:
            self._in_flight -= 1
            self._backlog_s = max(0.0, self._backlog_s - expected) if self._in_flight else 0.0
            self.finished += 1
            if seconds is not None:
                self._recent_s.setdefault(kind, collections.deque(maxlen=self.RECENT)).append(seconds)

    async def run(self, fn: Callable, *args, kind: str = "default", **kwargs):
        """Run `fn(*args, **kwargs)` on a worker thread once one is free, or refuse at once."""
        expected = self._admit(kind)
        timing: list[float] = []

        def timed():
            # Only answers count towards the estimate: a quick refusal (a bad upload) says nothing
            # of how long the next request will take.
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            timing.append(time.perf_counter() - start)
            return result

        try:
            # The caller's context (Gradio's request-local state) travels with the work.
            future = self._executor.submit(contextvars.copy_context().run, timed)
        except BaseException:
            self._release(kind, expected, None)
            raise
        # Released when the work ends, even if the caller goes away while it waits or runs.
        future.add_done_callback(lambda _: self._release(kind, expected, timing[0] if timing else None))
        return await asyncio.wrap_future(future)

    def wrap(self, fn: Callable, kind: str | Callable[..., str] = "default") -> Callable:
        """An async handler for Gradio that runs the sync `fn` through the gate.

        `kind` names the kind of request (or is a function of the handler's arguments that does).
        """
        @functools.wraps(fn)
        async def handler(*args, **kwargs):
            which = kind(*args, **kwargs) if callable(kind) else kind
            return await self.run(fn, *args, kind=which, **kwargs)

        return handler

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


WORKER_DIED = ("the detector's worker process stopped while working on this request (it is being "
               "restarted); try again in a few seconds")
WORKER_FAILED = "internal error while processing this request; it has been logged"
WORKER_TIMED_OUT = ("this request took over {seconds:.0f} s and was stopped (the detector's worker process "
                    "is being restarted); a smaller image or batch may go through")


class WorkerError(Exception):
    """A request a worker process could not answer (it died, or failed unexpectedly and logged why).
    The message is meant for the user, as `DetectorError`'s are."""


class _Worker:
    """One worker process and the socket the server talks to it through."""

    def __init__(self, index: int, spec: dict, nice: int = 0):
        self.index = index
        ours, theirs = socket.socketpair()
        try:
            # A fresh interpreter (fork + exec): nothing of the server's threads, locks or Gradio is
            # inherited, and only the worker's end of the socket is passed on (close_fds).
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "import sys; from deepfake_detector.serving import worker_main; "
                                       "sys.exit(worker_main(int(sys.argv[1])))", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
            if nice:  # at once, so its start-up (imports, model) already yields to the server's
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + nice)
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send(spec)  # what to load; it answers ("ready", pid) once loaded
        self.ready = False

    def stop(self, wait_s: float = 3.0) -> None:
        self.conn.close()  # the worker reads end-of-file and exits
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class WorkerPool:
    """`size` worker processes, each with its own model loaded once, answering calls by name.

    Under load the web server's single event loop limits throughput, and in one process it shares
    Python's interpreter lock with the model's threads: the decode, face search, model and picture
    writing (~16 ms of CPU per plain prediction) run here, in processes of their own, and the
    server's process only passes a file path in and a small reply (JSON and result-file paths) out.

    `factory` ("module:function") is called in each worker with `kwargs` and returns a dict of
    handlers by name. `call(name, *args)` runs one on a free worker (blocking the calling thread,
    which waits on a socket without holding the interpreter lock) and returns its value. Errors
    come back as the same clear messages: a `DetectorError` raised by the handler is raised again
    here with its message; an unexpected one is logged by the worker, with its traceback, and is a
    `WorkerError` here. A worker that dies (killed, out of memory) is replaced at once and its
    request gets a `WorkerError` saying so; the next request on that worker waits for the
    replacement to load. Workers exit when the server closes the pool or goes away (its end of the
    socket closes), so none outlives it.
    """

    def __init__(self, size: int, factory: str, kwargs: Mapping[str, Any] | None = None, nice: int = 0):
        self.size = size
        self._spec = {"factory": factory, "kwargs": dict(kwargs or {})}
        self.nice = nice
        self._free: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self.workers = [_Worker(i, self._spec, nice) for i in range(size)]
        for worker in self.workers:
            self._free.put(worker)
        self.restarts = 0

    def pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self.workers]

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until every worker has loaded, at most `timeout` seconds in all; raise WorkerError
        if one could not load, died meanwhile or is not ready in time."""
        deadline = time.monotonic() + timeout
        taken: list[_Worker] = []
        try:
            for _ in range(self.size):
                try:
                    taken.append(self._free.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    raise WorkerError(f"the worker processes were not free within {timeout:.0f} s") from None
            for worker in taken:
                if not worker.ready and not worker.conn.poll(max(0.0, deadline - time.monotonic())):
                    raise WorkerError(f"worker process {worker.index} did not load the model within {timeout:.0f} s")
                try:
                    self._ensure_ready(worker)
                except (_LoadFailed, EOFError, OSError) as exc:
                    raise WorkerError(f"worker process {worker.index} could not load the model "
                                      f"({str(exc) or 'it exited'})") from None
        finally:
            for worker in taken:
                self._free.put(worker)

    def _ensure_ready(self, worker: _Worker) -> None:
        if worker.ready:
            return
        status, value = worker.conn.recv()
        if status != "ready":
            raise _LoadFailed(value)
        worker.ready = True

    def call(self, name: str, *args, time_limit_s: float | None = None, **kwargs):
        """`name`(*args, **kwargs) on a free worker. One still busy after `time_limit_s` is stopped
        and replaced, and the call raises a `WorkerError` saying so."""
        if self._closed:
            raise WorkerError("the server is shutting down")
        worker = self._free.get()
        try:
            try:
                # One that died while idle is replaced before the request is handed over: no loss.
                for attempt in range(2):
                    if worker.proc.poll() is not None:
                        worker = self._replace(worker, EOFError("exited while idle"))
                    try:
                        self._ensure_ready(worker)
                        worker.conn.send((name, args, kwargs))
                        break
                    except (EOFError, OSError) as exc:
                        if attempt or self._closed:
                            raise
                        worker = self._replace(worker, exc)
                if time_limit_s is not None and not worker.conn.poll(time_limit_s):
                    log.error("worker process %d (pid %d) spent over %.0f s on a %r request: stopping it",
                              worker.index, worker.proc.pid, time_limit_s, name)
                    worker = self._replace(worker, TimeoutError(f"over {time_limit_s:.0f} s"))
                    raise WorkerError(WORKER_TIMED_OUT.format(seconds=time_limit_s))
                status, value = worker.conn.recv()
            except (EOFError, OSError, _LoadFailed) as exc:
                if self._closed:
                    raise WorkerError("the server is shutting down") from None
                worker = self._replace(worker, exc)
                if isinstance(exc, _LoadFailed):
                    raise WorkerError(f"the detector's worker process could not load the model ({exc}); "
                                      "it is being restarted, try again in a few seconds") from None
                raise WorkerError(WORKER_DIED) from None
        finally:
            self._free.put(worker)
        if status == "ok":
            return value
        if status == "user":
            raise DetectorError(value)
        raise WorkerError(value)

    def _replace(self, worker: _Worker, why: BaseException) -> _Worker:
        """Stop what is left of `worker` and start another in its place."""
        code = worker.proc.poll()
        log.error("worker process %d (pid %d) stopped (%s; exit code %s): starting another", worker.index,
                  worker.proc.pid, why if isinstance(why, _LoadFailed) else type(why).__name__, code)
        worker.stop(wait_s=1.0)
        fresh = _Worker(worker.index, self._spec, self.nice)
        with self._lock:
            self.workers[worker.index] = fresh
            self.restarts += 1
        return fresh

    def close(self) -> None:
        """Stop every worker (each exits once it reads end-of-file); idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            workers = list(self.workers)
        for worker in workers:
            worker.conn.close()
        for worker in workers:
            worker.stop()


class _LoadFailed(Exception):
    """A worker process could not load what it serves (its log says why)."""


def worker_main(fd: int) -> int:
    """A worker process: load the handlers named by the first message, then answer calls until the
    server closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops us
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[worker %(process)d]: %(message)s")
    conn = Connection(fd)
    try:
        spec = conn.recv()
        module, function = spec["factory"].split(":")
        handlers = getattr(importlib.import_module(module), function)(**spec["kwargs"])
    except EOFError:
        return 0
    except Exception as exc:  # noqa: BLE001 - said to the server, which restarts us
        log.exception("worker could not load")
        try:
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
        return 1
    gc.freeze()  # the libraries and the model live as long as the worker: out of the collector's passes
    conn.send(("ready", os.getpid()))
    while True:
        try:
            name, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return 0
        try:
            reply = ("ok", handlers[name](*args, **kwargs))
        except DetectorError as exc:
            reply = ("user", str(exc))
        except Exception:  # noqa: BLE001
            log.exception("unexpected error in %s", name)
            reply = ("internal", WORKER_FAILED)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return 0
        except Exception:  # noqa: BLE001 - a reply that cannot be pickled
            log.exception("unexpected reply from %s", name)
            conn.send(("internal", WORKER_FAILED))


class ResultFiles:
    """Writes each result file once, under a fresh per-request folder, atomically, and prunes old ones."""

    IMAGE_FORMATS = {"jpg": ("JPEG", {"quality": 90}), "png": ("PNG", {"compress_level": 1})}

    def __init__(self, root: str | Path | None = None, ttl_s: int = 600, max_side: int = 1600, sweep: bool = True):
        if root is None:
            from gradio.utils import get_upload_folder

            root = Path(get_upload_folder()) / "deepfake-results"
        self.root = Path(root)
        self.ttl_s = ttl_s
        self.max_side = max_side  # pictures are shown at most this large
        # First sweep on first use: a server stopped by a signal leaves its files behind (Gradio
        # deletes its cache only on a clean shutdown).
        self._last_prune = float("-inf") if sweep else float("inf")  # worker processes leave it to the server
        self._prune_lock = threading.Lock()
        self.pruning: threading.Thread | None = None  # the latest sweep

    def new_folder(self) -> Path:
        folder = self.root / uuid.uuid4().hex
        folder.mkdir(parents=True)
        self.maybe_prune()
        return folder

    @staticmethod
    def write_bytes(folder: Path, name: str, data: bytes) -> str:
        return str(atomic.write_bytes(folder / name, data))  # a reader sees the whole file or none

    def write_image(self, folder: Path, name: str, rgb: np.ndarray) -> str:
        fmt, options = self.IMAGE_FORMATS[name.rsplit(".", 1)[-1]]
        im = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
        if max(im.size) > self.max_side:
            im.thumbnail((self.max_side, self.max_side), Image.Resampling.BILINEAR)
        with atomic.atomic_path(folder / name) as staging:
            im.save(staging, fmt, **options)
        return str(folder / name)

    def outputs_as_files(self, outputs: tuple, names: Mapping[int, str]) -> tuple:
        """Replace the image arrays at positions `names` (index -> file name) by written files."""
        if not any(isinstance(outputs[i], np.ndarray) for i in names):
            return outputs
        folder = self.new_folder()
        out = list(outputs)
        for i, name in names.items():
            if isinstance(out[i], np.ndarray):
                out[i] = self.write_image(folder, name, out[i])
        return tuple(out)

    def maybe_prune(self) -> None:
        """Every TTL/4, sweep on a thread of its own: at 30 answers a second a sweep removes ~4,500
        folders (~1 s), which inline would hold up one request and, through the gate's measured
        durations, make the queue look seconds longer than it is."""
        now = time.monotonic()
        if now - self._last_prune < self.ttl_s / 4 or not self._prune_lock.acquire(blocking=False):
            return
        self._last_prune = now
        self.pruning = threading.Thread(target=self._prune, name="result-prune", daemon=True)
        self.pruning.start()

    def _prune(self) -> None:
        """Remove request folders older than twice the TTL (Gradio deletes the files after one TTL)."""
        try:
            cutoff = time.time() - 2 * self.ttl_s
            for entry in os.scandir(self.root):
                try:
                    if entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                        shutil.rmtree(entry.path, ignore_errors=True)
                except OSError:
                    continue
        finally:
            self._prune_lock.release()


def as_files(results: ResultFiles, names: Mapping[int, str]) -> Callable[[Callable], Callable]:
    """Decorator: the handler's image-array outputs at `names` come back as result files."""
    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs) -> Any:
            return results.outputs_as_files(fn(*args, **kwargs), names)

        return wrapper

    return decorate


class _LazyConfigValues(dict):
    """A session's per-component configs, computed on first use instead of for every new session.

    Gradio (6.31) builds the config of every component for each new session (~5-10 ms of event-loop
    time and ~90 KiB here), only to serve deep links; a value update computes its component's
    entry on demand anyway. Iterating (deep links) computes them all, as before.
    """

    def __init__(self, blocks_config, block_ids):
        super().__init__()
        self._blocks_config = blocks_config
        self._pending = list(block_ids)

    def _fill(self) -> None:
        """Compute the missing entries, keeping Gradio's order (the components' order)."""
        if not self._pending:
            return
        computed = dict(dict.items(self))
        dict.clear(self)
        for key in self._pending:
            dict.__setitem__(self, key, computed.pop(key) if key in computed else
                             self._blocks_config.config_for_block(key, [], self._blocks_config.blocks[key]))
        for key, value in computed.items():  # entries set for blocks added since
            dict.__setitem__(self, key, value)
        self._pending = []

    def __missing__(self, key):
        value = self._blocks_config.config_for_block(key, [], self._blocks_config.blocks[key])
        dict.__setitem__(self, key, value)
        return value

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or key in self._pending

    def items(self):
        self._fill()
        return super().items()

    def values(self):
        self._fill()
        return super().values()

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()


def lighten_gradio_sessions() -> bool:
    """Make Gradio's per-session state lazy (see `_LazyConfigValues`); only for the pinned Gradio."""
    import gradio
    from gradio import state_holder

    if not gradio.__version__.startswith("6.31."):
        log.info("Gradio %s: per-session state left as it is", gradio.__version__)
        return False
    if getattr(state_holder.SessionState, "_lightened", False):
        return True
    original = state_holder.SessionState.__init__

    def __init__(self, blocks) -> None:
        self.blocks_config = copy.copy(blocks.default_config)
        self.config_values = _LazyConfigValues(
            self.blocks_config, [k for k in self.blocks_config.blocks if k in blocks.blocks])
        self.state_data = {}
        self._state_ttl = {}
        self.is_closed = False
        self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600

    __init__.original = original  # for tests
    state_holder.SessionState.__init__ = __init__
    state_holder.SessionState._lightened = True
    return True


def lighten_gradio_queue(queue) -> bool:
    """Make Gradio's queue (6.31) stop doing work nobody here uses, per request and while idle.

    - After every request it rebuilds a pandas summary of up to its last 10,000 requests for its
      monitoring dashboard (11 ms of CPU per request at 1,000 requests, 30 ms at 10,000: a server
      that slows down as it runs). `launch` turns the dashboard off; the summary is never computed,
      and only the latest requests' records are kept.
    - Its dispatcher polls every 1 ms and its progress sender every 10 ms; every wake-up needs the
      interpreter lock, taking it from the workers. 5 ms and 50 ms add nothing noticeable to a
      request's wait (progress bars only show on videos).
    """
    if not hasattr(queue, "ANAYLTICS_CACHE_FREQUENCY"):  # (sic) Gradio's name for the setting
        import gradio

        log.info("Gradio %s: its queue left as it is", gradio.__version__)
        return False
    queue.ANAYLTICS_CACHE_FREQUENCY = sys.maxsize  # requests between two summaries
    queue.ANALYTICS_MAX_EVENTS = 100
    queue.sleep_when_free = 0.005
    queue.progress_update_sleep_when_free = 0.05
    return True


async def _no_login() -> None:
    return None


def skip_gradio_login_check(app) -> bool:
    """Without a login configured, answer Gradio's per-request login check on the event loop.

    Gradio guards its upload, file and API routes with a `login_check` dependency written as a plain
    function, so FastAPI runs it on a worker thread for every request (4 hand-offs per prediction,
    each waiting for the interpreter lock behind the model workers). With no login set up it always
    passes; FastAPI's documented `dependency_overrides` replaces it by a coroutine that does the same.
    """
    if getattr(app, "auth", None) is not None or getattr(app, "auth_dependency", None) is not None:
        return False
    routes = list(app.routes)
    for route in app.routes:  # FastAPI 0.165 keeps an included router's routes inside it
        routes += getattr(getattr(route, "original_router", None), "routes", [])
    checks = {route.endpoint for route in routes if getattr(route, "path", "").endswith("/login_check")}
    for check in checks:
        app.dependency_overrides[check] = _no_login
    if not checks:
        log.info("no Gradio login check found: left as it is")
    return bool(checks)
