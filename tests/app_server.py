"""Start `python app.py` on 127.0.0.1 in a subprocess for API and browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUSY = "The detector is busy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(bundle: Path, log_file: Path, extra_env: dict | None = None, timeout: float = 120):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFAKE_")}
    env.update({"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                "DEEPFAKE_BUNDLED_MODEL": str(bundle), "GRADIO_ANALYTICS_ENABLED": "False",
                "PYTHONUNBUFFERED": "1", **(extra_env or {})})
    with open(log_file, "w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited with {proc.returncode}:\n{log_file.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"app did not start in {timeout}s:\n{log_file.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def predict_until_answered(client, *args, api_name: str = "/predict", patience_s: float = 120, pause_s: float = 0.5):
    """`client.predict(*args)`, called again after a pause while the app says it is busy, as the
    message asks callers to. Whether a burst is told 'busy' depends on how fast the machine is at
    that moment (the gate's estimate is measured); what a caller finally gets must not. Returns the
    answer and how many times the caller was told 'busy'; any other error is raised."""
    deadline = time.monotonic() + patience_s
    refusals = 0
    while True:
        try:
            return client.predict(*args, api_name=api_name), refusals
        except Exception as exc:  # noqa: BLE001 - gradio_client raises AppError; anything else is a failure
            if BUSY not in str(exc) or time.monotonic() > deadline:
                raise
            refusals += 1
            time.sleep(pause_s)
