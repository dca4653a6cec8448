"""Print the README's figures for bundles: `python scripts/report.py [--summary] [DIR...]`.

Without --summary: one row per bundle with every Test metric (docs/benchmarks.md's table).
With --summary: the headline rows of the README's results table for one bundle."""

import argparse
import sys

from deepfake_detector.errors import BundleError
from deepfake_detector.report import readme_table, summary_table

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="*", default=["models/default"], help="bundle folders (default: models/default)")
    parser.add_argument("--summary", action="store_true", help="the README's headline rows for the first bundle")
    args = parser.parse_args()
    try:
        print(summary_table(args.bundles[0]) if args.summary else readme_table(args.bundles))
    except (OSError, KeyError, BundleError) as exc:
        sys.exit(f"report: {exc}")
