"""Print the README's evaluation table for one or more bundles: `python scripts/report.py DIR [DIR...]`."""

import json
import sys
from pathlib import Path


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def main(folders: list[str]) -> None:
    rows = []
    for folder in folders:
        m = json.loads((Path(folder) / "metrics.json").read_text())
        c = json.loads((Path(folder) / "config.json").read_text())
        t, src, rob = m["test"], m["test"].get("per_source", {}), m.get("robustness", {})
        rows.append([
            f"`{c['architecture']}` {c['image_size']}²", f"{m['model']['parameters']:,}",
            f"{m['model']['flops_per_image'] / 1e6:,.0f} M", f"{c.get('epochs_run')} / {c['train_seconds'] / 60:.0f} min",
            fmt(t["accuracy"]), fmt(t["roc_auc"]), fmt(t["eer"]), fmt(t["ece"]),
            *(f"{fmt(src[s]['accuracy'])} / {fmt(src[s]['roc_auc'])}" if s in src else "n/a"
              for s in ("dfdc", "gan140k", "tpdne")),
            *(fmt(rob[k]["accuracy"]) if k in rob else "n/a" for k in ("jpeg_q50", "half_size")),
        ])
    head = ["model", "params", "FLOPs/img", "epochs / train time", "accuracy", "ROC AUC", "EER", "ECE",
            "dfdc acc / AUC", "gan140k acc / AUC", "tpdne acc / AUC", "acc @ JPEG q50", "acc @ half size"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["models/default"])
