"""Print the README's evaluation table for one or more bundles: `python scripts/report.py DIR [DIR...]`."""

import argparse
import sys

from deepfake_detector.errors import BundleError
from deepfake_detector.report import readme_table

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundles", nargs="*", default=["models/default"], help="bundle folders (default: models/default)")
    args = parser.parse_args()
    try:
        print(readme_table(args.bundles))
    except (OSError, BundleError) as exc:
        sys.exit(f"report: {exc}")
