"""Evaluation: calibration and threshold from Validation, honest metrics on Test, and the plots.

Scores come from the `Predictor` - the serving path with face cropping - so the numbers in a
bundle are the numbers users get.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from .atomic import atomic_path
from .config import TrainConfig
from .data import source_of
from .ood import UNFAMILIARITY_FILE

log = logging.getLogger(__name__)


# -- numbers -------------------------------------------------------------------------------------
def fit_calibration(raw: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Platt scaling on the model's logit: p = sigmoid(a * logit + b), fitted on Validation."""
    raw = np.clip(raw, 1e-7, 1 - 1e-7)
    logit = np.log(raw / (1 - raw)).reshape(-1, 1)
    if len(set(labels.tolist())) < 2:
        return {"a": 1.0, "b": 0.0}
    # Mild L2 regularisation: on a perfectly separated Validation set an unregularised fit sends
    # the slope to infinity and every answer to 0% or 100%.
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(logit, labels)
    return {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def choose_threshold(p: np.ndarray, labels: np.ndarray) -> float:
    """Threshold maximising balanced accuracy on Validation (never chosen on Test)."""
    candidates = np.unique(np.concatenate([p, [0.5]]))
    best, best_score = 0.5, -1.0
    for t in candidates:
        pred = p >= t
        tpr = pred[labels == 1].mean() if (labels == 1).any() else 0.0
        tnr = (~pred[labels == 0]).mean() if (labels == 0).any() else 0.0
        score = (tpr + tnr) / 2 - 1e-6 * abs(t - 0.5)  # ties go to the threshold nearest 0.5
        if score > best_score:
            best, best_score = float(t), score
    return best


def equal_error_rate(labels: np.ndarray, p: np.ndarray) -> float:
    if len(set(labels.tolist())) < 2:
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, p)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def expected_calibration_error(labels: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE of the shown confidence: |accuracy - confidence| averaged over confidence bins."""
    pred = (p >= 0.5).astype(int)
    conf = np.where(pred == 1, p, 1 - p)
    correct = (pred == labels).astype(float)
    edges = np.linspace(0.5, 1.0, bins // 2 + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf >= lo) & ((conf < hi) | (hi == 1.0))
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def binary_metrics(labels: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    labels = np.asarray(labels).astype(int)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    both = len(set(labels.tolist())) == 2
    return {
        "n": int(len(labels)),
        "accuracy": float((tp + tn) / len(labels)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
        "roc_auc": float(roc_auc_score(labels, p)) if both else None,
        "eer": equal_error_rate(labels, p) if both else None,
        "ece": expected_calibration_error(labels, p),
        "confusion_matrix": {"labels": ["real", "fake"], "matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
                             "tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def choose_uncertain_band(p: np.ndarray, labels: np.ndarray, threshold: float,
                          min_precision: float = TrainConfig.verdict_min_precision) -> list[float]:
    """[low, high) around the threshold where a verdict would be right less than `min_precision`
    of the time (Validation).

    The precision of a verdict at score s is local: the share of fakes among Validation images
    scored near s, estimated by isotonic regression (monotone in the score). A "fake" verdict at s
    is right with that share, a "real" one with its complement; where neither reaches
    `min_precision` the verdict is "uncertain". A cumulative rule ("90% of all fake verdicts
    above t are right") would shrink to nothing as the model improves, yet scores next to the
    threshold stay coin flips.
    """
    scores = np.unique(p)
    if len(scores) < 2 or len(set(labels.tolist())) < 2:
        return [threshold, threshold]
    local = IsotonicRegression(out_of_bounds="clip").fit(p, labels).predict(scores)
    unsure = np.flatnonzero((local > 1 - min_precision) & (local < min_precision))
    if len(unsure) == 0:
        return [threshold, threshold]
    first, last = unsure[0], unsure[-1]
    # Edges half-way to the nearest confident Validation score on each side.
    low = (scores[first - 1] + scores[first]) / 2 if first > 0 else float(scores[0])
    high = (scores[last] + scores[last + 1]) / 2 if last + 1 < len(scores) else float(scores[-1]) + 1e-6
    # Rounded for metrics.json, yet always holding the threshold itself.
    return [min(round(float(low), 6), threshold), max(round(float(high), 6), threshold)]


def selective(labels: np.ndarray, p: np.ndarray, threshold: float, band: list[float]) -> dict:
    """How often the verdict is "uncertain", and how accurate the confident verdicts are."""
    uncertain = (p >= band[0]) & (p < band[1])
    confident = ~uncertain
    correct = (p >= threshold).astype(int) == labels
    return {"uncertain_rate": float(uncertain.mean()) if len(p) else None,
            "selective_accuracy": float(correct[confident].mean()) if confident.any() else None}


def per_source(paths: list, labels: np.ndarray, p: np.ndarray, threshold: float,
               band: list[float] | None = None) -> dict:
    """Metrics per file-name prefix. One-class sources get accuracy only (fake recall or real
    specificity at the threshold), since ROC AUC is undefined within them."""
    sources = np.asarray([source_of(x) for x in paths])
    out = {}
    for s in sorted(set(sources.tolist())):
        mask = sources == s
        y, ps = labels[mask], p[mask]
        if len(set(y.tolist())) == 2:
            m = binary_metrics(y, ps, threshold)
            row = {k: m[k] for k in ("n", "accuracy", "roc_auc", "eer", "precision", "recall")}
            row["classes"] = "both"
        else:
            correct = (ps >= threshold).astype(int) == y
            row = {"n": int(mask.sum()), "accuracy": float(correct.mean()), "roc_auc": None, "eer": None,
                   "classes": "fake only (accuracy = fake recall)" if y[0] == 1 else
                   "real only (accuracy = real specificity)"}
        if band is not None:
            row.update(selective(y, ps, threshold, band))
        out[s] = row
    return out if len(out) > 1 else {}


# -- scoring through the serving path ----------------------------------------------------------
def jpeg_degrade(quality: int):
    def degrade(rgb: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return degrade


def half_size_degrade(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    im = Image.fromarray(rgb).resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BILINEAR)
    return np.asarray(im.resize((w, h), Image.Resampling.BILINEAR))


def score_files(predictor, paths: list, degrade=None, batch_size: int = 64, progress: str | None = None,
                features: bool = False):
    """Raw (uncalibrated) model scores for image files through the predictor's own preprocessing;
    with `features`, also the pooled features of each file's deciding face (None without them)."""
    from .errors import ImageError

    scores = np.zeros(len(paths))
    feats: np.ndarray | None = None
    ok = np.ones(len(paths), dtype=bool)
    for start in range(0, len(paths), batch_size):
        idx = range(start, min(start + batch_size, len(paths)))
        prepared = predictor.prepare_many([paths[i] for i in idx], degrade=degrade)
        ok[[i for i, item in zip(idx, prepared) if isinstance(item, ImageError)]] = False
        good = [i for i in idx if ok[i]]
        if good:  # a picture scores as its most suspicious face, as served
            items = [prepared[i - start] for i in good]
            raw, f = predictor.scores_and_features(np.concatenate([item.inputs for item in items]))
            bounds = np.cumsum([0] + [len(item.inputs) for item in items])
            deciding = [a + int(np.argmax(raw[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]
            scores[good] = raw[deciding]
            if features and f is not None:
                if feats is None:
                    feats = np.zeros((len(paths), f.shape[1]), np.float32)
                feats[good] = f[deciding]
        if progress and (start // batch_size) % 5 == 0:
            log.info("%s: %d/%d", progress, idx[-1] + 1, len(paths))
    return (scores, ok, feats) if features else (scores, ok)


def evaluate_bundle(predictor, val_paths, val_labels, test_paths, test_labels, robustness: bool = True,
                    min_precision: float = TrainConfig.verdict_min_precision,
                    max_false_alarm: float = TrainConfig.max_false_alarm,
                    unfamiliar_keep: float = TrainConfig.unfamiliar_keep, train_paths=None, composites: int = 300):
    """Fit calibration and the decision rules on Validation (threshold for false alarms, uncertain
    band, group thresholds, unfamiliarity cut-off on `train_paths`' features), then measure Test
    (clean, degraded, 3-face composites of real faces). Returns (metrics, unfamiliarity or None);
    `metrics["serving"]` holds what the served model needs. The predictor adopts the rules."""
    from .inference import calibrated
    from .ood import Unfamiliarity
    from .verdicts import DecisionRules, fit_group_thresholds, fit_threshold

    val_raw, val_ok, val_feats = score_files(predictor, val_paths, progress="scoring Validation", features=True)
    y_val = val_labels[val_ok]
    val_sources = [source_of(x) for x, k in zip(val_paths, val_ok) if k]
    calibration = fit_calibration(val_raw[val_ok], y_val)
    val_p = calibrated(val_raw[val_ok], **calibration)
    threshold = fit_threshold(val_p, y_val, max_false_alarm)
    band = choose_uncertain_band(val_p, y_val, threshold, min_precision)
    serving = {"threshold": threshold, "calibration": calibration, "uncertain_band": band,
               "group_thresholds": fit_group_thresholds(val_p[y_val == 0], threshold),
               "max_false_alarm": max_false_alarm, "verdict_min_precision": min_precision,
               "preprocessing": "BlazeFace faces framed at FaceSettings.crop_scale -> square resize -> model; "
                                "a picture's verdict is its most suspicious face's, by verdicts.DecisionRules"}

    unfamiliarity = None
    if val_feats is not None and train_paths:
        _, train_ok, train_feats = score_files(predictor, train_paths, progress="features of Train", features=True)
        bounds = predictor.feature_bounds
        unfamiliarity = Unfamiliarity.fit(train_feats[train_ok], val_feats[val_ok], bounds, keep=unfamiliar_keep)
        serving["unfamiliarity"] = {"parts": len(bounds), "cutoff": unfamiliarity.cutoff, "keep": unfamiliar_keep,
                                    "train_faces": int(train_ok.sum())}
    predictor.adopt(serving, unfamiliarity)
    rules = DecisionRules.from_serving(serving)

    test_raw, test_ok, test_feats = score_files(predictor, test_paths, progress="scoring Test", features=True)
    y = test_labels[test_ok]
    kept = [p for p, k in zip(test_paths, test_ok) if k]
    test_p = calibrated(test_raw[test_ok], **calibration)
    unfamiliar = (unfamiliarity.score(test_feats[test_ok]) > unfamiliarity.cutoff if unfamiliarity is not None
                  else np.zeros(len(y), bool))
    verdicts = np.asarray([rules.call(p, 1, u).verdict for p, u in zip(test_p, unfamiliar)])
    test = binary_metrics(y, test_p, threshold)
    test["ece_uncalibrated"] = expected_calibration_error(y, np.clip(test_raw[test_ok], 0, 1))
    test.update(served_selective(y, verdicts))
    test["per_source"] = per_source(kept, y, test_p, threshold, band)
    test["trust"] = trust(kept, y, verdicts)
    test["unfamiliar_rate"] = float(unfamiliar.mean())
    result = {"serving": serving, "validation": binary_metrics(y_val, val_p, threshold), "test": test,
              "roc": _roc_points(y, test_p)}
    readable_reals = [p for p, ok, lab in zip(test_paths, test_ok, test_labels) if ok and lab == 0]
    if composites and len(readable_reals) >= 3:
        result["test"]["real_composites"] = composite_false_alarms(predictor, readable_reals, count=composites)
    if unfamiliarity is not None:
        result["test"]["unfamiliarity_left_out"] = left_out_separation(
            train_feats[train_ok], [source_of(x) for x, k in zip(train_paths, train_ok) if k],
            val_feats[val_ok], val_sources, test_feats[test_ok], [source_of(x) for x in kept], bounds)
    if robustness:
        result["robustness"] = {}
        for name, fn in (("jpeg_q50", jpeg_degrade(50)), ("half_size", half_size_degrade)):
            raw, ok = score_files(predictor, test_paths, degrade=fn, progress=f"scoring Test ({name})")
            p = calibrated(raw[ok], **calibration)
            m = binary_metrics(test_labels[ok], p, threshold)
            result["robustness"][name] = {
                "accuracy": m["accuracy"], "roc_auc": m["roc_auc"],
                "accuracy_drop": test["accuracy"] - m["accuracy"],
                "per_source": per_source([x for x, k in zip(test_paths, ok) if k], test_labels[ok], p, threshold),
            }
    return result, unfamiliarity


def served_selective(labels: np.ndarray, verdicts: np.ndarray) -> dict:
    """How often the served verdict is "uncertain" (band, threshold side or unfamiliarity), and how
    accurate the others are."""
    confident = verdicts != "uncertain"
    truth = np.where(labels == 1, "fake", "real")
    return {"uncertain_rate": float((~confident).mean()) if len(verdicts) else None,
            "selective_accuracy": float((verdicts[confident] == truth[confident]).mean()) if confident.any() else None}


def trust(paths: list, labels: np.ndarray, verdicts: np.ndarray) -> dict:
    """Per source and overall: the share of pictures called the right way, "uncertain", and called
    the wrong way (for a real picture: a false alarm), by the served rules."""
    sources = np.asarray([source_of(x) for x in paths])
    truth = np.where(labels == 1, "fake", "real")

    def shares(mask):
        n = int(mask.sum())
        right = float((verdicts[mask] == truth[mask]).mean()) if n else None
        uncertain = float((verdicts[mask] == "uncertain").mean()) if n else None
        return {"n": n, "right": right, "uncertain": uncertain,
                "wrong": None if right is None else max(0.0, round(1.0 - right - uncertain, 6))}

    out = {f"{s}/{kind}": shares((sources == s) & (truth == kind))
           for s in sorted(set(sources.tolist())) for kind in ("real", "fake") if ((sources == s) & (truth == kind)).any()}
    out["all/real"], out["all/fake"] = shares(truth == "real"), shares(truth == "fake")
    return out


def composite(paths: list, height: int = 360, margin: float = 0.3) -> np.ndarray:
    """The pictures side by side, each scaled to one height and given a margin of its own edges
    drawn outwards (as people stand in a group photo with some background around each face: butted
    face crops would put a neighbour inside each face's framing, and a flat backdrop around a tight
    crop was measured to hide a third of the faces from the detector and to look unfamiliar)."""
    import cv2

    inner = round(height / (1 + 2 * margin))
    pad = (height - inner) // 2
    panels = []
    for path in paths:
        im = Image.open(path).convert("RGB")
        scaled = np.asarray(im.resize((max(1, round(im.width * inner / im.height)), inner), Image.Resampling.BILINEAR))
        panels.append(cv2.copyMakeBorder(scaled, pad, height - inner - pad, pad, pad, cv2.BORDER_REPLICATE))
    return np.concatenate(panels, axis=1)


def composite_false_alarms(predictor, real_paths: list, count: int = 300, faces: int = 3, seed: int = 0) -> dict:
    """How often a picture of `faces` real Test faces side by side is called fake (and uncertain),
    through the whole served path: face search, group rule, unfamiliarity."""
    rng = np.random.default_rng(seed)
    verdicts, found = [], []
    for k in range(count):
        picked = [real_paths[i] for i in rng.choice(len(real_paths), faces, replace=False)]
        pred = predictor.predict(composite(picked))
        verdicts.append(pred.verdict)
        found.append(len(pred.faces) if pred.framing == "faces" else 0)
        if (k + 1) % 100 == 0:
            log.info("%d-face composites: %d/%d", faces, k + 1, count)
    verdicts = np.asarray(verdicts)
    return {"n": count, "faces": faces, "called_fake": float((verdicts == "fake").mean()),
            "uncertain": float((verdicts == "uncertain").mean()),
            "all_faces_found": float(np.mean(np.asarray(found) == faces))}


def left_out_separation(train_feats: np.ndarray, train_sources: list, val_feats: np.ndarray, val_sources: list,
                        test_feats: np.ndarray, test_sources: list, bounds: list[int]) -> dict:
    """Per source: fit the unfamiliarity statistics without it (Train and Validation; no
    retraining), then the ROC AUC of its Test faces' scores against the other sources' Test faces
    (1.0: every one of its faces is less familiar than every other face)."""
    from .ood import Unfamiliarity

    train_sources, val_sources, test_sources = (np.asarray(s) for s in (train_sources, val_sources, test_sources))
    out = {}
    for source in sorted(set(test_sources.tolist())):
        if not (train_sources != source).any() or (test_sources == source).all():
            continue
        u = Unfamiliarity.fit(train_feats[train_sources != source], val_feats[val_sources != source], bounds)
        out[source] = float(roc_auc_score(test_sources == source, u.score(test_feats)))
    return out


def _roc_points(labels, p, n: int = 101) -> dict:
    if len(set(labels.tolist())) < 2:
        return {}
    fpr, tpr, _ = roc_curve(labels, p)
    grid = np.linspace(0, 1, n)
    return {"fpr": grid.round(4).tolist(), "tpr": np.interp(grid, fpr, tpr).round(4).tolist()}


# -- plots -----------------------------------------------------------------------------------------
def _save(fig, path: Path) -> None:
    with atomic_path(path) as staging:
        fig.savefig(staging, dpi=110, bbox_inches="tight", format="png")


def plot_all(metrics: dict, history: dict[str, list[float]], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []

    cm = np.asarray(metrics["test"]["confusion_matrix"]["matrix"])
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks([0, 1], ["real", "fake"]), ax.set_yticks([0, 1], ["real", "fake"])
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.set_title(f"Test confusion matrix (threshold {metrics['serving']['threshold']:.2f})")
    _save(fig, folder / "confusion_matrix.png"), plt.close(fig)
    written.append(folder / "confusion_matrix.png")

    if metrics.get("roc"):
        fig, ax = plt.subplots(figsize=(4, 3.6))
        ax.plot(metrics["roc"]["fpr"], metrics["roc"]["tpr"], label=f"AUC {metrics['test']['roc_auc']:.3f}")
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.set_xlabel("false positive rate"), ax.set_ylabel("true positive rate")
        ax.set_title("Test ROC curve"), ax.legend(loc="lower right")
        _save(fig, folder / "roc_curve.png"), plt.close(fig)
        written.append(folder / "roc_curve.png")

    if history.get("loss"):
        epochs = np.arange(1, len(history["loss"]) + 1)
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
        for ax, key in zip(axes, ("accuracy", "loss")):
            ax.plot(epochs, history.get(key, []), "o-", label="train")
            if history.get(f"val_{key}"):
                ax.plot(epochs, history[f"val_{key}"], "o-", label="validation")
            ax.set_xlabel("epoch"), ax.set_title(key), ax.legend()
        _save(fig, folder / "training_curves.png"), plt.close(fig)
        written.append(folder / "training_curves.png")
    return written


# -- sealing a bundle ----------------------------------------------------------------------------
def feature_sample(train, seed: int, per_source: int = 800) -> list:
    """Train pictures whose features the unfamiliarity statistics hold: up to `per_source` of each
    source, so that a small source is as present as a large one."""
    rng = np.random.default_rng(seed)
    sources = np.asarray(train.sources)
    picked = []
    for source in sorted(set(sources.tolist())):
        idx = np.flatnonzero(sources == source)
        picked += sorted(rng.choice(idx, min(per_source, len(idx)), replace=False).tolist())
    return [train.paths[i] for i in picked]


def seal(staging: Path, out: Path, data_splits: dict, robustness: bool = True, keep: dict | None = None) -> dict:
    """The one way a bundle is finished: evaluate through the serving path, plot, write metrics and
    the model card, then write the manifest and move the folder into place. Returns the metrics."""
    from . import bundle, card
    from .inference import Predictor

    from .export import QUANTIZED_TFLITE, choose_tflite

    val, test = data_splits["Validation"], data_splits["Test"]
    keep = dict(keep or {})
    if (staging / QUANTIZED_TFLITE).is_file():  # chosen on Validation: Test stays held out
        aucs = []
        for name in ("model.tflite", QUANTIZED_TFLITE):
            raw, ok = score_files(Predictor(staging, verify=False, tflite=name), val.paths,
                                  progress=f"scoring Validation with {name}")
            aucs.append(binary_metrics(val.labels[ok], raw[ok], 0.5)["roc_auc"])
        record = choose_tflite(staging, *aucs)
        keep.setdefault("model", {}).update(quantization=record, tflite_bytes=record["tflite_bytes"])
        log.info("TFLite served: %s", record)
    predictor = Predictor(staging, verify=False, source=f"bundle {out}")
    config = bundle.read_json(staging, "config.json")
    defaults = TrainConfig()
    metrics, unfamiliarity = evaluate_bundle(
        predictor, val.paths, val.labels, test.paths, test.labels, robustness=robustness,
        min_precision=config.get("verdict_min_precision", defaults.verdict_min_precision),
        max_false_alarm=config.get("max_false_alarm", defaults.max_false_alarm),
        unfamiliar_keep=config.get("unfamiliar_keep", defaults.unfamiliar_keep),
        train_paths=feature_sample(data_splits["Train"], config.get("seed", 0)) if "Train" in data_splits else None)
    if unfamiliarity is not None:
        unfamiliarity.save(staging / UNFAMILIARITY_FILE)
    else:
        (staging / UNFAMILIARITY_FILE).unlink(missing_ok=True)
    metrics.update(keep)
    plot_all(metrics, bundle.read_history(staging / "history.csv"), staging / "plots")
    bundle.write_json(staging / "metrics.json", metrics)
    card.write_card(staging)
    bundle.finalize(staging, out)
    return metrics


def reevaluate(bundle_dir: str | Path, data_dir: str | Path, robustness: bool = True,
               quantize: bool = False) -> dict:
    """Re-measure a bundle with the current serving code; rewrite metrics, plots, card, manifest.

    `quantize`: rewrite the TFLite copies from model.keras and serve the float16 one if it keeps
    Validation AUC (see export)."""
    import shutil

    from . import bundle
    from .data import scan

    bundle_dir = Path(bundle_dir)
    bundle.verify(bundle_dir)
    staging = bundle_dir.with_name(bundle_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(bundle_dir, staging)
    old = bundle.read_json(staging, "metrics.json")
    if quantize:
        from .export import add_quantized

        add_quantized(staging, int(bundle.read_json(staging, "config.json")["image_size"]))
    return seal(staging, bundle_dir, scan(data_dir), robustness,
                keep={k: old[k] for k in ("model", "best_epoch") if k in old})


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from .errors import DetectorError

    parser = argparse.ArgumentParser(prog="python -m deepfake_detector.evaluation",
                                     description="Re-evaluate a bundle on a dataset in the Kaggle layout.")
    parser.add_argument("bundle_dir")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--no-robustness", action="store_true", help="skip the JPEG/half-size Test passes")
    parser.add_argument("--quantize", action="store_true",
                        help="rewrite the TFLite copies; serve the float16 one if Validation AUC drops by at "
                             "most 0.005")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        m = reevaluate(args.bundle_dir, args.data_dir, robustness=not args.no_robustness, quantize=args.quantize)
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t = m["test"]
    print(f"test accuracy {t['accuracy']:.3f}, ROC AUC {t['roc_auc']:.3f}, threshold {m['serving']['threshold']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
