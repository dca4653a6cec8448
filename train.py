"""Train a deepfake detector and write a model bundle: `python train.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from deepfake_detector.training import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
