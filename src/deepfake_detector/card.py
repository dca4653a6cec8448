"""Model card: the bundle's README.md, following Hugging Face Hub conventions."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from . import atomic
from .config import KAGGLE_DATASET
from .report import fmt as _fmt
from .report import metric_rows, trust_table, unfamiliarity_table


def card_text(folder: Path, repo_id: str | None = None, asset_prefix: str = "") -> str:
    """The model card. `asset_prefix` is prepended to image links: "" inside the bundle (its own
    README.md), "bundle/" for the root README.md of a Hub repo where the bundle sits under bundle/."""
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    test = metrics["test"]
    name = repo_id or config.get("run_name") or "deepfake-detector"
    data_path = config["dataset"]["path"]
    is_kaggle = KAGGLE_DATASET.split("/")[-1] in data_path
    examples_dir = config.get("extra", {}).get("examples_dir")
    examples_note = f"from `{examples_dir}`" if examples_dir else "from the Test split of the training data"
    description = config.get("extra", {}).get("dataset_description") or (
        f"Kaggle `{KAGGLE_DATASET}`" if is_kaggle else f"the folder `{data_path}`")
    metadata = {
        "license": "mit",
        "library_name": "keras",
        "pipeline_tag": "image-classification",
        "tags": ["deepfake-detection", "image-classification", "keras", "tflite", "faces"],
        # Hub dataset ids when known (config extra.hub_datasets), else the data folder's name.
        "datasets": config.get("extra", {}).get("hub_datasets") or
        ([KAGGLE_DATASET] if is_kaggle else [Path(data_path).name]),
        "metrics": ["accuracy", "roc_auc", "f1"],
        "model-index": [{
            "name": name,
            "results": [{
                "task": {"type": "image-classification", "name": "Deepfake detection"},
                "dataset": {"type": KAGGLE_DATASET if is_kaggle else "imagefolder",
                            "name": description[:80], "split": "Test"},
                "metrics": [{"type": k, "value": round(float(test[k]), 4), "name": label}
                            for k, label in (("accuracy", "Accuracy"), ("roc_auc", "ROC AUC"),
                                             ("f1", "F1"), ("precision", "Precision"), ("recall", "Recall"))
                            if test.get(k) is not None],
            }],
        }],
    }
    counts = config["dataset"]["counts"]
    rows = metric_rows(test)
    per_source = "\n".join(f"| {s} | {m.get('classes', 'both')} | {m['n']} | {_fmt(m['accuracy'])} | "
                           f"{_fmt(m['roc_auc'])} |" for s, m in test.get("per_source", {}).items())
    robust = "\n".join(f"| {k} | {_fmt(v['accuracy'])} | {_fmt(v['roc_auc'])} | {_fmt(v['accuracy_drop'])} |"
                       for k, v in metrics.get("robustness", {}).items())
    plots = "\n".join(f"![{p.stem}]({asset_prefix}plots/{p.name})" for p in sorted((folder / "plots").glob("*.png")))
    env = config.get("environment", {})
    elsewhere = ""
    if config.get("trained_elsewhere"):  # fitted by the portable trainer, sealed by train.py here
        elsewhere = (f" with Keras {env.get('keras', '?')} on {env.get('backend', '?')} "
                     f"(`deepfake_detector.portable`; best Validation ROC AUC at epoch "
                     f"{config['trained_elsewhere'].get('best_epoch')}), exported and evaluated on "
                     f"{config.get('sealing_environment', {}).get('platform', '?')}")
    warm_start = (f"\nThis run started from the weights of the bundle `{config['init_from']}`; re-create that "
                  f"bundle first with the command in its own `config.json`.\n") if config.get("init_from") else ""
    pull = (f" on the complete bundle under `{asset_prefix}` (sha256 manifest, TFLite copy, metrics):\n"
            f"`python -m deepfake_detector.hub pull {repo_id or 'OWNER/NAME'}`") if asset_prefix else ""
    self_blends = (f"\n- Self-blended fakes: each time a real Train face was drawn, with probability "
                   f"{config['self_blend_prob']} it was blended with an altered copy of itself inside its "
                   f"face outline and labelled fake (`selfblend.py`).") if config.get("self_blend_prob") else ""
    text = f"""# {name}

A Keras network (`{config['architecture']}`) that scores a face image as **real** or **fake**
(deepfake), trained with the deepfake-detector project's `train.py`. Output: calibrated P(fake);
the decision threshold ({metrics['serving']['threshold']:.3f}), the uncertain band
({_band(metrics)}) and the Platt calibration were fitted on the Validation split, never on Test.

- Architecture: `{config['architecture']}`, input {config['image_size']}x{config['image_size']} RGB,
  {metrics['model']['parameters']:,} parameters; preprocessing (resize, rescale) is inside the model.
- Trained on {description}: Train {counts['Train']}, Validation {counts['Validation']},
  Test {counts['Test']} (Fake/Real counts).
- Example images: {examples_note}.
- Training: {config.get('epochs_run')} epoch(s), {config.get('train_seconds', 0) / 60:.1f} min on
  {env.get('platform', '?')} ({env.get('cpu_count', '?')} CPUs, accelerators: {_accelerators(env)}){elsewhere}.{self_blends}

Reproduce:

```bash
{config['command']}
```
{warm_start}
## Evaluation (Test split, served path with face crop)

| metric | value |
|---|---|
{rows}

Per source (file-name prefix):

| source | classes | n | accuracy | ROC AUC |
|---|---|---|---|---|
{per_source or '| all | both | ' + str(test['n']) + ' | ' + _fmt(test['accuracy']) + ' | ' + _fmt(test['roc_auc']) + ' |'}

Trust (Test split, by the served rules: threshold, uncertain band, group rule, unfamiliarity):

{trust_table(metrics) or 'not measured'}

{unfamiliarity_table(metrics)}

Robustness (Test images degraded before scoring):

| degradation | accuracy | ROC AUC | accuracy drop |
|---|---|---|---|
{robust or '| not measured | | | |'}

{plots}

## Use

```python
import keras
model = keras.saving.load_model("hf://{repo_id or 'OWNER/NAME'}")  # input: RGB 0-255, any size
```

or, with calibration, face cropping and explanations, `deepfake_detector.inference.Predictor`{pull}.

## Limits

Trained on face crops from the sources above; other generators, heavy compression, non-face
images and adversarial edits are out of distribution. A score is evidence, not proof.
"""
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False) + "---\n\n" + text


def _band(metrics: dict) -> str:
    band = metrics["serving"].get("uncertain_band")
    return f"{band[0]:.3f} ≤ P(fake) < {band[1]:.3f}" if band else "none"


def _accelerators(env: dict) -> str:
    """GPUs as train.py (TensorFlow) or the portable trainer (any Keras backend) records them."""
    found = env.get("gpus") or [d for d in env.get("devices", []) if d.lower() != "cpu"]
    return ", ".join(found) or "none"


def write_card(folder: Path, repo_id: str | None = None) -> Path:
    return atomic.write_text(folder / "README.md", card_text(folder, repo_id))
