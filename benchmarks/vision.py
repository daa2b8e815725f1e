"""The vision learner on the bundled digits image folder: accuracy, time, interpretation;
and, with --transfer, fine-tuning from a pretrained body against training from scratch.

    python benchmarks/vision.py                  # CPU: the table, outputs in vision-out/
    python benchmarks/vision.py --device cuda    # the same on a GPU
    python benchmarks/vision.py --out DIR --seeds 0 1 2
    python benchmarks/vision.py --transfer       # pretrain on shapes, fine-tune on pairs

Transfer (recsys.vision.shapes, generated: no download): a resnet18 body is trained on
"shapes" (one shape per image; 400 per class, 64 px, 5 epochs), saved in torchvision's
format, then the "pairs" task (which of four shapes appears twice among three; 100
images per class, 20% held out) is learned twice per seed with the same 5 epochs: from
that body with ``fine_tune`` (the head for 1 epoch, then everything for 4 with
discriminative rates; the images normalised with ImageNet's statistics, as for any
weights file) and from random weights with ``fit_one_cycle`` at the tuned default rate.

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
from recsys.vision.shapes import write_task
from recsys.vision.vision_learner import VISION_DEFAULTS, vision_learner


def transfer(seeds: list[int], device: str, workers: int) -> None:
    """Pretrained + fine-tune against from scratch, at equal epochs (see the docstring)."""
    epochs = 5
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_task(root / "shapes", "shapes", per_class=400, size=64, seed=100)
        write_task(root / "pairs", "pairs", per_class=100, size=64, seed=200)
        torch.manual_seed(100)
        source = ImageData.from_folder(root / "shapes", size=64, augment=None, num_workers=workers)
        body = vision_learner(source, arch="resnet18", device=device, progress=False)
        started = time.perf_counter()
        body.fit_one_cycle(epochs)
        print(
            f"pretraining on shapes: accuracy {body.recorder.rows[-1]['accuracy']:.4f} "
            f"in {time.perf_counter() - started:.1f} s; device {device}"
        )
        weights = body.save_body(root / "resnet18-shapes.pt")
        print(f"{'seed':>4} {'from scratch':>13} {'pretrained':>11} {'gain':>7}   seconds")
        gains = []
        for seed in seeds:
            row = {}
            for start in ("scratch", "pretrained"):
                torch.manual_seed(seed)
                data = ImageData.from_folder(
                    root / "pairs", size=64, augment=None, num_workers=workers, seed=seed
                )
                learn = vision_learner(
                    data,
                    arch="resnet18",
                    weights=weights if start == "pretrained" else None,
                    device=device,
                    progress=False,
                )
                began = time.perf_counter()
                if start == "pretrained":
                    learn.fine_tune(epochs - 1, freeze_epochs=1)
                else:
                    learn.fit_one_cycle(epochs)
                row[start] = (learn.recorder.rows[-1]["accuracy"], time.perf_counter() - began)
            gain = row["pretrained"][0] - row["scratch"][0]
            gains.append(gain)
            print(
                f"{seed:>4} {row['scratch'][0]:>13.4f} {row['pretrained'][0]:>11.4f} "
                f"{gain:>+7.4f}   {row['scratch'][1]:.1f} / {row['pretrained'][1]:.1f}",
                flush=True,
            )
        print(f"mean gain {sum(gains) / len(gains):+.4f}; smallest {min(gains):+.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("vision-out"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--transfer", action="store_true", help="pretrained against scratch")
    args = parser.parse_args()
    if args.transfer:
        transfer(args.seeds, args.device, args.workers)
        return
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
