"""Cold start of the app: seconds from `python app.py` to the page and to the first API answer.

    python benchmarks/bench_startup.py [--quick] [--model DIR] [--json OUT]

A Space restarts cold after every sleep, so this is the wait its first visitor sees. Each run
spawns app.py on a free local port (bundled model from --model, no Hub repo), polls "/" until
HTTP 200, then calls the /predict endpoint with gradio_client until it answers; a few more
calls give the warm API latency. Gradio analytics are off: there is no network to reach.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

import _common as bench  # first: puts src/ on sys.path

START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(model: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DEEPFAKE_MODEL_REPO", None)
    env.update({"GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
                "DEEPFAKE_BUNDLED_MODEL": str(model), "GRADIO_ANALYTICS_ENABLED": "False",
                "PYTHONUNBUFFERED": "1"})
    return env


def wait_for(probe, proc: subprocess.Popen, started: float, log: Path, what: str):
    """Call `probe` until it returns a value; fail if the app dies or takes too long."""
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with code {proc.returncode} before {what}; its log:\n"
                             + tail(log))
        if time.perf_counter() - started > START_TIMEOUT_S:
            raise SystemExit(f"app.py did not reach {what} within {START_TIMEOUT_S:.0f} s; its log:\n"
                             + tail(log))
        try:
            return probe()
        except Exception:  # noqa: BLE001 - not up yet: connection refused, 502, handshake errors
            time.sleep(0.05)


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        if response.status != 200:
            raise urllib.error.HTTPError(url, response.status, "not ready", response.headers, None)
    return True


def stop(proc: subprocess.Popen) -> None:
    """Stop the app and anything it started (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def server_family(pid: int) -> list[int]:
    """The app's process and its worker processes (its children)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return [pid] + sorted(kids)


def cold_start(model: Path, image: Path, warm_calls: int, workdir: Path, run: int) -> dict:
    from gradio_client import Client, handle_file

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = workdir / f"app-{run}.log"
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=bench.REPO, env=app_env(model, port),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: http_ok(url), proc, started, log, "HTTP 200 on /")
        t_http = time.perf_counter() - started
        client = wait_for(lambda: Client(url, verbose=False), proc, started, log, "an API connection")
        answer = client.predict(handle_file(str(image)), api_name="/predict")  # up: errors are real
        t_answer = time.perf_counter() - started
        warm = bench.time_calls(lambda: client.predict(handle_file(str(image)), api_name="/predict"),
                                warm_calls, warmup=0)
        rss = bench.process_memory_mb(proc.pid, "VmHWM")  # the app's own peak, read before it is stopped
        workers = [bench.process_memory_mb(p, "VmHWM") for p in server_family(proc.pid)[1:]]
    finally:
        stop(proc)
    result = answer[0] if isinstance(answer, (list, tuple)) else answer
    return {"seconds_to_http_200": round(t_http, 2), "seconds_to_first_answer": round(t_answer, 2),
            "warm_predict": bench.latency(warm), "app_peak_rss_mb": rss,
            "worker_peak_rss_mb": [w for w in workers if w is not None],
            "first_answer": {k: result.get(k) for k in ("label", "p_fake", "face_found")}
            if isinstance(result, dict) else str(result)[:200]}


def main() -> None:
    args = bench.parse_args("startup", __doc__.splitlines()[0])
    if not (bench.REPO / "app.py").is_file():
        sys.exit(f"no app.py in {bench.REPO}: nothing to start")
    model = bench.require_bundle(args.model)
    for key in ("NO_PROXY", "no_proxy"):  # the client must reach the local app directly
        os.environ[key] = ",".join(filter(None, [os.environ.get(key), "127.0.0.1", "localhost"]))
    runs, warm_calls = (1, 3) if args.quick else (3, 20)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        image = workdir / "photo.jpg"
        image.write_bytes(bench.photo_jpeg())
        starts = [cold_start(model, image, warm_calls, workdir, run) for run in range(runs)]
    http = [s["seconds_to_http_200"] for s in starts]
    first = [s["seconds_to_first_answer"] for s in starts]
    warm = [s["warm_predict"]["p50_ms"] for s in starts]
    results = {"model_dir": str(model), "runs": starts,
               "median_seconds_to_http_200": round(float(np.median(http)), 2),
               "median_seconds_to_first_answer": round(float(np.median(first)), 2)}
    bench.print_table(f"Cold start of app.py ({runs} run(s), model {model})", [
        ("spawn -> HTTP 200 on /", f"{results['median_seconds_to_http_200']:.2f} s (median; runs: "
                                   f"{', '.join(f'{t:.2f}' for t in http)})"),
        ("spawn -> first /predict answer", f"{results['median_seconds_to_first_answer']:.2f} s (median; runs: "
                                           f"{', '.join(f'{t:.2f}' for t in first)})"),
        ("warm /predict via gradio_client", f"p50 {float(np.median(warm)):.1f} ms "
                                            f"({warm_calls} calls per run, 1024x768 JPEG)"),
        ("app peak RSS", f"{starts[-1]['app_peak_rss_mb']} MB (web server); worker processes "
                         f"{', '.join(f'{w} MB' for w in starts[-1]['worker_peak_rss_mb']) or 'none'}"),
        ("first answer", str(starts[0]["first_answer"])),
    ])
    bench.write_results(args.json, "startup", args.quick, results)


if __name__ == "__main__":
    main()
