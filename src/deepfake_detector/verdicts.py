"""How calibrated scores become verdicts: one face, and a picture of several.

The rules are fitted on Validation when a bundle is sealed (`evaluation.evaluate_bundle`) and
stored in its metrics.json under "serving"; serving only applies them.

- `label` is the more probable class by the calibrated P(fake), and `confidence` its probability
  (so never below one half, and never at odds with the label).
- The decision threshold protects real people: it is set so that at most `max_false_alarm` of
  the real Validation pictures score at or above it.
- "uncertain": inside the band where Validation verdicts were right less than
  `verdict_min_precision` of the time, on the far side of the threshold from the label (a
  calibrated P(fake) of 0.7 under a threshold of 0.9: not proof either way), or for an
  unfamiliar face (ood.Unfamiliarity).
- A picture of n faces is as suspicious as its most suspicious face, so each added real face is
  another chance of a false alarm: the threshold for n faces is raised until the most suspicious
  of n real faces crosses it as rarely as one real face crosses the single-face threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_GROUP = 8  # group thresholds are fitted up to this many faces; larger groups use the last


@dataclass(frozen=True)
class FaceCall:
    label: str  # "fake" | "real": the more probable class
    verdict: str  # "fake" | "real" | "uncertain"
    confidence: float  # calibrated probability of `label`


@dataclass(frozen=True)
class DecisionRules:
    threshold: float  # one face: "fake" from here up
    band: tuple[float, float]  # [low, high): uncertain
    group_thresholds: tuple[float, ...] = ()  # index n-1: the threshold for a picture of n faces

    @classmethod
    def from_serving(cls, serving: dict) -> DecisionRules:
        threshold = float(serving.get("threshold", 0.5))
        band = serving.get("uncertain_band") or [threshold, threshold]
        return cls(threshold, (float(band[0]), float(band[1])),
                   tuple(float(t) for t in serving.get("group_thresholds") or ()))

    def threshold_for(self, n_faces: int) -> float:
        if not self.group_thresholds or n_faces <= 1:
            return self.threshold
        return max(self.threshold, self.group_thresholds[min(n_faces, len(self.group_thresholds)) - 1])

    def call(self, p_fake: float, n_faces: int = 1, unfamiliar: bool = False) -> FaceCall:
        label = "fake" if p_fake >= 0.5 else "real"
        confidence = p_fake if label == "fake" else 1.0 - p_fake
        if unfamiliar:
            return FaceCall(label, "uncertain", confidence)
        low, high = self.band
        if p_fake >= max(self.threshold_for(n_faces), high, 0.5):
            return FaceCall(label, "fake", confidence)
        if p_fake < min(self.threshold, low, 0.5):
            return FaceCall(label, "real", confidence)
        return FaceCall(label, "uncertain", confidence)


def picture_verdict(verdicts: list[str]) -> str:
    """A picture is fake if any face is, else uncertain if any face is, else real."""
    for verdict in ("fake", "uncertain"):
        if verdict in verdicts:
            return verdict
    return "real"


def fit_threshold(p: np.ndarray, labels: np.ndarray, max_false_alarm: float) -> float:
    """The lowest threshold at which at most `max_false_alarm` of the real Validation pictures score
    at or above it. (Holding every real source to that rate was measured too: one source whose real
    photos the model confuses with its fakes, FFHQ, then pushed the threshold to 0.997 and the
    fakes caught from 77% to 36% of Test; its false alarms are reported per source instead.)"""
    scores = np.sort(p[labels == 0])
    if len(scores) == 0:
        return 0.5
    allowed = int(np.floor(max_false_alarm * len(scores)))  # false alarms Validation may have
    # Just above the score of the (allowed + 1)-th most suspicious real picture.
    return float(min(1.0, np.nextafter(scores[len(scores) - 1 - allowed], 1.0)))


def fit_group_thresholds(p_real: np.ndarray, single_threshold: float, max_faces: int = MAX_GROUP) -> list[float]:
    """Thresholds for pictures of 1..max_faces faces with the false-alarm rate of one face.

    If one real face crosses `single_threshold` with rate a, the most suspicious of n independent
    real faces crosses t_n with rate a when each crosses it with rate 1 - (1 - a)^(1/n): t_n is
    that quantile of the real Validation scores (faces of one picture share its camera and
    lighting, so independence makes the rule stricter than needed, not looser)."""
    p_real = np.sort(np.asarray(p_real, np.float64))
    if len(p_real) == 0:
        return [single_threshold] * max_faces
    rate = float(np.mean(p_real >= single_threshold))
    thresholds = [single_threshold]
    for n in range(2, max_faces + 1):
        per_face = 1.0 - (1.0 - rate) ** (1.0 / n)
        q = float(np.quantile(p_real, 1.0 - per_face)) if per_face > 0 else float(p_real[-1])
        thresholds.append(round(max(thresholds[-1], q), 6))
    return thresholds
