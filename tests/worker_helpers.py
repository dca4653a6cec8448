"""Handlers for test worker processes (`serving.WorkerPool` imports this module by name in each
worker: tests/ is put on its PYTHONPATH). Light on purpose: a worker starts in a fraction of a second."""

from __future__ import annotations

import os
import time

from deepfake_detector.errors import ImageError


def light_handlers(**_) -> dict:
    def sleep(seconds):
        time.sleep(seconds)
        return os.getpid()

    def refuse():
        raise ImageError("the file is empty (0 bytes)")

    def boom():
        raise RuntimeError("a bug")

    return {"pid": os.getpid, "sleep": sleep, "refuse": refuse, "boom": boom, "echo": lambda value: value}


def broken_handlers(**_) -> dict:
    raise FileNotFoundError("model.tflite is missing")
