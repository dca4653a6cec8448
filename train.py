"""Train a deepfake detector and write a model bundle: `python train.py --help` (or `deepfake-train`)."""

import sys

from deepfake_detector.training import main

if __name__ == "__main__":
    sys.exit(main())
