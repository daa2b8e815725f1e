"""The vision learner on the bundled digits image folder: accuracy, time, interpretation.

    python benchmarks/vision.py                  # CPU: the table, outputs in vision-out/
    python benchmarks/vision.py --device cuda    # the same on a GPU
    python benchmarks/vision.py --out DIR --seeds 0 1 2

The folder is written by ``recsys vision digits`` (scikit-learn's 1,797 8x8
digits, upscaled to 32-pixel grey PNGs); split: random 80/20, seed 42
(ImageData.from_folder's default). Augmentation: random resized crops, no
flips (a mirrored digit is another shape). Seconds are training time only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from recsys.vision.data import Augment, ImageData
from recsys.vision.digits import write_digits
from recsys.vision.image_plots import plot_top_losses
from recsys.vision.vision_learner import VISION_DEFAULTS, vision_learner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("vision-out"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        write_digits(folder)
        print(f"digits: {folder}, device {args.device}, defaults {VISION_DEFAULTS}")
        print(f"{'seed':>4} {'accuracy':>9} {'train s':>8}")
        for seed in args.seeds:
            torch.manual_seed(seed)
            data = ImageData.from_folder(
                folder, size=32, mode="L", augment=Augment(flip=False), num_workers=args.workers
            )
            learn = vision_learner(data, device=args.device, progress=False)
            started = time.perf_counter()
            learn.fit_one_cycle()
            if learn.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            print(
                f"{seed:>4} {learn.recorder.rows[-1]['accuracy']:>9.4f} {seconds:>8.2f}", flush=True
            )
            if seed == args.seeds[0]:
                interpretation = learn.interpret()
                interpretation.plot_confusion_matrix(args.out / "confusion.png")
                top = interpretation.top_losses(16)
                top["item"] = [Path(p).relative_to(folder).as_posix() for p in top["item"]]
                top.to_csv(args.out / "top_losses.csv", index=False)
                plot_top_losses(interpretation, data.transform, args.out / "top_losses.png", 16)
                print(f"most confused: {interpretation.most_confused().head(5).values.tolist()}")
    print(f"confusion matrix, top losses (CSV and PNG) of seed {args.seeds[0]} in {args.out}")


if __name__ == "__main__":
    main()
