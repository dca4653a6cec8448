"""How metrics are shown: one key list and one number format for the model card, the
Evaluation tab and the README table (`python scripts/report.py BUNDLE...`)."""

from __future__ import annotations

import json
from pathlib import Path

METRIC_KEYS = ("accuracy", "precision", "recall", "f1", "roc_auc", "eer", "ece")
README_SOURCES = ("dfdc", "gan140k", "tpdne", "celeba", "sdfd")


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def metric_rows(test: dict) -> str:
    return "\n".join(f"| {k} | {fmt(test.get(k))} |" for k in METRIC_KEYS)


def source_cell(row: dict | None) -> str:
    """acc / AUC for two-class sources; accuracy alone (recall or specificity) for one-class ones."""
    if row is None:
        return "n/a"
    return fmt(row["accuracy"]) if row.get("roc_auc") is None else f"{fmt(row['accuracy'])} / {fmt(row['roc_auc'])}"


def readme_table(folders: list[str | Path]) -> str:
    head = ["model", "params", "FLOPs/img", "epochs / train time", "accuracy", "ROC AUC", "EER", "ECE",
            *(f"{s} {'acc / AUC' if s in ('dfdc', 'gan140k', 'tpdne') else 'acc'}" for s in README_SOURCES),
            "acc @ JPEG q50", "acc @ half size"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for folder in folders:
        m = json.loads((Path(folder) / "metrics.json").read_text())
        c = json.loads((Path(folder) / "config.json").read_text())
        t, src, rob = m["test"], m["test"].get("per_source", {}), m.get("robustness", {})
        cells = [f"`{c['architecture']}` {c['image_size']}²", f"{m['model']['parameters']:,}",
                 f"{m['model']['flops_per_image'] / 1e6:,.0f} M",
                 f"{c.get('epochs_run')} / {c['train_seconds'] / 60:.0f} min",
                 fmt(t["accuracy"]), fmt(t["roc_auc"]), fmt(t["eer"]), fmt(t["ece"]),
                 *(source_cell(src.get(s)) for s in README_SOURCES),
                 *(fmt(rob[k]["accuracy"]) if k in rob else "n/a" for k in ("jpeg_q50", "half_size"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
