"""Negatives in written datasets (`augflow materialize`): beside their positive.

Image negatives become files next to the positive's (`<key>.negatives_0.png`, `<key>.negatives_1.png`
in the folder and WebDataset layouts; columns `negatives_0`, ... in table layouts); the `fields`
JSON of the manifest row gets one record per negative — its op, kind, source field, info, and
either its text or the file column that holds it. Table layouts (parquet, hf) need the same number
of image negatives in every output (a fixed `k`); text negatives live in the JSON either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def encode_negatives(column: str, items: list[dict[str, Any]], image_format: str = "png"
                     ) -> tuple[list[tuple[str, str, bytes]], dict[str, Any]]:
    """(files [(column, extension, bytes)], {column: records}) for one sample's negatives field."""
    from augflow.io.writers import _jsonable, encode_array, to_hwc

    files: list[tuple[str, str, bytes]] = []
    records = []
    for i, item in enumerate(items):
        rec = {"op": item.get("op"), "kind": item.get("kind"), "source": item.get("source"),
               "info": _jsonable(item.get("info", {}))}
        value = to_hwc(item.get("value"), item.get("kind"))
        if isinstance(value, np.ndarray) and item.get("kind") == "image" and value.ndim >= 2:
            name = f"{column}_{i}"
            ext, data = encode_array(value, "image", image_format)
            files.append((name, ext, data))
            rec["file"] = f"{name}.{ext}"
        else:
            rec["value"] = _jsonable(value)
        records.append(rec)
    return files, {column: records}


__all__ = ["encode_negatives"]
