"""Print the README's evaluation table for one or more bundles: `python scripts/report.py DIR [DIR...]`."""

import sys

from deepfake_detector.report import readme_table

if __name__ == "__main__":
    print(readme_table(sys.argv[1:] or ["models/default"]))
