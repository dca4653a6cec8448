"""Gradio app (Hugging Face Space entry point): `python app.py`.

Serves the model from DEEPFAKE_MODEL_REPO on the Hub when set and reachable, else the bundled
models/default. Listens on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860).
"""

import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from deepfake_detector.ui import launch  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(launch(os.environ))
