"""NGAME mini-batching: batches made of whole clusters of near neighbours, so in-batch negatives are hard.

From "NGAME: Negative Mining-aware Mini-batching for Extreme Classification" (Dahiya et al., WSDM
2023): cluster the training points by the current encoder's embeddings into many small clusters
(a few to tens of points), and build every mini-batch from whole clusters picked at random. The
other points of a batch are then neighbours of each point, so the in-batch negatives of a
contrastive or one-vs-all loss are hard, without a separate negative-mining pass or extra memory.
Clusters are rebuilt every `refresh_every` epochs from fresh embeddings, as the encoder changes;
the first `warmup_epochs` use random batches (the paper's warm start: the encoder's first
embeddings carry little signal).

    sampler = NGAMESampler(embed_fn=lambda: encode(dataset), cluster_size=16, batch_size=512,
                           refresh_every=5, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)          # as with DistributedSampler
        for batch in loader: ...

Clustering: k-means (faiss, `pip install faiss-cpu`) into ceil(N / cluster_size) centroids, then
a capacity-constrained assignment (each point to its nearest centroid that still has room,
most confident points first) so that no cluster exceeds `cluster_size` — the paper's clusters are
balanced too (it splits recursively with balanced 2-means). Every epoch visits every sample exactly
once, and its batches are a pure function of (embeddings, seed, epoch).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

_TAG = 0x46A3E  # keeps NGAME's random streams apart from the pipeline's


def _require_faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss is in the `negatives` extra
        raise ImportError("NGAMESampler clusters with faiss; install it: pip install 'augflow[negatives]' "
                          "(or pip install faiss-cpu)") from None
    return faiss


def _as_matrix(embeddings: Any) -> np.ndarray:
    if isinstance(embeddings, torch.Tensor):
        embeddings = embeddings.detach().float().cpu().numpy()
    arr = np.ascontiguousarray(np.asarray(embeddings, dtype=np.float32))
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty (N, D) matrix, one row per dataset item; got shape "
                         f"{arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("embeddings contain NaN or inf; check the encoder's output before clustering")
    return arr


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def balanced_clusters(embeddings: Any, cluster_size: int, *, seed: int = 0, metric: str = "cosine",
                      niter: int = 20, candidates: int = 16) -> list[np.ndarray]:
    """Cluster the rows into groups of at most `cluster_size` near neighbours.

    k-means with k = ceil(N / cluster_size) (faiss, seeded), then each point goes to the nearest
    of its `candidates` nearest centroids that still has room, in order of confidence; points left
    over go to the nearest centroid with room. Returns the member indices of each non-empty
    cluster, each sorted, clusters ordered by their smallest index.
    """
    if cluster_size < 1:
        raise ValueError(f"cluster_size must be at least 1, got {cluster_size}")
    if metric not in ("cosine", "l2"):
        raise ValueError(f"metric must be 'cosine' or 'l2', got {metric!r}")
    faiss = _require_faiss()
    x = _as_matrix(embeddings)
    if metric == "cosine":
        x = np.ascontiguousarray(_normalize(x))
    n, d = x.shape
    k = -(-n // cluster_size)
    if k == 1:
        return [np.arange(n)]
    if k >= n:
        return [np.array([i]) for i in range(n)]
    km = faiss.Kmeans(d, k, niter=niter, seed=int(seed) % (2 ** 31), spherical=metric == "cosine", verbose=False,
                      min_points_per_centroid=1,
                      max_points_per_centroid=max(256, cluster_size))
    km.train(x)
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    labels = np.full(n, -1, dtype=np.int64)
    room = np.full(k, cluster_size, dtype=np.int64)
    open_ids = np.arange(k)
    while (labels < 0).any():
        todo = np.flatnonzero(labels < 0)
        open_ids = open_ids[room[open_ids] > 0]
        m = min(candidates, len(open_ids))
        index = faiss.IndexFlatIP(d) if metric == "cosine" else faiss.IndexFlatL2(d)
        index.add(centroids[open_ids])
        dist, nearest = index.search(x[todo], m)
        score = dist if metric == "cosine" else -dist
        nearest = open_ids[nearest]
        for r in range(m):
            pending = labels[todo] < 0
            if not pending.any():
                break
            pts, cand, conf = todo[pending], nearest[pending, r], score[pending, r]
            # Within each centroid, most confident points first; accept up to the centroid's room.
            order = np.lexsort((pts, -conf, cand))
            pts, cand = pts[order], cand[order]
            starts = np.searchsorted(cand, cand, side="left")
            rank = np.arange(len(cand)) - starts
            take = rank < room[cand]
            labels[pts[take]] = cand[take]
            np.subtract.at(room, cand[take], 1)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = [np.sort(g) for g in np.split(order, bounds) if len(g)]
    groups.sort(key=lambda g: int(g[0]))
    return groups


def pack_batches(clusters: list[np.ndarray], batch_size: int, rng: np.random.Generator,
                 drop_last: bool = False) -> list[list[int]]:
    """Whole clusters, in a random order, packed into batches of at most `batch_size` items."""
    batches: list[list[int]] = []
    current: list[int] = []
    for ci in rng.permutation(len(clusters)):
        members = clusters[int(ci)].tolist()
        if current and len(current) + len(members) > batch_size:
            batches.append(current)
            current = []
        current.extend(members)
    if current and not (drop_last and len(current) < batch_size):
        batches.append(current)
    return batches


def mean_in_batch_similarity(embeddings: Any, batches: list[list[int]]) -> float:
    """Mean cosine similarity over all pairs of distinct items that share a batch (the in-batch negatives)."""
    x = _normalize(_as_matrix(embeddings))
    total, pairs = 0.0, 0
    for batch in batches:
        if len(batch) < 2:
            continue
        e = x[np.asarray(batch)]
        s = e.sum(axis=0)
        total += float(s @ s - (e * e).sum())     # sum over i != j of e_i . e_j
        pairs += len(batch) * (len(batch) - 1)
    return total / max(pairs, 1)


class NGAMESampler(Sampler[list[int]]):
    """A `torch.utils.data` batch sampler whose batches are whole clusters of near neighbours.

    Give `embed_fn` (called with no argument, or with the epoch if it takes one, at each refresh;
    returns an (N, D) array or tensor from the current encoder) or a precomputed `embeddings`
    matrix. `batch_size` is the most items per batch (or give `clusters_per_batch`); unset, the
    loader's batch size is filled in through `configure` (as `pipe.compile(..., batch_sampler=...)`
    does), else 4 clusters. Batches hold whole clusters, so they may fall a few items short of
    `batch_size`. Call `set_epoch(e)` before each epoch; batches are then a pure function of
    (embeddings, seed, e). One process: a distributed run needs its own split of the batches.
    """

    def __init__(self, embed_fn: Callable[..., Any] | None = None, *, embeddings: Any = None,
                 cluster_size: int = 16, batch_size: int | None = None, clusters_per_batch: int | None = None,
                 refresh_every: int = 5, warmup_epochs: int = 0, seed: int = 0, drop_last: bool = False,
                 metric: str = "cosine", niter: int = 20, num_samples: int | None = None):
        if (embed_fn is None) == (embeddings is None):
            raise ValueError("give exactly one of embed_fn (a callable returning (N, D) embeddings from the current "
                             "encoder) or embeddings (a precomputed (N, D) matrix)")
        if cluster_size < 1 or refresh_every < 1 or warmup_epochs < 0:
            raise ValueError(f"cluster_size and refresh_every must be >= 1 and warmup_epochs >= 0, got "
                             f"{cluster_size}, {refresh_every}, {warmup_epochs}")
        if batch_size is not None and clusters_per_batch is not None:
            raise ValueError("give batch_size or clusters_per_batch, not both")
        if metric not in ("cosine", "l2"):
            raise ValueError(f"metric must be 'cosine' or 'l2', got {metric!r}")
        self.embed_fn = embed_fn
        self._matrix = None if embeddings is None else _as_matrix(embeddings)
        self.cluster_size = int(cluster_size)
        if batch_size is None and clusters_per_batch is not None:
            batch_size = int(clusters_per_batch) * self.cluster_size
        self.batch_size = None if batch_size is None else int(batch_size)
        self.refresh_every, self.warmup_epochs = int(refresh_every), int(warmup_epochs)
        self.seed, self.drop_last, self.metric, self.niter = int(seed), bool(drop_last), metric, int(niter)
        self.num_samples = num_samples if num_samples is not None else \
            (None if self._matrix is None else len(self._matrix))
        self.epoch = 0
        self._clusters: tuple[int, list[np.ndarray]] | None = None
        self._batches: tuple[int, list[list[int]]] | None = None

    # ---- set-up --------------------------------------------------------------------------
    def configure(self, num_samples: int | None = None, batch_size: int | None = None) -> "NGAMESampler":
        """Fill what the loader knows and the sampler was not given (dataset length, batch size)."""
        if batch_size is not None and self.batch_size is None:
            self.batch_size = int(batch_size)
        if num_samples is not None:
            if self.num_samples is not None and self.num_samples != num_samples:
                raise ValueError(f"the sampler has {self.num_samples} embeddings but the dataset has {num_samples} "
                                 "items; give one embedding row per item")
            self.num_samples = int(num_samples)
        return self

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches `__iter__` yields (clusters refresh every `refresh_every`)."""
        self.epoch = int(epoch)

    def update_embeddings(self, embeddings: Any) -> None:
        """Replace the precomputed matrix; the next refresh epoch clusters it."""
        self._matrix = _as_matrix(embeddings)
        self.embed_fn = None

    # ---- batches -------------------------------------------------------------------------
    def _rng(self, *parts: int) -> np.random.Generator:
        return np.random.Generator(np.random.Philox(np.random.SeedSequence([_TAG, self.seed, *parts])))

    def refresh_epoch(self, epoch: int) -> int:
        """The epoch whose embeddings the clusters of `epoch` come from."""
        start = self.warmup_epochs
        return start + ((epoch - start) // self.refresh_every) * self.refresh_every

    def _embeddings(self, epoch: int) -> np.ndarray:
        if self.embed_fn is None:
            x = self._matrix
        else:
            takes_epoch = _takes_argument(self.embed_fn)
            x = _as_matrix(self.embed_fn(epoch) if takes_epoch else self.embed_fn())
        if self.num_samples is not None and len(x) != self.num_samples:
            raise ValueError(f"embed_fn returned {len(x)} rows for a dataset of {self.num_samples} items; return one "
                             "embedding per item, in dataset order")
        return x

    def clusters(self, epoch: int | None = None) -> list[np.ndarray]:
        """The clusters used in `epoch` (computed at its refresh epoch, then reused)."""
        epoch = self.epoch if epoch is None else int(epoch)
        ref = self.refresh_epoch(epoch)
        if self._clusters is None or self._clusters[0] != ref:
            x = self._embeddings(ref)
            seed = int(self._rng(1, ref).integers(0, 2 ** 31 - 1))
            self._clusters = (ref, balanced_clusters(x, self.cluster_size, seed=seed, metric=self.metric,
                                                     niter=self.niter))
            if self.num_samples is None:
                self.num_samples = len(x)
        return self._clusters[1]

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """Every batch of `epoch`, in order; together they hold each index exactly once."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._batches is not None and self._batches[0] == epoch:
            return self._batches[1]
        batch_size = self.batch_size or 4 * self.cluster_size
        rng = self._rng(2, epoch)
        if epoch < self.warmup_epochs:
            n = self.num_samples if self.num_samples is not None else len(self._embeddings(epoch))
            perm = rng.permutation(n).tolist()
            out = [perm[i:i + batch_size] for i in range(0, n, batch_size)]
            if self.drop_last and out and len(out[-1]) < batch_size:
                out.pop()
        else:
            out = pack_batches(self.clusters(epoch), batch_size, rng, self.drop_last)
        self._batches = (epoch, out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        yield from (list(b) for b in self.batches(self.epoch))

    def __len__(self) -> int:
        return len(self.batches(self.epoch))

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])
        self._batches = None


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    except (TypeError, ValueError):
        return False
    return len(params) >= 1


__all__ = ["NGAMESampler", "balanced_clusters", "pack_batches", "mean_in_batch_similarity"]
