"""The generative example, end to end; runs as written on a CPU with tiny random-weight models.

    python examples/generative/run.py                      # tiny models, CPU, ~1 minute
    python examples/generative/run.py --model /models/sd-turbo --controlnet /models/sd-controlnet-seg \
        --checkpoint runs/day2night --size 512 --steps 4 --guidance 0 --device cuda

It writes small photo folders (skimage), trains a day-to-night generator for one short epoch
(unless --checkpoint is given), fills in gen.yaml / seg.yaml, runs them through
`Pipeline.from_yaml`, materializes the classification set twice (the second run is served by the
results cache) and saves a contact sheet of the outputs.
"""

from __future__ import annotations

import argparse
import string
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data, filters, measure

HERE = Path(__file__).resolve().parent


def write_inputs(work: Path, size: int) -> None:
    """cat/, coffee/, space/ photo classes; day/ and night/ folders for the trainer; coins with masks."""
    from augflow.generative.night import night

    photos = {"cat": [data.chelsea, data.cat], "coffee": [data.coffee], "space": [data.astronaut, data.rocket]}
    rng = np.random.default_rng(0)
    for cls, loaders in photos.items():
        (work / "photos" / cls).mkdir(parents=True, exist_ok=True)
        for load in loaders:
            img = np.asarray(Image.fromarray(load()).resize((size, size), Image.BICUBIC))
            Image.fromarray(img).save(work / "photos" / cls / f"{load.__name__}.png")
            for folder, out in (("day", img), ("night", night(img, exposure=-3.0, temperature=2800.0, gamma=1.2,
                                                               photons=80.0, read_noise=0.006, glow=0.3,
                                                               glow_threshold=0.8, glow_radius=0.02,
                                                               noise_seed=int(rng.integers(1 << 30))))):
                (work / folder).mkdir(exist_ok=True)
                Image.fromarray(out).save(work / folder / f"{load.__name__}.png")
    coins = np.asarray(Image.fromarray(data.coins()).resize((size, size), Image.BICUBIC))
    labels = measure.label(coins > filters.threshold_otsu(coins))
    mask = np.clip(labels, 0, 1).astype(np.uint8) + (labels > labels.max() // 2).astype(np.uint8)  # 3 classes
    (work / "coins").mkdir(exist_ok=True)
    Image.fromarray(coins).save(work / "coins" / "coins.png")
    Image.fromarray(mask).save(work / "coins" / "coins_mask.png")


def fill(template: str, out: Path, **values) -> Path:
    out.write_text(string.Template((HERE / template).read_text()).substitute(values), encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/augflow-generative-example", help="folder for everything written")
    ap.add_argument("--model", help="local diffusers Stable Diffusion directory (default: a tiny random one)")
    ap.add_argument("--controlnet", help="local segmentation ControlNet directory (default: a tiny random one)")
    ap.add_argument("--checkpoint", help="day-to-night generator (default: train one briefly here)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--guidance", type=float, default=7.5, help="guidance scale (0.0 for SD-Turbo)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    write_inputs(work, args.size)

    from augflow import Pipeline
    from augflow.generative import models
    from augflow.generative.tiny import save_tiny_controlnet, save_tiny_stable_diffusion

    model = args.model or str(save_tiny_stable_diffusion(work / "models" / "sd"))
    controlnet = args.controlnet or str(save_tiny_controlnet(work / "models" / "controlnet"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        from augflow.train.day_to_night import TrainConfig, train

        t = time.perf_counter()
        train(TrainConfig(day=str(work / "day"), night=str(work / "night"), output=str(work / "runs" / "day2night"),
                          epochs=1, size=min(args.size, 64), ngf=16, ndf=16, n_blocks=9, progress=False))
        checkpoint = str(work / "runs" / "day2night")
        print(f"trained a small day-to-night generator in {time.perf_counter() - t:.1f} s -> {checkpoint}")
    values = dict(model=model, controlnet=controlnet, checkpoint=checkpoint, size=args.size, steps=args.steps,
                  guidance=args.guidance, device=args.device)
    gen = Pipeline.from_yaml(fill("gen.yaml", work / "gen.yaml", **values))
    seg = Pipeline.from_yaml(fill("seg.yaml", work / "seg.yaml", **values))

    tiles = []
    for i, path in enumerate(sorted((work / "photos").rglob("*.png"))):
        label = ["cat", "coffee", "space"].index(path.parent.name)
        real = np.asarray(Image.open(path).convert("RGB"))
        out = gen({"image": real, "label": label}, index=i)
        tiles.append(np.concatenate([np.asarray(Image.fromarray(real).resize(out["image"].shape[1::-1])),
                                     out["image"]], axis=0))
        print(f"{path.parent.name}/{path.name}: " + ", ".join(
            f"{e.op}" + (f" ({e.params['prompt']!r}, seed {e.params['seed']})" if "prompt" in e.params else "")
            for e in out.provenance))
    coins = np.asarray(Image.open(work / "coins" / "coins.png"))
    mask = np.asarray(Image.open(work / "coins" / "coins_mask.png"))
    out = seg({"image": coins, "mask": mask}, index=0)
    assert np.array_equal(out["mask"], mask)
    gray = lambda a: np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a  # noqa: E731
    tiles.append(np.concatenate([gray(coins), gray(out["image"])], axis=0))
    h = max(t.shape[0] for t in tiles)
    sheet = np.concatenate([np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0))) for t in tiles], axis=1)
    Image.fromarray(sheet).save(work / "contact_sheet.png")
    print(f"contact sheet (inputs over outputs) -> {work / 'contact_sheet.png'}; model calls: {dict(models.CALLS)}")

    cache = work / "gen-cache"
    for run in (1, 2):   # the second run makes no model call: every output is in the cache
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "augflow", "materialize", str(work / "gen.yaml"), "--input",
                        str(work / "photos"), "--output", str(work / f"synthetic{run}"), "--copies", "3", "--overwrite"],
                       check=True, env={**__import__("os").environ, "AUGFLOW_CACHE_DIR": str(cache)})
        print(f"materialize run {run}: {time.perf_counter() - t:.1f} s (cache: {cache})")


if __name__ == "__main__":
    main()
