"""A demo image folder made from scikit-learn's handwritten digits: no download needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def write_digits(folder: Path | str, size: int = 32) -> int:
    """Write the 1,797 8x8 digits as ``size``-pixel grey PNGs, ``folder/{digit}/{n:04d}.png``.

    Returns the number of files written. The 17 grey levels are stretched to 0-255
    and upscaled bicubically.
    """
    digits = load_digits()
    folder = Path(folder)
    for n, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        image = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L")
        path = folder / str(target) / f"{n:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.resize((size, size), Image.Resampling.BICUBIC).save(path)
    return len(digits.target)
