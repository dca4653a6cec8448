"""deepfake-detector: tell whether a face image is real or a deepfake, with a calibrated score."""

__version__ = "0.1.0"
