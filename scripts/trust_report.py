"""How far a bundle can be trusted on real people's pictures: `python scripts/trust_report.py [DIR]`.

Prints, from the bundle's metrics.json (written when it was sealed: Test split, served path), the
share of pictures called right / uncertain / the wrong way per source, pictures of three real
faces side by side, how well unfamiliar sources are flagged, and each target of the trust issue
met or missed; writes the same as JSON (--json)."""

import argparse
import json
import sys
from pathlib import Path

from deepfake_detector.report import trust_table, unfamiliarity_table

TARGETS = "real sources: called fake <= 2%, right >= 90%; 3 real faces: called fake <= 2%; fakes: right >= 85% " \
          "per source; ROC AUC >= 0.975; ECE <= 0.02; unfamiliarity AUROC >= 0.8 per left-out source"


def targets(metrics: dict) -> list[tuple[str, float | None, bool]]:
    test = metrics["test"]
    rows = []
    for key, row in test.get("trust", {}).items():
        source, kind = key.split("/")
        if source == "all":
            continue
        if kind == "real":
            rows += [(f"{source} real called fake <= 2%", row["wrong"], row["wrong"] <= 0.02),
                     (f"{source} real right >= 90%", row["right"], row["right"] >= 0.90)]
        else:
            rows.append((f"{source} fake right >= 85%", row["right"], row["right"] >= 0.85))
    group = test.get("real_composites")
    if group:
        rows.append(("3 real faces called fake <= 2%", group["called_fake"], group["called_fake"] <= 0.02))
    rows += [("Test ROC AUC >= 0.975", test["roc_auc"], test["roc_auc"] >= 0.975),
             ("ECE <= 0.02", test["ece"], test["ece"] <= 0.02)]
    rows += [(f"unfamiliarity, {s} left out: AUROC >= 0.8", v, v >= 0.8)
             for s, v in test.get("unfamiliarity_left_out", {}).items()]
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", default="models/default")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    try:
        metrics = json.loads((Path(args.bundle) / "metrics.json").read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"trust_report: {exc}")
    if "trust" not in metrics.get("test", {}):
        sys.exit(f"trust_report: {args.bundle} was sealed before trust figures were recorded; "
                 f"re-evaluate it: python -m deepfake_detector.evaluation {args.bundle} --data-dir DIR")
    print(trust_table(metrics), "\n")
    print(unfamiliarity_table(metrics), "\n")
    rows = targets(metrics)
    for name, value, met in rows:
        print(f"{'met ' if met else 'MISS'}  {name}: {abs(value):.3f}")
    print(f"\n{sum(m for _, _, m in rows)} of {len(rows)} targets met")
    if args.json:
        Path(args.json).write_text(json.dumps({"trust": metrics["test"]["trust"],
                                               "real_composites": metrics["test"].get("real_composites"),
                                               "unfamiliarity_left_out": metrics["test"].get("unfamiliarity_left_out"),
                                               "targets": [{"target": n, "value": v, "met": m} for n, v, m in rows]},
                                              indent=2))
