"""MADAug: a policy network on the model's features picks each sample's op and magnitude, trained by
one-step look-ahead on a held-out batch (Hou et al., "When to Learn What: Model-Adaptive Data
Augmentation Curriculum", ICCV 2023).

- Policy network: an MLP (after a LayerNorm) from a sample's feature vector (what the trainer sends as
  `loader.feedback(batch, losses=..., features=...)`, e.g. the penultimate activations) to a
  distribution over the pipeline's controlled ops and a magnitude in (0, 1) per op.
- Decisions: a sample is augmented with probability `share(epoch)`, rising linearly to 1 over
  `ramp_epochs` (the paper's growing share of policy-augmented samples); then one op is drawn from
  the network's distribution and its magnitude rounded to a level, from the sample's own decision
  stream. As every policy here, epoch `e` uses the features fed back before `e` and the network as
  it was when epoch `e` began (so prefetching and workers cannot change a decision): the features
  lag the model by up to one epoch, where the paper reads them from the current model.
- Training (`update`): the ops are not differentiable, so the inner loss depends on the policy
  through the probability of what was applied (MetaAugment's weighting): each augmented sample's
  loss is weighted by pi(op) * N(level; mu(op), sigma) / (same, detached) -- value 1, gradient the
  score function. A virtual step w' = w - lr * grad_w L_train (torch.func.functional_call, graph
  kept) is scored on a held-out batch, and L_val(w') is minimised over the policy's parameters.
- `curriculum`: per epoch, the share augmented, the mean magnitude and the op histogram (log it,
  or `plot_curriculum(path)` with matplotlib).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from augflow.adaptive.base import Policy, level_of
from augflow.decision import LEVELS


class MADAug(Policy):
    name = "madaug"

    def __init__(self, *, hidden: int = 64, lr: float = 1e-3, inner_lr: float = 0.05, ramp_epochs: int = 5,
                 sigma: float = 0.15, init_seed: int = 0):
        super().__init__()
        if ramp_epochs < 1:
            raise ValueError(f"ramp_epochs must be >= 1, got {ramp_epochs}")
        self.hidden, self.lr, self.inner_lr = int(hidden), float(lr), float(inner_lr)
        self.ramp_epochs, self.sigma, self.init_seed = int(ramp_epochs), float(sigma), int(init_seed)
        self.features: dict[int, np.ndarray] = {}
        self.net = None
        self.optimizer = None
        self.table: dict[int, tuple[np.ndarray, np.ndarray]] = {}   # index -> (op probs, magnitudes), frozen
        self.table_epoch: int | None = None
        self.current: dict[int, tuple[int, int]] = {}               # index -> (op, level) of this epoch
        self.curriculum: list[dict[str, Any]] = []

    # ---- the network -------------------------------------------------------------------------
    def _ensure_net(self, dim: int) -> None:
        import torch

        if self.net is not None:
            return
        if not self.controls:
            raise RuntimeError("MADAug has no vocabulary yet: compile the loader with policy= first")
        with torch.random.fork_rng(devices=[]):       # a fixed initialisation, global RNG untouched
            torch.manual_seed(self.init_seed)
            k = len(self.controls)
            # features are standardised per sample (LayerNorm without affine): their scale grows as the
            # model trains, which otherwise saturates the softmax and sigmoid heads within a few steps
            self.net = torch.nn.Sequential(torch.nn.LayerNorm(dim, elementwise_affine=False),
                                           torch.nn.Linear(dim, self.hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(self.hidden, 2 * k))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        saved, self._saved = getattr(self, "_saved", None), None
        if saved is not None:             # from load_state_dict (possibly before compile bound the vocabulary)
            self.net.load_state_dict(saved["net"])
            self.optimizer.load_state_dict(saved["optimizer"])

    def _heads(self, x, log: bool = False):
        import torch

        out = self.net(x)
        k = len(self.controls)
        logits = torch.log_softmax(out[:, :k], dim=1)
        return (logits if log else logits.exp()), torch.sigmoid(out[:, k:])

    def share(self, epoch: int) -> float:
        """The share of samples augmented in `epoch`."""
        return min(1.0, (epoch + 1) / self.ramp_epochs)

    # ---- policy protocol ---------------------------------------------------------------------
    def fold(self, rows: list[tuple], epoch: int) -> None:
        for i, _, _, feat, _ in rows:
            if feat is not None:
                self.features[i] = np.asarray(feat, dtype=np.float32)

    def on_epoch(self, epoch: int) -> None:
        if self.table_epoch == epoch:
            return
        import torch

        self.table, self.table_epoch = {}, epoch
        if not self.features:
            return
        indices = sorted(self.features)
        x = torch.from_numpy(np.stack([self.features[i] for i in indices]))
        self._ensure_net(x.shape[1])
        with torch.no_grad():
            probs, mags = self._heads(x)
        for i, p, m in zip(indices, probs.double().numpy(), mags.double().numpy()):
            self.table[i] = (p / p.sum(), m)

    def decide(self, indices: np.ndarray, epoch: int) -> list[dict[str, Any]]:
        self.current = {}
        decisions = super().decide(indices, epoch)
        if not self.curriculum or self.curriculum[-1]["epoch"] != epoch:
            levels = [lv for _, lv in self.current.values()]
            hist = np.bincount([k for k, _ in self.current.values()], minlength=len(self.controls))
            self.curriculum.append({"epoch": int(epoch), "share": len(self.current) / max(1, len(indices)),
                                    "mean_magnitude": float(np.mean(levels) / LEVELS) if levels else 0.0,
                                    "ops": {c.op: int(h) for c, h in zip(self.controls, hist)}})
        return decisions

    def decide_one(self, index: int, epoch: int, rng: np.random.Generator) -> dict[str, Any]:
        if rng.random() >= self.share(epoch):
            return {"ops": {}}
        k = len(self.controls)
        probs, mags = self.table.get(index, (np.full(k, 1.0 / k), np.full(k, 0.5)))   # prior: uniform, m = .5
        op = int(rng.choice(k, p=probs))
        level = level_of(float(mags[op]), rng)
        self.current[index] = (op, level)
        return {"ops": {self.controls[op].path: level}}

    # ---- bi-level training -------------------------------------------------------------------
    def update(self, model: Any, x: Any, y: Any, indices: Any, features: Any, val_x: Any, val_y: Any,
               loss_fn: Callable | None = None) -> float:
        """One policy step: virtual SGD step of `model` on the (augmented) batch with the policy's
        score-function weights, then the held-out loss at the virtual weights is minimised over the
        policy. `indices` are the batch's `_index`, `features` the model's (detached) features of it.
        Returns the held-out loss. The model's own parameters are not changed."""
        import torch
        import torch.nn.functional as F
        from torch.func import functional_call

        loss_fn = loss_fn or (lambda out, t: F.cross_entropy(out, t, reduction="none"))
        feats = torch.as_tensor(features).detach().float()
        self._ensure_net(feats.shape[1])
        idx = [int(i) for i in (indices.tolist() if hasattr(indices, "tolist") else indices)]
        rows = [r for r, i in enumerate(idx) if i in self.current]
        weights = torch.ones(len(idx))
        if rows:
            logp, mags = self._heads(feats[rows], log=True)
            op = torch.tensor([self.current[idx[r]][0] for r in rows])
            level = torch.tensor([self.current[idx[r]][1] / LEVELS for r in rows])
            pick = torch.arange(len(rows))
            logw = logp[pick, op] - 0.5 * ((level - mags[pick, op]) / self.sigma) ** 2
            weights = weights.index_put((torch.tensor(rows),), torch.exp(logw - logw.detach()))
        params = dict(model.named_parameters())
        inner = (loss_fn(model(x), y) * weights).mean()
        grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
        fast = {n: p - self.inner_lr * g for (n, p), g in zip(params.items(), grads)}
        val = loss_fn(functional_call(model, fast, (val_x,)), val_y).mean()
        self.optimizer.zero_grad()
        val.backward(inputs=list(self.net.parameters()))
        self.optimizer.step()
        model.zero_grad(set_to_none=True)
        return float(val.detach())

    # ---- curriculum and resume ---------------------------------------------------------------
    def plot_curriculum(self, path: str) -> None:
        """Magnitude and share augmented per epoch, as a PNG (needs matplotlib)."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("plot_curriculum needs matplotlib (pip install matplotlib); the numbers are in "
                              ".curriculum") from None
        ep = [c["epoch"] for c in self.curriculum]
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(ep, [c["mean_magnitude"] for c in self.curriculum], label="mean magnitude")
        ax.plot(ep, [c["share"] for c in self.curriculum], label="share augmented")
        ax.set_xlabel("epoch")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)

    def _state(self) -> dict[str, Any]:
        return {"features": {int(k): v.tolist() for k, v in self.features.items()},
                "net": None if self.net is None else {k: v.clone() for k, v in self.net.state_dict().items()},
                "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
                "net_dim": None if self.net is None else self.net[1].in_features,
                "table_epoch": self.table_epoch, "curriculum": list(self.curriculum)}

    def _load(self, state: dict[str, Any]) -> None:
        import copy

        self.features = {int(k): np.asarray(v, dtype=np.float32) for k, v in state["features"].items()}
        self.net = self.optimizer = None
        self._saved = None if state["net"] is None else {"net": state["net"],
                                                         "optimizer": copy.deepcopy(state["optimizer"])}
        self.curriculum = list(state["curriculum"])
        self.table_epoch = None          # the table of the epoch being resumed is rebuilt from the net
        self.table = {}
