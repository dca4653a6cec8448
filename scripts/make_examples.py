"""Make the redistributable example images in assets/examples/ (public-domain sources only).

    python scripts/make_examples.py [--check BUNDLE]

Real: the portrait of Grace Hopper that ships with matplotlib (US Navy photo, public domain),
whole and as a tighter crop, and the portrait of Eileen Collins that ships with scikit-image
(`skimage.data.astronaut`, NASA, public domain). Fake: Eileen Collins with Grace Hopper's face
pasted in (a plain face swap, no colour matching: the kind of answer "fake" shows), and the
Hopper portrait with its face region replaced by an altered copy of itself and blended in (a
subtle self-blend: the kind of answer "uncertain" shows). Every manipulation is this project's
own: no third-party deepfake is redistributed. `--check BUNDLE` prints what the bundle's model says of
each example the app shows (the README's table rows), and fails when the bundle's examples are not
these pictures.
"""

import argparse
import io
import sys
from pathlib import Path

import matplotlib.cbook
import numpy as np
from PIL import Image, ImageFilter

OUT = Path(__file__).resolve().parent.parent / "assets" / "examples"


def self_blend(rgb: np.ndarray, box, seed: int, shift=(0, 0), scale=1.04, tint=(12, -6, -10)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    src = Image.fromarray(rgb)
    altered = src.resize((int(w * scale), int(h * scale)), Image.Resampling.BICUBIC)
    ox, oy = (altered.width - w) // 2 + shift[0], (altered.height - h) // 2 + shift[1]
    altered = np.asarray(altered.crop((ox, oy, ox + w, oy + h)), dtype=np.float32)
    altered = np.asarray(Image.fromarray(altered.astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2)),
                         dtype=np.float32) + np.asarray(tint, dtype=np.float32) + rng.normal(0, 2, (h, w, 3))
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    mask = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1).astype(np.float32)
    mask = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(9)),
                      dtype=np.float32)[..., None] / 255.0
    return np.clip(rgb * (1 - mask) + altered * mask, 0, 255).astype(np.uint8)


def face_swap(target: np.ndarray, source: np.ndarray, feather: float = 0.06) -> np.ndarray:
    """`source`'s face warped onto `target`'s (FaceMesh landmarks, similarity transform) and pasted
    through the target's feathered face outline, colours left as they are."""
    from deepfake_detector.selfblend import face_landmarks, warp_face_onto

    warped, mask = warp_face_onto(target, face_landmarks(target), source, face_landmarks(source))
    side = float(np.sqrt((np.asarray(mask) > 0).sum()))
    alpha = np.asarray(mask.filter(ImageFilter.GaussianBlur(feather * side)), np.float32)[..., None] / 255.0
    return np.clip(np.round(alpha * warped + (1 - alpha) * target), 0, 255).astype(np.uint8)


def bundled_copy(path: Path) -> bytes:
    """The example as training.copy_examples writes it into a bundle (same bytes, same Pillow)."""
    im = Image.open(path).convert("RGB")
    im.thumbnail((512, 512))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=92)
    return out.getvalue()


def check(bundle: str) -> int:
    """What the bundle's model says of each example the app shows, as README table rows; 1 when an
    example here is not among the bundle's (it was sealed before the examples changed)."""
    from deepfake_detector.bundle import examples
    from deepfake_detector.inference import Predictor

    predictor = Predictor(bundle)
    served = {path.read_bytes(): path for path, _ in examples(bundle)}
    missing = 0
    for kind in ("Real", "Fake"):
        for path in sorted((OUT / kind).glob("*.jpg")):
            copy = served.get(bundled_copy(path))
            if copy is None:
                print(f"{kind}/{path.name}: not among the examples of {bundle}", file=sys.stderr)
                missing += 1
                continue
            pred = predictor.predict(copy)
            truth = "real photo" if kind == "Real" else "manipulated"
            print(f"| `{kind}/{path.name}` | {truth} | {pred.verdict}, P(fake) {pred.p_fake:.2f} |")
    return 1 if missing else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", metavar="BUNDLE", help="only print what this bundle's model says of each example")
    args = parser.parse_args()
    if args.check:
        sys.exit(check(args.check))
    import skimage.data

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        portrait = np.asarray(Image.open(f).convert("RGB"))
    astronaut = skimage.data.astronaut()
    (OUT / "Real").mkdir(parents=True, exist_ok=True)
    (OUT / "Fake").mkdir(parents=True, exist_ok=True)
    face_box = (150, 95, 370, 380)  # x0, y0, x1, y1 of the face in the 512x600 portrait
    crop = (80, 40, 440, 400)
    Image.fromarray(portrait).save(OUT / "Real" / "grace_hopper.jpg", quality=92)
    Image.fromarray(portrait).crop(crop).save(OUT / "Real" / "grace_hopper_face.jpg", quality=92)
    fake1 = self_blend(portrait, face_box, seed=1)
    fake2 = self_blend(portrait, face_box, seed=2, shift=(4, -3), scale=1.07, tint=(-8, 4, 14))
    Image.fromarray(fake1).save(OUT / "Fake" / "grace_hopper_blended.jpg", quality=92)
    Image.fromarray(fake2).crop(crop).save(OUT / "Fake" / "grace_hopper_blended_face.jpg", quality=92)
    # Quality 95: training.copy_examples re-encodes each at 92, and a swap's seams should survive that.
    Image.fromarray(astronaut).save(OUT / "Real" / "eileen_collins.jpg", quality=95)
    Image.fromarray(face_swap(astronaut, portrait)).save(OUT / "Fake" / "eileen_collins_face_swap.jpg", quality=95)
    print(f"wrote 6 example images to {OUT}")


if __name__ == "__main__":
    main()
