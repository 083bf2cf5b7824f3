"""Ray Data: a pipeline inside `ray.data.Dataset.map_batches`, for training input that outgrows one machine.

    ds = ray.data.read_images("s3://bucket/train/")                   # or from_items, read_parquet, ...
    ds = augflow.integrations.ray.map_batches(ds, pipe, epoch=epoch)  # lazy: nothing runs yet
    for batch in ds.iter_torch_batches(batch_size=64):                # streams to the trainer
        ...

- Seeding: each row is augmented as `pipe(row, index=row["_index"], epoch=epoch)`, so outputs do
  not depend on how Ray splits the data into blocks and batches, nor on how many workers or
  nodes run them. The index comes from `index_column` (default `_index`); when the dataset has
  no such column one is added: the row's position, via `ds.zip(ray.data.range(ds.count()))` run
  with Ray's `preserve_order` (positions are only stable if the source order is: give your own
  stable id column, e.g. from a manifest, for data read from changing storage).
- Epochs: Ray datasets are lazy, so build the mapped dataset per epoch (`epoch=e`): cheap.
- Output columns: the pipeline's output fields as numpy arrays (torch tensors from `to_tensor` are
  converted back; `iter_torch_batches` turns them into tensors again); views are flattened to
  `view.field` columns; the index column is kept, as the record of each row's seed.
- Multi-node: the same code runs on a cluster: `ray.init(address="auto")` (or `RAY_ADDRESS`) in
  the driver, augflow installed on every node; each task rebuilds the pipeline from its
  description, and every node must be able to read the data the rows point at.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from augflow.integrations import as_pipeline, pipeline_from_state, pipeline_state

INDEX_COLUMN = "_index"


class RayBatchMap:
    """Callable for `Dataset.map_batches(fn, batch_format="numpy")`: a numpy batch (column -> array)
    in, the augmented batch out, each row seeded by its index column (picklable)."""

    def __init__(self, pipe: Any, *, index_column: str = INDEX_COLUMN, epoch: int = 0):
        self.pipe = as_pipeline(pipe, "to_ray_map")
        self.index_column = index_column
        self.epoch = int(epoch)

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.index_column not in batch:
            raise KeyError(f"the batch has no {self.index_column!r} column (columns: {', '.join(batch)}); each row's "
                           f"seed comes from its index: use augflow.integrations.ray.map_batches(ds, pipe), which adds "
                           f"one, or add it yourself (with_row_index(ds))")
        indices = np.asarray(batch[self.index_column])
        rows = []
        for r, index in enumerate(indices.tolist()):
            sample = {c: v[r] for c, v in batch.items() if c != self.index_column}
            out = flat_fields(self.pipe(sample, index=int(index), epoch=self.epoch))
            out[self.index_column] = int(index)
            rows.append(out)
        return stack_rows(rows)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "pipe": pipeline_state(self.pipe)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({**state, "pipe": pipeline_from_state(state["pipe"])})

    def __repr__(self) -> str:
        return f"RayBatchMap({self.pipe!r}, index_column={self.index_column!r}, epoch={self.epoch})"


def map_batches(ds: Any, pipe: Any, *, epoch: int = 0, index_column: str = INDEX_COLUMN, batch_size: int | None = 32,
                **map_options: Any) -> Any:
    """`ds` augmented by `pipe` (lazily, as a Ray Data map_batches step); adds `index_column` when
    absent. `map_options` go to `Dataset.map_batches` (`compute=ray.data.TaskPoolStrategy(size=n)`, `num_cpus`, ...)."""
    if index_column not in (ds.columns() or []):
        ds = with_row_index(ds, index_column)
    fn = RayBatchMap(pipe, index_column=index_column, epoch=epoch)
    return ds.map_batches(fn, batch_format="numpy", batch_size=batch_size, **map_options)


def with_row_index(ds: Any, name: str = INDEX_COLUMN) -> Any:
    """`ds` with an int64 column `name` holding each row's position (0 .. n-1). The dataset runs
    with `preserve_order` so that positions follow the source's order, not task completion."""
    import warnings

    import ray.data
    from ray.data import Dataset

    if not hasattr(Dataset, "zip"):
        raise RuntimeError(f"this Ray ({ray.__version__}) has no Dataset.zip to number the rows: add an integer "
                           f"column {name!r} to the dataset (a stable id per row, e.g. from the manifest)")
    ds = Dataset.copy(ds, _deep_copy=True)      # its own DataContext: the caller's stays as it was
    ds.context.execution_options.preserve_order = True
    ids = ray.data.range(ds.count()).rename_columns({"id": name})
    with warnings.catch_warnings():
        # zip is deprecated because it needs a deterministic order: preserve_order above gives one
        warnings.filterwarnings("ignore", message="(?s).*Dataset.zip", category=DeprecationWarning)
        return ds.zip(ids)


def flat_fields(sample: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Output fields as plain values: tensors to numpy, views (nested mappings) to `view.field`."""
    out: dict[str, Any] = {}
    for name, value in sample.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            out.update(flat_fields(value, f"{key}."))
        elif hasattr(value, "detach") and hasattr(value, "numpy"):      # torch.Tensor, without importing torch
            out[key] = value.detach().cpu().numpy()
        else:
            out[key] = value
    return out


def stack_rows(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Rows to columns: one array where shapes agree, an object array of per-row values where not."""
    columns: dict[str, np.ndarray] = {}
    for name in rows[0]:
        values = [row.get(name) for row in rows]
        arrays = [np.asarray(v) for v in values]
        if all(a.dtype != object and a.shape == arrays[0].shape and a.dtype == arrays[0].dtype for a in arrays):
            columns[name] = np.stack(arrays)
        else:
            col = np.empty(len(values), dtype=object)
            col[:] = [np.asarray(v) if isinstance(v, (list, tuple)) else v for v in values]
            columns[name] = col
    return columns


__all__ = ["map_batches", "with_row_index", "RayBatchMap", "INDEX_COLUMN"]
