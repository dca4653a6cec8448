"""How metrics are shown: one key list and one number format for the model card, the
Evaluation tab and the README table (`python scripts/report.py BUNDLE...`)."""

from __future__ import annotations

import json
from pathlib import Path

METRIC_KEYS = ("accuracy", "precision", "recall", "f1", "roc_auc", "eer", "ece")
README_SOURCES = ("dfdc", "gan140k", "tpdne", "celeba", "london", "sdfd", "sdfdfull")


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


SUMMARY_COMMAND = "python scripts/report.py --summary"


def _share(x) -> str:
    return "n/a" if x is None else f"{max(0.0, x):.1%}"  # no "-0.0%" from a rounded difference


def summary_rows(metrics: dict) -> list[tuple[str, str]]:
    """The README's headline figures of one bundle (Test split, served path), as (figure, value):
    each one number a newcomer can read without the rest of metrics.json."""
    test, robust = metrics.get("test", {}), metrics.get("robustness", {})
    trust = test.get("trust", {})
    cm = test.get("confusion_matrix", {})
    rows = [("Test ROC AUC", fmt(test.get("roc_auc"))),
            ("Test accuracy at the decision threshold", fmt(test.get("accuracy")))]
    if "all/real" in trust:  # verdicts by the served rules
        rows.append(("real Test pictures called fake", _share(trust["all/real"].get("wrong"))))
    elif cm.get("tn", 0) + cm.get("fp", 0):  # a bundle sealed before those were recorded
        rows.append(("real Test pictures at or above the threshold", _share(cm["fp"] / (cm["tn"] + cm["fp"]))))
    if "all/fake" in trust:
        rows.append(("fake Test pictures called fake", _share(trust["all/fake"].get("right"))))
    rows += [("Test verdicts that are \"uncertain\"", _share(test.get("uncertain_rate"))),
             ("confident verdicts that are right", _share(test.get("selective_accuracy")))]
    if test.get("real_composites"):
        group = test["real_composites"]
        rows.append((f"pictures of {group['faces']} real Test faces called fake", _share(group.get("called_fake"))))
    sources = {s: v["accuracy"] for s, v in test.get("per_source", {}).items() if v.get("accuracy") is not None}
    if sources:
        weakest = min(sources, key=sources.get)
        rows.append((f"weakest source's accuracy ({weakest})", fmt(sources[weakest])))
    rows.append(("calibration error (ECE)", fmt(test.get("ece"))))
    for key, what in (("jpeg_q50", "re-compressed at JPEG quality 50"), ("half_size", "at half size")):
        if key in robust:
            rows.append((f"Test accuracy {what}", fmt(robust[key].get("accuracy"))))
    return rows


def summary_table(folder: str | Path) -> str:
    """summary_rows of a bundle as README table rows: figure | value | the command that printed it."""
    metrics = json.loads((Path(folder) / "metrics.json").read_text())
    return "\n".join(f"| {figure} | {value} | `{SUMMARY_COMMAND}` |" for figure, value in summary_rows(metrics))


TRUST_COMMAND = "python scripts/trust_report.py"


def trust_table(metrics: dict) -> str:
    """Per source and class: the share of Test pictures called the right way, "uncertain" and called
    the wrong way by the served rules (for real pictures: false alarms)."""
    trust = metrics.get("test", {}).get("trust", {})
    if not trust:
        return ""
    lines = ["| source | class | n | right | uncertain | called the wrong way |", "|---|---|---|---|---|---|"]
    for key, row in trust.items():
        source, kind = key.split("/")
        lines.append(f"| {'**all**' if source == 'all' else source} | {kind} | {row['n']} | {_share(row['right'])} | "
                     f"{_share(row['uncertain'])} | {_share(row['wrong'])} |")
    group = metrics["test"].get("real_composites")
    if group:
        lines.append(f"| {group['faces']} real faces side by side | real | {group['n']} | "
                     f"{_share(1 - group['called_fake'] - group['uncertain'])} | {_share(group['uncertain'])} | "
                     f"{_share(group['called_fake'])} |")
    return "\n".join(lines)


def unfamiliarity_table(metrics: dict) -> str:
    """How well the unfamiliarity score separates each source from the rest when its statistics
    were fitted without it (Test, ROC AUC)."""
    left_out = metrics.get("test", {}).get("unfamiliarity_left_out", {})
    if not left_out:
        return ""
    return "\n".join(["| source left out of the statistics | ROC AUC, its faces vs the others' |", "|---|---|",
                      *(f"| {s} | {fmt(v)} |" for s, v in left_out.items())])
