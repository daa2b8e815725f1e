"""Two generated image tasks that share what they are made of, for proving transfer with
no download: pretrain a body on one, fine-tune it on the other.

- ``shapes``: one shape per image (circle, square, triangle or cross), its colour,
  size and place drawn at random on a noisy background; the class is the shape.
- ``pairs``: three smaller shapes per image, two of one kind and one of another; the
  class is the kind that appears twice. Telling shapes apart helps, but the task, the
  scale and the layout differ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("circle", "square", "triangle", "cross")


def _draw(
    draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], colour: tuple[int, ...]
) -> None:
    left, top, right, bottom = box
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    elif kind == "triangle":
        draw.polygon([((left + right) // 2, top), (left, bottom), (right, bottom)], fill=colour)
    else:  # a cross: two bars a third as thick as the box
        third = max(1, (right - left) // 3)
        draw.rectangle((left, top + third, right, bottom - third), fill=colour)
        draw.rectangle((left + third, top, right - third, bottom), fill=colour)


def _canvas(size: int, rng: np.random.Generator) -> Image.Image:
    base = rng.integers(0, 80, 3)
    noise = rng.integers(0, 40, (size, size, 3))
    return Image.fromarray((base + noise).clip(0, 255).astype(np.uint8), "RGB")


def _colour(rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(c) for c in rng.integers(120, 256, 3))


def shape_image(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One ``kind`` of shape, a third to two thirds of the image wide, anywhere in it."""
    image = _canvas(size, rng)
    side = int(rng.integers(size // 3, 2 * size // 3 + 1))
    left, top = (int(v) for v in rng.integers(0, size - side + 1, 2))
    _draw(ImageDraw.Draw(image), kind, (left, top, left + side, top + side), _colour(rng))
    return image


def pair_image(twice: str, size: int, rng: np.random.Generator) -> Image.Image:
    """Three shapes, each in its own third of the image: ``twice`` two times, another
    kind once, in a random order."""
    other = str(rng.choice([k for k in KINDS if k != twice]))
    kinds = [twice, twice, other]
    rng.shuffle(kinds)
    image = _canvas(size, rng)
    draw = ImageDraw.Draw(image)
    cell = size // 3
    for slot, kind in enumerate(kinds):
        side = int(rng.integers(cell // 2, cell))
        left = slot * cell + int(rng.integers(0, cell - side + 1))
        top = int(rng.integers(0, size - side + 1))
        _draw(draw, kind, (left, top, left + side, top + side), _colour(rng))
    return image


def write_task(folder: Path, task: str, per_class: int, size: int = 32, seed: int = 0) -> int:
    """Write ``per_class`` PNG images of each class of ``task`` ("shapes" or "pairs") to
    one sub-folder per class; returns how many were written."""
    if task not in ("shapes", "pairs"):
        raise ValueError(f"task must be shapes or pairs, not {task!r}")
    draw = shape_image if task == "shapes" else pair_image
    rng = np.random.default_rng(seed)
    for kind in KINDS:
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw(kind, size, rng).save(folder / kind / f"{i:05d}.png")
    return per_class * len(KINDS)
