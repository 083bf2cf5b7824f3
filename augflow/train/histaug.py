"""Train a HistAug model from patches, a frozen encoder and an augflow pipeline.

The training pairs come from augflow's own provenance (the MICS-Lab code builds them the same
way in `datasets/patch_dataset.py` + `utils/transform_factory.py`, with its own 13 transforms):
each patch is augmented `views` times by the pipeline (call seed = (pipeline seed, epoch=view,
index=patch)), original and augmented patches are encoded once with the user's encoder, and the
model learns embedding(original) + params(provenance) -> embedding(augmented). As in the paper's
`model_interface.py`, each step also asks the model to map the identity parameters to the
original embedding (`identity_loss`), and the optimiser is AdamW (lr 5e-4, weight decay 1e-5).

Patches are split into train and validation *by patch*, so the validation score measures
embeddings of patches the model never saw. Everything a resume needs (encoded pairs, model,
optimiser, epoch, history) is written to `checkpoint_dir` after every epoch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from augflow.latent.model import HistAug
from augflow.latent.vocab import Vocabulary
from augflow.train import common

PAIRS_NAME = "pairs.pt"


def train_histaug(patches: Sequence[Any] | np.ndarray, encoder: Callable[[torch.Tensor], torch.Tensor],
                  pipeline: Any, *, epochs: int = 20, device: str | torch.device = "auto", views: int = 4,
                  val_fraction: float = 0.1, batch_size: int = 256, lr: float = 5e-4, weight_decay: float = 1e-5,
                  loss: str = "mse", identity_loss: bool = True, chunks: int = 8, depth: int = 12, heads: int = 8,
                  mlp_ratio: float = 4.0, positions: str = "learnable", residual: bool = True, bank_size: int = 65536,
                  preprocess: Callable[[list[np.ndarray]], torch.Tensor] | None = None, encode_batch_size: int = 256,
                  checkpoint_dir: str | Path | None = None, resume: bool = True, seed: int = 0,
                  progress: bool = True, image_field: str = "image") -> HistAug:
    """Train HistAug to predict the encoder's embedding of pipeline-augmented patches.

    patches: HxWxC arrays (a list, or an N x H x W x C array), or sample dicts with `image_field`.
    encoder: any `torch.nn.Module` or callable mapping a float batch (B, C, H, W) in [0, 1] (or
      what `preprocess` returns) to embeddings (B, D); it is frozen (run under `no_grad`).
    pipeline: a YAML path, a `Pipeline`, or a pipeline dict; its `sample` stage is the
      transformation vocabulary. Augmented patches must share one size (end with a resize/crop).
    Returns the model (eval mode) with `.history` (per-epoch train loss and validation scores) and
    `.validation` (the last validation scores: model vs identity vs matched-norm Gaussian noise).
    """
    if loss not in ("mse", "cosine"):
        raise ValueError(f"loss must be 'mse' or 'cosine', got {loss!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    pipe = _load_pipeline(pipeline)
    dev = common.resolve_device(device)
    settings = {"views": views, "val_fraction": val_fraction, "seed": seed, "n": len(patches),
                "pipeline": pipe.to_yaml(), "chunks": chunks, "depth": depth, "heads": heads,
                "mlp_ratio": mlp_ratio, "positions": positions, "residual": residual, "loss": loss,
                "identity_loss": identity_loss,
                "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay}
    fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    state = common.load_checkpoint(ckpt_dir) if (ckpt_dir is not None and resume) else None
    if state is not None and state["fingerprint"] != fingerprint:
        raise ValueError(f"the checkpoint in {str(ckpt_dir)!r} was made with other settings or data (different "
                         "pipeline, patches, views or model size); pass resume=False to start over there, or "
                         "another checkpoint_dir")

    pairs = common.load_checkpoint(ckpt_dir, PAIRS_NAME) if state is not None else None
    if pairs is None:
        pairs = build_pairs(patches, encoder, pipe, views=views, val_fraction=val_fraction, seed=seed,
                            preprocess=preprocess, encode_batch_size=encode_batch_size, progress=progress,
                            image_field=image_field, device=dev)
        if ckpt_dir is not None:
            common.save_checkpoint(ckpt_dir, pairs, PAIRS_NAME)
    vocab = Vocabulary.from_dict(pairs["vocab"])

    train_rows = pairs["split"][pairs["patch"]] == 0
    with common.seeded(seed):
        n_bank = int(min(bank_size, int(train_rows.sum())))
        model = HistAug(pairs["orig"].shape[1], vocab, chunks=chunks, depth=depth, heads=heads, mlp_ratio=mlp_ratio,
                        positions=positions, residual=residual, bank_size=n_bank)
    _fill_stats(model, pairs, train_rows, n_bank, seed)
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    history: list[dict[str, float]] = []
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history, start = state["history"], state["epoch"]

    tr = _rows(pairs, train_rows, dev)
    va = _rows(pairs, ~train_rows, dev)
    id_codes, id_order = (torch.as_tensor(a, device=dev)[None] for a in vocab.identity())
    bar = common.progress(total=epochs, desc="histaug", enabled=progress, initial=start)
    for epoch in range(start, epochs):
        model.train()
        perm = torch.randperm(tr["n"], generator=common.generator(seed, epoch)).to(dev)
        total, count = 0.0, 0
        for b in range(0, tr["n"], batch_size):
            idx = perm[b:b + batch_size]
            x, y = tr["orig"][idx], tr["aug"][idx]
            pred = model(x, tr["codes"][idx], tr["order"][idx])
            step_loss = _loss(pred, y, loss, model)
            if identity_loss:
                step_loss = step_loss + _loss(model(x, id_codes, id_order), x, loss, model)
            opt.zero_grad(set_to_none=True)
            step_loss.backward()
            opt.step()
            total += float(step_loss.detach()) * len(idx)
            count += len(idx)
        record = {"epoch": epoch + 1, "train_loss": total / max(count, 1)}
        if va["n"]:
            record.update(evaluate(model, va["orig"], va["aug"], va["codes"], va["order"], seed=seed))
        history.append(record)
        bar.update(1)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", "mse", "identity_mse")})
        if ckpt_dir is not None:
            common.save_checkpoint(ckpt_dir, {"fingerprint": fingerprint, "epoch": epoch + 1, "history": history,
                                              "model": model.state_dict(), "optimizer": opt.state_dict()})
    bar.close()
    model.eval()
    model.history = history
    model.validation = {k: v for k, v in history[-1].items() if k not in ("epoch", "train_loss")} if history else {}
    model.meta = {"pipeline": settings["pipeline"], "trained": {k: settings[k] for k in
                  ("views", "val_fraction", "seed", "n", "loss", "identity_loss", "lr", "weight_decay")},
                  "epochs": epochs, "validation": model.validation}
    if ckpt_dir is not None:
        model.save(ckpt_dir / "final")
    return model


def build_pairs(patches, encoder, pipe, *, views: int, val_fraction: float, seed: int, preprocess=None,
                encode_batch_size: int = 256, progress: bool = True, image_field: str = "image",
                device: torch.device | str = "cpu") -> dict[str, Any]:
    """Augment every patch `views` times, encode originals and augmentations, encode provenance."""
    images = [_image_of(p, image_field) for p in patches]
    if len(images) < 2:
        raise ValueError(f"train_histaug needs at least 2 patches, got {len(images)}")
    n = len(images)
    split = np.zeros(n, dtype=np.int64)
    n_val = int(round(n * val_fraction))
    if n_val:
        split[np.random.Generator(np.random.Philox(seed)).permutation(n)[:n_val]] = 1
    augmented, provenances, patch_of = [], [], []
    for v in common.progress(range(views), desc="augment", enabled=progress):
        for i, img in enumerate(images):
            out = pipe({image_field: img}, index=i, epoch=v)
            augmented.append(out[image_field])
            provenances.append(out.provenance)
            patch_of.append(i)
    vocab = Vocabulary.build(pipe, provenances)
    codes, order = zip(*(vocab.encode(p) for p in provenances))
    to_input = preprocess or images_to_tensor
    orig = encode(encoder, images, to_input, encode_batch_size, device, progress, "encode originals")
    aug = encode(encoder, augmented, to_input, encode_batch_size, device, progress, "encode augmented")
    return {"orig": orig, "aug": aug, "patch": torch.as_tensor(patch_of), "split": torch.as_tensor(split),
            "codes": torch.as_tensor(np.stack(codes)), "order": torch.as_tensor(np.stack(order)),
            "vocab": vocab.to_dict()}


def images_to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """HxWxC (or HxW) images -> float (B, C, H, W) in [0, 1] (uint8 / 255, uint16 / 65535)."""
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"augmented patches have different sizes {sorted(shapes)[:4]}; end the pipeline with an op "
                         "that fixes the size (e.g. resize or center_crop) or pass preprocess= to train_histaug")
    arr = np.stack(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    scale = {np.uint8: 255.0, np.uint16: 65535.0}.get(arr.dtype.type, 1.0)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).float() / scale


@torch.no_grad()
def encode(encoder, images: list[np.ndarray], to_input, batch_size: int, device, progress: bool = False,
           desc: str = "encode") -> torch.Tensor:
    """Embeddings (N, D) on CPU of images through a frozen encoder, in batches."""
    module = encoder if isinstance(encoder, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
        first = next(module.parameters(), None)
        device = first.device if first is not None else device   # batches go where the encoder lives
    out = []
    try:
        for start in common.progress(range(0, len(images), batch_size), desc=desc, enabled=progress):
            batch = to_input(images[start:start + batch_size])
            emb = encoder(batch.to(device) if isinstance(batch, torch.Tensor) else batch)
            if not isinstance(emb, torch.Tensor):
                raise TypeError(f"the encoder must return a tensor of embeddings (B, D), got {type(emb).__name__}")
            out.append(emb.detach().float().reshape(emb.shape[0], -1).cpu())
    finally:
        if module is not None:
            module.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def evaluate(model: HistAug, orig: torch.Tensor, aug: torch.Tensor, codes: torch.Tensor, order: torch.Tensor,
             seed: int = 0, batch_size: int = 4096) -> dict[str, float]:
    """Held-out scores: MSE and cosine to the true augmented embedding for the model's prediction,
    for the identity (unaugmented embedding) and for Gaussian noise of matched norm."""
    was_training = model.training
    model.eval()
    preds = torch.cat([model(orig[s:s + batch_size], codes[s:s + batch_size], order[s:s + batch_size])
                       for s in range(0, orig.shape[0], batch_size)])
    model.train(was_training)
    diff_norm = (aug - orig).norm(dim=1, keepdim=True)
    g = common.generator(seed, 7_777)
    noise = torch.randn(orig.shape, generator=g).to(orig.device)
    noisy = orig + F.normalize(noise, dim=1) * diff_norm
    out = {}
    for name, guess in (("", preds), ("identity_", orig), ("noise_", noisy)):
        out[f"{name}mse"] = float(F.mse_loss(guess, aug))
        out[f"{name}cos"] = float(F.cosine_similarity(guess, aug, dim=1).mean())
    return out


# ---- helpers ----------------------------------------------------------------------------
def _load_pipeline(pipeline):
    from augflow.pipeline import Pipeline

    if isinstance(pipeline, Pipeline):
        return pipeline
    if isinstance(pipeline, Mapping):
        return Pipeline.from_dict(pipeline)
    if isinstance(pipeline, (str, Path)):
        return Pipeline.from_yaml(pipeline)
    raise TypeError(f"pipeline must be a YAML path, a Pipeline or a dict, got {type(pipeline).__name__}")


def _image_of(patch: Any, field: str) -> np.ndarray:
    if isinstance(patch, Mapping):
        patch = patch[field]
    if isinstance(patch, torch.Tensor):
        raise TypeError("patches must be HxWxC numpy arrays (what augflow ops take), got a torch tensor; "
                        "use tensor.permute(1, 2, 0).numpy()")
    return np.asarray(patch)


def _rows(pairs: dict[str, Any], mask: torch.Tensor, dev: torch.device) -> dict[str, Any]:
    patch = pairs["patch"][mask]
    return {"orig": pairs["orig"][patch].to(dev), "aug": pairs["aug"][mask].to(dev),
            "codes": pairs["codes"][mask].to(dev), "order": pairs["order"][mask].to(dev), "n": int(mask.sum())}


def _fill_stats(model: HistAug, pairs: dict[str, Any], train_rows: torch.Tensor, n_bank: int, seed: int) -> None:
    train_patches = pairs["split"] == 0
    emb = torch.cat([pairs["orig"][train_patches], pairs["aug"][train_rows]])
    center = emb.mean(0)
    model.center.copy_(center)
    model.scale.copy_((emb - center).pow(2).mean().sqrt().clamp_min(1e-8))
    rows = torch.nonzero(train_rows).flatten()
    pick = rows[torch.randperm(len(rows), generator=common.generator(seed, 31_337))[:n_bank]]
    model.bank_codes.copy_(pairs["codes"][pick])
    model.bank_order.copy_(pairs["order"][pick])


def _loss(pred: torch.Tensor, target: torch.Tensor, kind: str, model: HistAug) -> torch.Tensor:
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(pred, target, dim=1)).mean()
    # MSE on the model's scale: the same objective as raw MSE, better conditioned
    return F.mse_loss(pred / model.scale, target / model.scale)


__all__ = ["train_histaug", "build_pairs", "encode", "evaluate", "images_to_tensor"]
