"""Which model the app and the CLI serve: the one place that decides, verifies and logs it.

The Hub repo in DEEPFAKE_MODEL_REPO when it pulls and verifies (hub.py), else the bundled
`models/default` (or DEEPFAKE_BUNDLED_MODEL); a Hub bundle that the Predictor refuses also
falls back to the bundled one. The reason for a fallback is logged here once (a warning when
a Hub repo was configured) and kept on the Predictor for the Evaluation tab.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from . import bundle, hub
from .errors import DetectorError
from .imaging import DEFAULT_LIMITS, InputLimits
from .inference import Predictor

log = logging.getLogger(__name__)


def load_served_predictor(limits: InputLimits = DEFAULT_LIMITS) -> Predictor:
    resolved = hub.resolve_model()
    configured = bool(os.environ.get(hub.REPO_ENV, "").strip())
    reason = resolved.fallback_reason
    try:
        # A pulled bundle was verified by hub.py; anything else is verified here (once either way).
        predictor = Predictor(resolved.folder, source=resolved.source, verify=not resolved.verified,
                              limits=limits)
    except Exception as exc:  # noqa: BLE001 - any failure of a Hub bundle means: serve the bundled one
        bundled = bundle.bundled_model_dir()
        if Path(resolved.folder).resolve() == bundled.resolve():
            if isinstance(exc, DetectorError):
                raise
            raise DetectorError(f"the bundled model at {bundled} could not be loaded "
                                f"({type(exc).__name__}: {exc})") from exc
        reason = f"model from {resolved.source} refused: {exc}"
        predictor = Predictor(bundled, source=f"bundled {bundled.name}", limits=limits)
    predictor.fallback_reason = reason
    if reason:
        log.log(logging.WARNING if configured else logging.INFO, "serving the bundled model: %s", reason)
    return predictor
