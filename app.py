"""Gradio app (Hugging Face Space entry point): `python app.py`.

Serves the model from DEEPFAKE_MODEL_REPO on the Hub when set and reachable, else the bundled
models/default. Listens on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860).
"""

import sys

from deepfake_detector.ui import main

if __name__ == "__main__":
    sys.exit(main())
