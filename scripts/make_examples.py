"""Make the redistributable example images in assets/examples/ (public-domain sources only).

Real: the portrait of Grace Hopper that ships with matplotlib (US Navy photo, public domain),
whole and as a tighter crop. Fake: the same portrait with its face region replaced by an
altered copy of itself and blended in (the self-blended-image recipe), i.e. a manipulation
this project made - no third-party deepfake is redistributed.
"""

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


def main() -> None:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        portrait = np.asarray(Image.open(f).convert("RGB"))
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
    print(f"wrote 4 example images to {OUT}")


if __name__ == "__main__":
    main()
