"""Train the day-to-night generator that the `day_to_night` op applies (Dark Side Augmentation).

    augflow train day-to-night --day photos/day --night photos/night --output runs/day2night --epochs 50
    python -m augflow.train.day_to_night --day ... --night ... --output ...      (same options)

The light-weight "HEDNGAN" recipe of the paper (code: gandtr): one ResNet generator (9 blocks,
batch norm) day -> night, a PatchGAN discriminator on night images, a least-squares adversarial
loss plus an *edge-consistency* loss — L1 between the edge maps of the day input and of its night
translation, weight 5 vs 1 — with a differentiable edge detector: Kornia's Sobel (default) or
Canny magnitude, or a HED checkpoint, which is then fine-tuned on both domains at lr 1e-6 against
a frozen copy as in the paper. Adam lr 2e-4, beta1 0.5, constant for the first half and linearly
decayed to 0 over the second. `--cyclegan` trains the CycleGAN baseline instead (two generators,
two discriminators, cycle and identity losses, image pools). `--d-augment pipeline.yaml` applies
that augflow pipeline's differentiable batch ops (Kornia) to real and generated images before the
discriminator, which keeps a small night set from being memorised.

The output directory holds `generator.pth` (the latest generator in the public CycleGAN/gandtr
layout, which the op loads) and `generator.json`, `generators/epoch_NNNN.pth` and
`samples/epoch_NNNN.png` (day images over their translations) per checkpoint, `history.json`, and `last.pt`, from
which a rerun of the same command resumes. Every random draw is a function of (seed, epoch,
index), so a resumed run gives the same weights as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from augflow.generative.networks import NLayerDiscriminator, ResnetGenerator, init_weights, load_hed
from augflow.train import common
from augflow.train.day_to_night_parts import (DiscriminatorAugment, ImagePool, UnpairedImages, edge_map,
                                              fixed_day_batch, list_images, lsgan)


@dataclass
class TrainConfig:
    """Everything a run depends on (saved beside the checkpoints; a resume must match it)."""

    day: str
    night: str
    output: str
    epochs: int = 50
    decay_epochs: int | None = None          # default: the second half
    size: int = 256                          # training crop
    load_size: int | None = None             # shorter side before cropping; default size * 286 / 256
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    adv_weight: float = 1.0
    edge_weight: float | None = None         # default 5 (0 with --cyclegan)
    edge: str = "sobel"                      # sobel | canny | hed
    hed_checkpoint: str | None = None
    hed_lr: float = 1e-6
    hed_finetune: bool = True
    cyclegan: bool = False
    cycle_weight: float = 10.0
    identity_weight: float = 0.5             # times cycle_weight, as in CycleGAN
    pool_size: int = 50
    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9
    norm: str = "batch"
    d_augment: str | None = None
    checkpoint_every: int = 5
    samples: int = 4
    steps_per_epoch: int | None = None       # cap (smoke runs)
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    progress: bool = True

    def check(self) -> None:
        if self.edge not in ("sobel", "canny", "hed"):
            raise ValueError(f"edge must be sobel, canny or hed, got {self.edge!r}")
        if self.edge == "hed" and not self.hed_checkpoint:
            raise ValueError("edge 'hed' needs --hed-checkpoint (a pytorch-hed or gandtr HED .pth)")
        if self.size % 4:
            raise ValueError(f"size must be a multiple of 4 (the generator downsamples twice), got {self.size}")
        if self.epochs < 1 or self.checkpoint_every < 1:
            raise ValueError("epochs and checkpoint_every must be at least 1")
        if self.norm not in ("batch", "instance"):
            raise ValueError(f"norm must be batch or instance, got {self.norm!r}")

    @property
    def edge_w(self) -> float:
        return self.edge_weight if self.edge_weight is not None else (0.0 if self.cyclegan else 5.0)

    @property
    def decay(self) -> int:
        return self.decay_epochs if self.decay_epochs is not None else self.epochs // 2


# ---- the trainer ----------------------------------------------------------------------------
class Trainer:
    """Networks, optimizers and the step functions; `run()` trains and checkpoints."""

    def __init__(self, config: TrainConfig):
        config.check()
        self.cfg = c = config
        self.out = Path(c.output)
        self.device = common.resolve_device(c.device)
        self.day_files, self.night_files = list_images(c.day), list_images(c.night)
        load_size = c.load_size or int(round(c.size * 286 / 256))
        self.data = UnpairedImages(self.day_files, self.night_files, c.size, load_size, c.seed)
        with common.seeded(c.seed):
            self.G = init_weights(ResnetGenerator(ngf=c.ngf, n_blocks=c.n_blocks, norm=c.norm))
            self.D = init_weights(NLayerDiscriminator(ndf=c.ndf, norm=c.norm))
            if c.cyclegan:
                self.G_back = init_weights(ResnetGenerator(ngf=c.ngf, n_blocks=c.n_blocks, norm=c.norm))
                self.D_day = init_weights(NLayerDiscriminator(ndf=c.ndf, norm=c.norm))
        self.nets = {"G": self.G, "D": self.D}
        if c.cyclegan:
            self.nets.update(G_back=self.G_back, D_day=self.D_day)
        self.hed = self.hed_teacher = None
        if c.edge == "hed":
            self.hed = load_hed(c.hed_checkpoint)
            self.hed_teacher = load_hed(c.hed_checkpoint).eval().requires_grad_(False)
            if c.hed_finetune:
                self.nets["hed"] = self.hed
            else:
                self.hed.eval().requires_grad_(False)
        for net in self.nets.values():
            net.to(self.device)
        if self.hed_teacher is not None:
            self.hed_teacher.to(self.device)
            if not c.hed_finetune:
                self.hed.to(self.device)
        betas = (c.beta1, 0.999)
        g_params = list(self.G.parameters()) + (list(self.G_back.parameters()) if c.cyclegan else [])
        d_params = list(self.D.parameters()) + (list(self.D_day.parameters()) if c.cyclegan else [])
        self.opt = {"G": torch.optim.Adam(g_params, lr=c.lr, betas=betas),
                    "D": torch.optim.Adam(d_params, lr=c.lr, betas=betas)}
        if "hed" in self.nets:
            self.opt["hed"] = torch.optim.Adam(self.hed.parameters(), lr=c.hed_lr, weight_decay=2e-4)
        keep = c.epochs - c.decay
        factor = lambda e: 1.0 - max(0, e + 1 - keep) / float(c.decay + 1)  # noqa: E731 - CycleGAN's rule
        self.sched = {k: torch.optim.lr_scheduler.LambdaLR(o, factor) for k, o in self.opt.items()}
        self.pools = {"night": ImagePool(c.pool_size), "day": ImagePool(c.pool_size)} if c.cyclegan else {}
        self.augment = DiscriminatorAugment(c.d_augment, self.device, c.seed) if c.d_augment else None
        self.epoch, self.step, self.history = 0, 0, []

    # -- one step ------------------------------------------------------------------------------
    def _d_view(self, x: torch.Tensor, stream: int) -> torch.Tensor:
        if self.augment is None:
            return x
        first = (self.step * 4 + stream) * x.shape[0]    # its own indices per step and stream
        return self.augment(x, self.epoch, first)

    def train_step(self, day: torch.Tensor, night: torch.Tensor) -> dict[str, float]:
        return self._cycle_step(day, night) if self.cfg.cyclegan else self._edge_step(day, night)

    def _edge_step(self, day: torch.Tensor, night: torch.Tensor) -> dict[str, float]:
        c = self.cfg
        fake = self.G(day)
        # (1) discriminator: real night vs generated night
        self.opt["D"].zero_grad(set_to_none=True)
        d_real = lsgan(self.D(self._d_view(night, 0)), True)
        d_fake = lsgan(self.D(self._d_view(fake.detach(), 1)), False)
        ((d_real + d_fake) * 0.5 * c.adv_weight).backward()
        self.opt["D"].step()
        losses = {"D_real": d_real.item(), "D_fake": d_fake.item()}
        # (2) HED fine-tuning on both domains against its frozen copy (gandtr's HEDNGAN)
        if "hed" in self.nets:
            self.opt["hed"].zero_grad(set_to_none=True)
            rgb_day, rgb_fake = (day + 1) / 2, (fake.detach() + 1) / 2
            target = self.hed_teacher(rgb_day, logits=True)
            e_loss = F.l1_loss(self.hed(rgb_day, logits=True), target) + F.l1_loss(self.hed(rgb_fake, logits=True), target)
            e_loss.backward()
            self.opt["hed"].step()
            losses["E"] = e_loss.item()
        # (3) generator: fool D, keep the day image's edges
        self.opt["G"].zero_grad(set_to_none=True)
        g_adv = lsgan(self.D(self._d_view(fake, 2)), True) * c.adv_weight
        total = g_adv
        if c.edge_w > 0:
            with torch.no_grad():
                target = edge_map(day, c.edge, self.hed_teacher)
            g_edge = F.l1_loss(edge_map(fake, c.edge, self.hed), target) * c.edge_w
            total = total + g_edge
            losses["G_edge"] = g_edge.item()
        total.backward()
        self.opt["G"].step()
        losses["G_adv"] = g_adv.item()
        return losses

    def _cycle_step(self, day: torch.Tensor, night: torch.Tensor) -> dict[str, float]:
        c = self.cfg
        rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([c.seed, self.step, 0xC7C])))
        fake_night, fake_day = self.G(day), self.G_back(night)
        rec_day, rec_night = self.G_back(fake_night), self.G(fake_day)
        # (1) generators, with the discriminators frozen
        for d in (self.D, self.D_day):
            d.requires_grad_(False)
        self.opt["G"].zero_grad(set_to_none=True)
        g_adv = (lsgan(self.D(self._d_view(fake_night, 2)), True) +
                 lsgan(self.D_day(self._d_view(fake_day, 3)), True)) * c.adv_weight
        cycle = (F.l1_loss(rec_day, day) + F.l1_loss(rec_night, night)) * c.cycle_weight
        total = g_adv + cycle
        losses = {"G_adv": g_adv.item(), "cycle": cycle.item()}
        if c.identity_weight > 0:
            ident = (F.l1_loss(self.G(night), night) + F.l1_loss(self.G_back(day), day)) * c.cycle_weight * c.identity_weight
            total = total + ident
            losses["identity"] = ident.item()
        if c.edge_w > 0:
            with torch.no_grad():
                target = edge_map(day, c.edge, self.hed_teacher)
            g_edge = F.l1_loss(edge_map(fake_night, c.edge, self.hed), target) * c.edge_w
            total = total + g_edge
            losses["G_edge"] = g_edge.item()
        total.backward()
        self.opt["G"].step()
        for d in (self.D, self.D_day):
            d.requires_grad_(True)
        # (2) discriminators, on pooled fakes
        self.opt["D"].zero_grad(set_to_none=True)
        pooled_night = self.pools["night"].query(fake_night, rng)
        pooled_day = self.pools["day"].query(fake_day, rng)
        d_real = lsgan(self.D(self._d_view(night, 0)), True) + lsgan(self.D_day(self._d_view(day, 0)), True)
        d_fake = lsgan(self.D(self._d_view(pooled_night, 1)), False) + lsgan(self.D_day(self._d_view(pooled_day, 1)), False)
        ((d_real + d_fake) * 0.5 * c.adv_weight).backward()
        self.opt["D"].step()
        losses.update(D_real=d_real.item(), D_fake=d_fake.item())
        return losses

    # -- epochs, checkpoints --------------------------------------------------------------------
    def run(self, until_epoch: int | None = None) -> dict[str, Any]:
        """Train from the last checkpoint (or the start) to `epochs` — or stop after `until_epoch`,
        with a checkpoint, to continue later; returns a summary."""
        c = self.cfg
        self._resume()
        stop = c.epochs if until_epoch is None else min(c.epochs, until_epoch)
        for epoch in range(self.epoch, stop):
            self.epoch = epoch
            self.data.epoch = epoch
            for net in self.nets.values():
                net.train()
            order = torch.randperm(len(self.data), generator=common.generator(c.seed, epoch)).tolist()
            loader = torch.utils.data.DataLoader(self.data, batch_size=c.batch_size, sampler=order,
                                                 num_workers=c.workers, drop_last=len(self.data) >= c.batch_size)
            n_steps = len(loader) if c.steps_per_epoch is None else min(len(loader), c.steps_per_epoch)
            sums: dict[str, float] = {}
            bar = common.progress(total=n_steps, desc=f"epoch {epoch + 1}/{c.epochs}", enabled=c.progress)
            for i, (day, night) in enumerate(loader):
                if i >= n_steps:
                    break
                losses = self.train_step(day.to(self.device), night.to(self.device))
                self.step += 1
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix({k: f"{v / (i + 1):.3f}" for k, v in sums.items()}, refresh=False)
                bar.update(1)
            bar.close()
            lr = self.sched["G"].get_last_lr()[0]
            for s in self.sched.values():
                s.step()
            means = {k: v / max(n_steps, 1) for k, v in sums.items()}
            if not all(math.isfinite(v) for v in means.values()):
                raise FloatingPointError(f"epoch {epoch + 1}: non-finite losses {means}; lower --lr or check the images")
            self.history.append({"epoch": epoch + 1, "steps": n_steps, "lr": lr, **means})
            self.epoch = epoch + 1
            if self.epoch % c.checkpoint_every == 0 or self.epoch in (c.epochs, stop):
                self.save()
        return {"epochs": self.epoch, "steps": self.step, "history": self.history, "output": str(self.out),
                "generator": str(self.out / "generator.pth")}

    def state(self) -> dict[str, Any]:
        return {"config": dataclasses.asdict(self.cfg), "epoch": self.epoch, "step": self.step,
                "history": self.history, "nets": {k: n.state_dict() for k, n in self.nets.items()},
                "opt": {k: o.state_dict() for k, o in self.opt.items()},
                "sched": {k: s.state_dict() for k, s in self.sched.items()},
                "pools": {k: p.images for k, p in self.pools.items()}}

    def save(self) -> None:
        """Checkpoint: generator in the public layout, a sample grid, then the full state (resume point)."""
        name = f"epoch_{self.epoch:04d}"
        gen_state = {k: v.detach().cpu() for k, v in self.G.state_dict().items()}
        meta = {"format": "CycleGAN/pix2pix ResnetGenerator state dict", **self.G.config, "epoch": self.epoch,
                "mode": "cyclegan" if self.cfg.cyclegan else "edge-gan", "edge": self.cfg.edge, "size": self.cfg.size}
        (self.out / "generators").mkdir(parents=True, exist_ok=True)
        common.save_checkpoint(self.out / "generators", gen_state, f"{name}.pth")
        common.save_checkpoint(self.out, gen_state, "generator.pth")
        common.write_json(self.out / "generator.json", meta)
        common.write_json(self.out / "history.json", self.history)
        self.sample_grid(self.out / "samples" / f"{name}.png")
        common.save_checkpoint(self.out, self.state())

    def _resume(self) -> None:
        state = common.load_checkpoint(self.out)
        if state is None:
            self.out.mkdir(parents=True, exist_ok=True)
            common.write_json(self.out / "config.json", dataclasses.asdict(self.cfg))
            return
        saved = state["config"]
        changed = [k for k in ("cyclegan", "ngf", "ndf", "n_blocks", "norm", "edge", "size", "seed")
                   if saved.get(k) != getattr(self.cfg, k)]
        if changed:
            raise ValueError(f"{self.out} holds a run with other settings ({', '.join(f'{k}: {saved[k]!r}' for k in changed)}); "
                             "use another --output or the same settings to resume")
        for k, net in self.nets.items():
            net.load_state_dict(state["nets"][k])
        for k, o in self.opt.items():
            o.load_state_dict(state["opt"][k])
        for k, s in self.sched.items():
            s.load_state_dict(state["sched"][k])
        for k, p in self.pools.items():
            p.images = state["pools"].get(k, [])
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        if self.cfg.progress and self.epoch < self.cfg.epochs:
            print(f"resuming {self.out} after epoch {self.epoch}", file=sys.stderr)

    @torch.no_grad()
    def sample_grid(self, path: Path) -> None:
        """The first few day images (top row), their night translations (and, with --cyclegan, back to day)."""
        from PIL import Image

        day = fixed_day_batch(self.day_files, self.cfg.samples, self.cfg.size).to(self.device)
        self.G.eval()
        cols = [day, self.G(day)]
        if self.cfg.cyclegan:
            self.G_back.eval()
            cols.append(self.G_back(cols[1]))
            self.G_back.train()
        self.G.train()
        grid = torch.cat([torch.cat(list(col), dim=2) for col in cols], dim=1)   # C x (cols*H) x (n*W)
        arr = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path)


def train(config: TrainConfig) -> dict[str, Any]:
    """Train (or resume) a day-to-night generator; returns the epochs done, steps and loss history."""
    return Trainer(config).run()


# ---- command line ---------------------------------------------------------------------------
_HELP = {
    "day": "folder of day photographs (searched recursively)",
    "night": "folder of night photographs (unpaired with the day ones)",
    "output": "run folder: generator.pth, samples/, last.pt (rerun to resume)",
    "epochs": "epochs over the day images", "decay_epochs": "epochs of linear lr decay at the end (default: half)",
    "size": "training crop side (multiple of 4)", "load_size": "shorter side before cropping (default size*286/256)",
    "lr": "Adam learning rate", "beta1": "Adam beta1", "adv_weight": "least-squares adversarial loss weight",
    "edge_weight": "edge-consistency L1 weight (default 5; 0 with --cyclegan)",
    "edge": "edge detector: sobel | canny (its magnitude) | hed", "hed_checkpoint": "HED weights (pytorch-hed/gandtr)",
    "hed_lr": "lr of the HED fine-tuning", "hed_finetune": "fine-tune HED against a frozen copy (gandtr's HEDNGAN)",
    "cyclegan": "train the CycleGAN baseline (two generators, cycle loss)", "cycle_weight": "cycle-consistency weight",
    "identity_weight": "identity loss weight, times --cycle-weight", "pool_size": "CycleGAN fake-image pool size",
    "ngf": "generator width", "ndf": "discriminator width", "n_blocks": "generator residual blocks",
    "norm": "batch | instance", "d_augment": "augflow pipeline YAML whose batch ops augment the discriminator's inputs",
    "checkpoint_every": "epochs between checkpoints (and sample grids)", "samples": "day images in each sample grid",
    "steps_per_epoch": "cap on steps per epoch (smoke runs)", "seed": "seed of every random draw",
    "device": "cpu, cuda or auto", "workers": "DataLoader workers", "progress": "show the progress bar",
}


def build_parser(prog: str = "python -m augflow.train.day_to_night") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                epilog="Options map one to one to augflow.train.day_to_night.TrainConfig.")
    defaults = TrainConfig(day="", night="", output="")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = _HELP.get(f.name, "")
        if f.name in ("day", "night", "output"):
            p.add_argument(flag, required=True, help=help_text)
        elif isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            p.add_argument(flag, type=_parse_type(f.type), default=default,
                           help=f"{help_text} (default: {default})" if default is not None else help_text)
    return p


def _parse_type(annotation: Any):
    text = str(annotation)
    if text.startswith("int"):
        return int
    if text.startswith("float"):
        return float
    return str


def main(argv: list[str] | None = None, prog: str = "python -m augflow.train.day_to_night") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        summary = train(TrainConfig(**vars(args)))
    except (ValueError, FileNotFoundError, FloatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    last = summary["history"][-1] if summary["history"] else {}
    print(json.dumps({"output": summary["output"], "epochs": summary["epochs"], "steps": summary["steps"],
                      "last_epoch_losses": {k: v for k, v in last.items() if k not in ("epoch", "steps")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
