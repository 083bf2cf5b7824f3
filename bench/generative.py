"""Throughput of the generative ops on this machine, against calling the same model directly.

    python bench/generative.py [--threads 2] [--reps 5]

Diffusion ops run tiny random-weight models (augflow.generative.tiny: ~130k parameters) at 64 px,
so the figures measure augflow's layer (conditioning ops, prompts, seeds, cache keys, pixel
conversion) against a bare diffusers call with the same settings — not what a real Stable
Diffusion costs. The day-to-night generator is the real architecture (ResNet-9, ngf 64) with
random weights. Prints a Markdown report (bench/RESULTS.md holds one).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data


def best(fn, reps: int) -> float:
    """Median seconds of `reps` calls after one warm-up."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paired(fn_a, fn_b, reps: int) -> tuple[float, float]:
    """Medians of a and b timed alternately (a, b, a, b, ...): load changes on a shared machine hit
    both alike, so their ratio is steadier than two separate runs."""
    fn_a(), fn_b()
    ta, tb = [], []
    for _ in range(reps):
        for fn, acc in ((fn_a, ta), (fn_b, tb)):
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from augflow import Pipeline
    from augflow.generative import cache, diffusion, models
    from augflow.generative.networks import NLayerDiscriminator, ResnetGenerator, init_weights
    from augflow.generative.tiny import save_tiny_controlnet, save_tiny_stable_diffusion
    from augflow.sample import Sample

    tmp = Path(tempfile.mkdtemp(prefix="augflow-bench-gen-"))
    sd, cn = save_tiny_stable_diffusion(tmp / "sd"), save_tiny_controlnet(tmp / "cn")
    cat = np.ascontiguousarray(data.chelsea()[80:208:2, 160:288:2])
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 10:40] = 1
    rows: list[tuple[str, str, str, str]] = []
    reps = args.reps

    def no_cache(fn):
        def run():
            cache.clear_memory()
            return fn()
        return run

    # ---- augmented_conditioning vs a bare img2img call --------------------------------------------
    op_cfg = {"model": str(sd), "strength": 0.75, "steps": 4, "class_names": ["cat"]}
    pipe = Pipeline.from_dict({"augflow": 1, "sample": [{"augmented_conditioning": {
        **op_cfg, "condition": {"ops": [{"horizontal_flip": {"p": 0.5}}]}}}]})
    raw_pipe, _ = diffusion.task_pipeline("image2image", pipe.op_steps()[0].op.params)
    image = cat.astype(np.float32)[None] / 255

    def raw_img2img(n: int = 1):
        with torch.inference_mode():
            return raw_pipe(prompt=["a photo of a cat"] * n, image=np.repeat(image, n, 0), strength=0.75,
                            guidance_scale=7.5, num_inference_steps=4, output_type="np",
                            generator=[torch.Generator().manual_seed(i) for i in range(n)]).images
    t_op, t_raw = paired(no_cache(lambda: pipe({"image": cat, "label": 0}, seed=1)), raw_img2img, reps)
    rows.append(("augmented_conditioning, 64 px, 3 denoising steps, 1 image", f"{1 / t_op:.1f}", f"{1 / t_raw:.1f}",
                 f"{t_op / t_raw:.2f}"))
    op = pipe.op_steps()[0].op
    samples = [Sample({"image": cat if i % 2 else cat[:, ::-1].copy(), "label": 0}) for i in range(8)]
    params = [op.sample_params(np.random.default_rng(i), s) for i, s in enumerate(samples)]
    t_b, t_rb = paired(no_cache(lambda: op.apply_samples(samples, params)), lambda: raw_img2img(8), reps)
    rows.append(("augmented_conditioning, 64 px, batch of 8 (one model call)", f"{8 / t_b:.1f}", f"{8 / t_rb:.1f}",
                 f"{t_b / t_rb:.2f}"))

    # ---- mask_conditioned_diffusion vs a bare ControlNet call --------------------------------------
    mpipe = Pipeline.from_dict({"augflow": 1, "sample": [{"mask_conditioned_diffusion": {
        "model": str(sd), "controlnet": str(cn), "steps": 2, "prompt": "a photo"}}]})
    cn_pipe, _ = diffusion.task_pipeline("text2image", mpipe.op_steps()[0].op.params, controlnet=str(cn))
    from augflow.generative.mask_conditioned import render_mask
    cond = render_mask(mask, "palette")[None]

    def raw_cn():
        with torch.inference_mode():
            return cn_pipe(prompt=["a photo"], image=cond, num_inference_steps=2, height=64, width=64,
                           output_type="np", generator=[torch.Generator().manual_seed(0)]).images
    t_op, t_raw = paired(no_cache(lambda: mpipe({"image": cat, "mask": mask}, seed=1)), raw_cn, reps)
    rows.append(("mask_conditioned_diffusion, 64 px, 2 steps, 1 image", f"{1 / t_op:.1f}", f"{1 / t_raw:.1f}",
                 f"{t_op / t_raw:.2f}"))

    # ---- day_to_night (ResNet-9, ngf 64) vs the bare generator forward -----------------------------
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        gen = init_weights(ResnetGenerator(ngf=64, n_blocks=9, norm="batch")).eval()
    torch.save(gen.state_dict(), tmp / "generator.pth")
    dpipe = Pipeline.from_dict({"augflow": 1, "sample": [{"day_to_night": {"checkpoint": str(tmp / "generator.pth")}}]})
    for side in (64, 128, 256):
        img = np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(data.astronaut()).resize((side, side)))
        x = torch.from_numpy(img.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]

        def raw_gen():
            with torch.inference_mode():
                return gen(x)
        t_op, t_raw = paired(no_cache(lambda: dpipe({"image": img}, seed=0)), raw_gen, reps)
        rows.append((f"day_to_night (ResNet-9, ngf 64), {side} px", f"{1 / t_op:.1f}", f"{1 / t_raw:.1f}",
                     f"{t_op / t_raw:.2f}"))

    # ---- night (no model) -------------------------------------------------------------------------
    npipe = Pipeline.from_dict({"augflow": 1, "sample": [{"night": {"glow": [0.2, 0.5]}}]})
    img256 = np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(data.astronaut()).resize((256, 256)))
    t_op = best(lambda: npipe({"image": img256}, seed=0), reps)
    rows.append(("night (glow on), 256 px", f"{1 / t_op:.1f}", "-", "-"))

    # ---- the results cache: a rerun ----------------------------------------------------------------
    inputs = [{"image": np.ascontiguousarray(np.roll(cat, 7 * i, axis=1)), "label": 0} for i in range(8)]
    with cache.use_cache_dir(tmp / "gen-cache"):
        calls = models.CALLS["augmented_conditioning"]
        t0 = time.perf_counter()
        for i, s in enumerate(inputs):
            pipe(s, index=i)
        first = time.perf_counter() - t0
        first_calls = models.CALLS["augmented_conditioning"] - calls
        cache.clear_memory()
        fresh = Pipeline.from_dict(pipe.to_dict())
        t0 = time.perf_counter()
        for i, s in enumerate(inputs):
            fresh(s, index=i)
        second = time.perf_counter() - t0
        second_calls = models.CALLS["augmented_conditioning"] - calls - first_calls

    # ---- trainer steps ---------------------------------------------------------------------------
    import torch.nn.functional as F

    from augflow.train.day_to_night import edge_map, lsgan
    step_rows = []
    for side in (64, 128):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            G, D = init_weights(ResnetGenerator()), init_weights(NLayerDiscriminator())
        oG, oD = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999)), torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
        day, night = torch.rand(1, 3, side, side) * 2 - 1, torch.rand(1, 3, side, side) * 2 - 1

        def step():
            fake = G(day)
            oD.zero_grad()
            ((lsgan(D(night), True) + lsgan(D(fake.detach()), False)) * 0.5).backward()
            oD.step()
            oG.zero_grad()
            (lsgan(D(fake), True) + 5 * F.l1_loss(edge_map(fake, "sobel"), edge_map(day, "sobel").detach())).backward()
            oG.step()
        step_rows.append((side, best(step, max(2, reps // 2))))

    print(f"# Generative ops on this CPU\n\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {args.threads} torch thread(s), load average {os.getloadavg()[0]:.1f} "
          f"at the end; median of {reps} runs after a warm-up, augflow and direct calls timed alternately.\n")
    print("| op | augflow images/s | direct call images/s | time ratio augflow / direct |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    print(f"\nResults cache, 8 samples through augmented_conditioning with a disk cache: first run "
          f"{first:.2f} s ({first_calls} model calls), rerun in a fresh pipeline {second:.3f} s ({second_calls} model "
          f"calls), {first / max(second, 1e-9):.0f}x faster.\n")
    print("| trainer step (ResNet-9 ngf 64 + PatchGAN ndf 64, batch 1, LSGAN + Sobel edge loss) | seconds/step |\n|---|---|")
    for side, t in step_rows:
        print(f"| {side} px | {t:.3f} |")


if __name__ == "__main__":
    main()
