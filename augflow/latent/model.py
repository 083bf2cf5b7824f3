"""HistAug: predict the embedding of a transformed patch from its embedding and the transformation.

Follows the MICS-Lab `HistAug` code (`src/histaug/models/histaug_model.py`):
- the D-dim embedding is cut into C chunk tokens of size E = D / C, plus sinusoidal chunk
  positions (`chunk_pos_embeddings`);
- each transformation parameter is a token: discrete values through an `nn.Embedding` table,
  continuous ones through Linear(1, 2E)-SiLU-Linear(2E, E); a learnable (or sinusoidal) position
  embedding of the rank at which the transform was applied is added;
- `depth` blocks of cross-attention (chunk tokens are queries, transformation tokens keys and
  values, LayerNorm on both inputs and per-head q/k norm) followed by an MLP, each with a
  residual; a final LayerNorm, the chunks concatenated back to D, and Linear(D, D).
Differences, each for a stated reason:
- the token list is read from an augflow pipeline (`augflow.latent.vocab`) instead of the
  paper's 13 hard-coded names, and an absent continuous parameter (op not applied) gets a learned
  "absent" vector rather than the value 0, because 0 is not the identity of every parameter;
- embeddings are centred with the training mean and scaled by one global scale before the chunk
  split (undone after the head): the frozen encoder's embeddings can have any offset and scale,
  and a single scalar keeps the loss an MSE on the original embeddings up to a constant;
- `residual=True` (default) predicts the change: output = x + head(...), with the head
  initialised to zero so an untrained model is the identity. The paper's head (output =
  head(...)) is `residual=False`; it has to learn the identity map through the per-chunk
  LayerNorm first, which its 2000-epoch GPU schedule affords and a few CPU minutes do not;
- a bank of the parameter sets drawn while training is kept with the weights, so the model can
  draw new transformations from the same distribution as the pipeline it learned (by bag, "WSI-wise",
  or by instance) without re-running image ops.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from augflow.latent.vocab import Vocabulary

FORMAT = "augflow.histaug/1"
CONFIG_FILE = "config.json"
WEIGHTS_SAFETENSORS = "weights.safetensors"
WEIGHTS_TORCH = "weights.pt"


def sinusoidal(num_positions: int, dim: int) -> torch.Tensor:
    """The transformer sine/cosine table (as in the paper's `_get_sinusoidal_embeddings`)."""
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even token size, got {dim}")
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(num_positions, dim)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)
    return pe


class CrossAttention(nn.Module):
    """Multi-head attention from chunk tokens (queries) to transformation tokens (keys, values)."""

    def __init__(self, dim: int, heads: int, qk_norm: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"token size {dim} must be divisible by heads={heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        zb, t, _ = z.shape
        k, v = self.kv(z).view(zb, t, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k = self.k_norm(k)
        if zb == 1 and b > 1:
            # One transformation for a whole bag: every chunk token of every row attends to the same
            # keys, so fold the rows into the query axis — one (heads, b*n, t) product, no copies of k/v.
            q = self.q_norm(self.q(x).view(b * n, self.heads, self.head_dim).transpose(0, 1))
            attn = torch.softmax(q @ k[0].transpose(1, 2) * self.head_dim ** -0.5, dim=-1)
            out = (attn @ v[0]).transpose(0, 1).reshape(b, n, c)
        else:
            q = self.q_norm(self.q(x).view(b, n, self.heads, self.head_dim).transpose(1, 2))
            out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class Block(nn.Module):
    """Cross-attention + MLP, pre-norm with residuals (the paper's `Block`)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qk_norm: bool = True):
        super().__init__()
        self.x_norm, self.z_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, heads, qk_norm)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.x_norm(x), self.z_norm(z))
        return x + self.mlp(self.norm2(x))


class HistAug(nn.Module):
    """Embedding + transformation parameters -> embedding of the transformed input.

    `forward(x, codes, order)`: x (B, D); codes (B or 1, K) and order (B or 1, S) from
    `vocab.encode`. `augment(x, index)` uses parameter sets from the bank drawn at training time.
    """

    def __init__(self, dim: int, vocab: Vocabulary, *, chunks: int = 8, depth: int = 12, heads: int = 8,
                 mlp_ratio: float = 4.0, qk_norm: bool = True, positions: str = "learnable",
                 residual: bool = True, bank_size: int = 0):
        super().__init__()
        if dim % chunks:
            raise ValueError(f"embedding size {dim} must be divisible by chunks={chunks} (HistAug cuts the "
                             "embedding into equal chunk tokens); pick a divisor of the embedding size")
        if positions not in ("learnable", "sinusoidal"):
            raise ValueError(f"positions must be 'learnable' or 'sinusoidal', got {positions!r}")
        self.dim, self.chunks, self.token_dim = dim, chunks, dim // chunks
        self.vocab = vocab
        self.hparams = {"dim": dim, "chunks": chunks, "depth": depth, "heads": heads, "mlp_ratio": mlp_ratio,
                        "qk_norm": qk_norm, "positions": positions, "residual": residual}
        self.residual = residual
        e = self.token_dim
        self.register_buffer("chunk_pos", sinusoidal(chunks, e))
        if positions == "learnable":
            self.step_pos = nn.Embedding(vocab.n_steps + 1, e)
        else:
            self.register_buffer("step_pos_table", sinusoidal(vocab.n_steps + 1, e))
            self.step_pos = None
        self.tokens = nn.ModuleList()
        self.absent = nn.ParameterList()
        for leaf in vocab.leaves:
            if leaf.kind == "discrete":
                self.tokens.append(nn.Embedding(len(leaf.values) + 1, e))
                self.absent.append(nn.Parameter(torch.zeros(0), requires_grad=False))
            else:
                self.tokens.append(nn.Sequential(nn.Linear(1, 2 * e), nn.SiLU(), nn.Linear(2 * e, e)))
                self.absent.append(nn.Parameter(torch.randn(e) * 0.02))
        self.register_buffer("token_step", torch.tensor([leaf.step for leaf in vocab.leaves], dtype=torch.long))
        self.blocks = nn.ModuleList([Block(e, heads, mlp_ratio, qk_norm) for _ in range(depth)])
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(dim, dim)
        if residual:     # start as the identity map: training only has to learn the change
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.register_buffer("center", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("bank_codes", torch.zeros(bank_size, vocab.n_tokens))
        self.register_buffer("bank_order", torch.zeros(bank_size, vocab.n_steps, dtype=torch.long))
        self.meta: dict[str, Any] = {}

    # ---- forward ------------------------------------------------------------------------
    def embed_transform(self, codes: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Transformation tokens (B, K, E) for code rows (B, K) and step ranks (B, S)."""
        toks = []
        for i, (leaf, module) in enumerate(zip(self.vocab.leaves, self.tokens)):
            c = codes[:, i]
            if leaf.kind == "discrete":
                toks.append(module(c.long()))
            else:
                present = ~torch.isnan(c)
                # nan_to_num first: a NaN in the unselected branch of `where` would poison the gradient
                value = module(torch.nan_to_num(c, nan=0.0)[:, None])
                toks.append(torch.where(present[:, None], value, self.absent[i].to(value.dtype)))
        z = torch.stack(toks, dim=1)
        ranks = order[:, self.token_step]                       # (B, K): the rank of each token's step
        pos = self.step_pos(ranks) if self.step_pos is not None else self.step_pos_table[ranks]
        return z + pos

    def forward(self, x: torch.Tensor, codes: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = ((x - self.center) / self.scale).view(b, self.chunks, self.token_dim) + self.chunk_pos
        z = self.embed_transform(codes, order)
        for block in self.blocks:
            h = block(h, z)
        out = self.head(self.norm(h).reshape(b, self.dim))
        if self.residual:
            return x + out * self.scale
        return out * self.scale + self.center

    # ---- use ----------------------------------------------------------------------------
    @property
    def bank_size(self) -> int:
        return int(self.bank_codes.shape[0])

    def sample_index(self, rng: np.random.Generator, size: int | tuple[int, ...] | None = None):
        """Indices of parameter sets in the bank (one per bag or per row), from the caller's rng."""
        if self.bank_size == 0:
            raise ValueError("this HistAug model has an empty parameter bank; it was built without training "
                             "draws, so give codes explicitly to forward()")
        return rng.integers(self.bank_size, size=size)

    @torch.no_grad()
    def augment(self, x: torch.Tensor, index: int | np.ndarray | torch.Tensor, batch_size: int = 16384) -> torch.Tensor:
        """Augment rows x (N, D): one bank transformation for all rows (scalar `index`, bag-wise)
        or one per row (`index` of length N, instance-wise). Deterministic for a given index."""
        was_training = self.training
        self.eval()
        try:
            dev = self.center.device
            x = x.to(dev, torch.float32)
            idx = torch.as_tensor(np.asarray(index), dtype=torch.long, device=dev)
            if idx.ndim == 0:
                codes, order = self.bank_codes[idx][None], self.bank_order[idx][None]
            elif idx.shape[0] != x.shape[0]:
                raise ValueError(f"instance-wise augmentation needs one index per row: {x.shape[0]} rows, "
                                 f"{idx.shape[0]} indices")
            else:
                codes, order = self.bank_codes[idx], self.bank_order[idx]
            outs = []
            for start in range(0, x.shape[0], batch_size):
                stop = start + batch_size
                c, o = (codes, order) if codes.shape[0] == 1 else (codes[start:stop], order[start:stop])
                outs.append(self(x[start:stop], c, o))
            return torch.cat(outs) if outs else x.clone()
        finally:
            self.train(was_training)

    def describe_index(self, index: int) -> dict[str, dict[str, Any]]:
        """The bank transformation `index`, readable (for provenance and debugging)."""
        return self.vocab.decode(self.bank_codes[index].cpu().numpy(), self.bank_order[index].cpu().numpy())

    # ---- persistence --------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"format": FORMAT, **self.hparams, "bank_size": self.bank_size, "vocab": self.vocab.to_dict(),
                **self.meta}

    def save(self, directory: str | Path) -> Path:
        """Write `config.json` (dims, op vocabulary, pipeline, scores) and the weights
        (safetensors when installed, else `torch.save`) into `directory`."""
        from augflow.io.writers import atomic_write

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        try:
            from safetensors.torch import save_file
        except ImportError:
            torch.save(state, directory / WEIGHTS_TORCH)
            stale = directory / WEIGHTS_SAFETENSORS
        else:
            save_file(state, str(directory / WEIGHTS_SAFETENSORS))
            stale = directory / WEIGHTS_TORCH
        if stale.exists():
            stale.unlink()
        atomic_write(directory / CONFIG_FILE, json.dumps(self.config(), indent=2).encode("utf-8"))
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "HistAug":
        """A model saved by `save`, in eval mode on `device`."""
        directory = Path(directory)
        cfg_path = directory / CONFIG_FILE
        if not cfg_path.exists():
            raise FileNotFoundError(f"no HistAug model in {str(directory)!r}: expected {CONFIG_FILE} written by "
                                    "HistAug.save(dir) or train_histaug(..., checkpoint_dir=dir)")
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        if cfg.get("format") != FORMAT:
            raise ValueError(f"{cfg_path}: format {cfg.get('format')!r} is not {FORMAT!r}")
        model = cls(cfg["dim"], Vocabulary.from_dict(cfg["vocab"]), chunks=cfg["chunks"], depth=cfg["depth"],
                    heads=cfg["heads"], mlp_ratio=cfg["mlp_ratio"], qk_norm=cfg["qk_norm"],
                    positions=cfg["positions"], residual=cfg.get("residual", False), bank_size=cfg["bank_size"])
        if (directory / WEIGHTS_SAFETENSORS).exists():
            from safetensors.torch import load_file
            state = load_file(str(directory / WEIGHTS_SAFETENSORS))
        elif (directory / WEIGHTS_TORCH).exists():
            state = torch.load(directory / WEIGHTS_TORCH, map_location="cpu", weights_only=True)
        else:
            raise FileNotFoundError(f"{directory}: {CONFIG_FILE} found but no {WEIGHTS_SAFETENSORS} or {WEIGHTS_TORCH}")
        model.load_state_dict(state)
        model.meta = {k: v for k, v in cfg.items() if k not in (*model.hparams, "format", "bank_size", "vocab")}
        return model.to(device).eval()


__all__ = ["HistAug", "CrossAttention", "Block", "sinusoidal", "FORMAT"]
