"""Conversions at the end of a per-sample stage: numpy HWC images to torch CHW tensors."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from augflow.ops.base import Op, Schema
from augflow.registry import register
from augflow.sample import Sample


@register("to_tensor", targets={"image", "mask", "masks"}, family="tensor")
class ToTensor(Op):
    """HWC numpy images -> CHW torch tensors (masks -> HW tensors), as models expect.

    `dtype: float32` also scales uint8 by 1/255 and uint16 by 1/65535; `keep` leaves the dtype.
    """

    class Params(Schema):
        dtype: Literal["keep", "float32"] = "keep"

    def apply(self, sample: Sample) -> Sample:
        out = sample.copy()
        for name in sample.fields_of_kind("image"):
            img = sample[name]
            if not isinstance(img, np.ndarray):
                continue
            arr = img[..., None] if img.ndim == 2 else img
            tensor = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
            if self.params.dtype == "float32":
                scale = {np.uint8: 255.0, np.uint16: 65535.0}.get(img.dtype.type, 1.0)
                tensor = tensor.float() / scale
            out[name] = tensor
        for name in sample.fields_of_kind("mask", "masks"):
            value = sample[name]
            if isinstance(value, np.ndarray):
                out[name] = torch.from_numpy(np.ascontiguousarray(value))
            elif isinstance(value, (list, tuple)):
                out[name] = torch.from_numpy(np.ascontiguousarray(np.stack(value)))
        return out
