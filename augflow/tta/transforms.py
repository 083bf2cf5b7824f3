"""Test-time transforms: a deterministic list of variants each, with forward and inverse maps.

A TTA transform is not a random op: it enumerates its variants (`horizontal_flip` gives the
original and the flipped image), and TTA runs every combination. Each variant maps a batch
`(B, C, H, W)` forward, and — for geometric transforms — maps predictions back: dense maps
`(B, C, H', W') -> (B, C, H, W)` with a mask of the pixels the augmented view actually saw, and
points `(..., 2)` (x, y in pixels, continuous: pixel i covers [i, i + 1)) from the augmented frame
to the original one. Colour transforms need no inverse. Transforms that move pixels without an
exact inverse (`rotate`) are for classification only.

Kernels are plain functions of tensors; a transform class only holds validated parameters.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator

Size = tuple[int, int]   # (H, W)
Border = Literal["constant", "reflect", "replicate"]


class TTAParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- kernels ----------------------------------------------------------------------------------
def translate(x: torch.Tensor, dx: int, dy: int, border: Border = "constant", fill: float = 0.0) -> torch.Tensor:
    """Move content by (dx, dy) pixels (right, down), same size; uncovered pixels follow `border`."""
    if dx == 0 and dy == 0:
        return x
    h, w = x.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        raise ValueError(f"shift ({dx}, {dy}) is not smaller than the image ({w}x{h})")
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))   # left, right, top, bottom
    if border == "constant":
        padded = F.pad(x, pad, mode="constant", value=fill)
    else:
        shape = x.shape
        flat = x.reshape(-1, 1, h, w) if x.dim() != 4 else x
        padded = F.pad(flat.float() if not flat.is_floating_point() else flat, pad, mode=border).to(x.dtype)
        padded = padded.reshape(*shape[:-2], *padded.shape[-2:])
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top:top + h, left:left + w]


def translate_back(y: torch.Tensor, dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inverse of `translate` for a prediction map, with the mask of pixels the view saw."""
    if dx == 0 and dy == 0:
        return y, None
    back = translate(y, -dx, -dy, "constant", 0.0)
    valid = translate(torch.ones((1, 1, *y.shape[-2:]), dtype=torch.bool, device=y.device), -dx, -dy, "constant", 0.0)
    return back, valid


def resize(x: torch.Tensor, size: Size, mode: str = "bilinear") -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    kw = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    out = F.interpolate(x.float() if not x.is_floating_point() else x, size=size, mode=mode, **kw)
    return out.to(x.dtype) if x.is_floating_point() else out.round().to(x.dtype)


def rotate_image(x: torch.Tensor, angle: float, border: Border = "constant") -> torch.Tensor:
    """Rotate about the centre by `angle` degrees counter-clockwise (bilinear), same size."""
    if angle == 0:
        return x
    a = math.radians(angle)
    h, w = x.shape[-2:]
    # affine_grid works in normalized coordinates; the aspect factors keep the rotation rigid.
    theta = torch.tensor([[math.cos(a), -math.sin(a) * h / w, 0.0],
                          [math.sin(a) * w / h, math.cos(a), 0.0]], dtype=torch.float32, device=x.device)
    xf = x.float()
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(xf.shape), align_corners=False)
    pad = {"constant": "zeros", "reflect": "reflection", "replicate": "border"}[border]
    return F.grid_sample(xf, grid, mode="bilinear", padding_mode=pad, align_corners=False).to(x.dtype)


# ---- transforms -------------------------------------------------------------------------------
class TTATransform:
    """One test-time transform: its variants and, when geometric, their inverse maps."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    geometric: ClassVar[bool] = True       # moves pixels, so dense/point outputs need an inverse
    invertible: ClassVar[bool] = True      # an exact inverse exists (dense tasks allowed)
    Params: ClassVar[type[TTAParams]] = TTAParams

    def __init__(self, params: TTAParams | None = None, **kwargs: Any):
        self.params = params if params is not None else self.Params(**kwargs)

    def variants(self) -> list[Any]:
        """The parameter of each variant, the identity (if any) first."""
        raise NotImplementedError

    def is_identity(self, v: Any) -> bool:
        raise NotImplementedError

    def out_size(self, v: Any, size: Size) -> Size:
        return size

    def image(self, x: torch.Tensor, v: Any) -> torch.Tensor:
        raise NotImplementedError

    def dense_back(self, y: torch.Tensor, v: Any, size: Size) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prediction map in the augmented frame -> original frame (`size`), and the valid mask."""
        return y, None

    def points_forward(self, p: torch.Tensor, v: Any, size: Size) -> torch.Tensor:
        return p

    def points_back(self, p: torch.Tensor, v: Any, size: Size) -> torch.Tensor:
        return p

    def reflects(self, v: Any) -> bool:
        """Whether the variant mirrors the image (left/right keypoints swap)."""
        return False

    def describe(self, v: Any) -> str:
        return f"{self.name}={v}"


def _flip_points(p: torch.Tensor, axis: int, extent: int) -> torch.Tensor:
    out = p.clone()
    out[..., axis] = extent - p[..., axis]
    return out


class HorizontalFlip(TTATransform):
    """The original and the left-right mirrored image."""

    name = "horizontal_flip"
    aliases = ("hflip",)

    def variants(self):
        return [False, True]

    def is_identity(self, v):
        return not v

    def image(self, x, v):
        return x.flip(-1) if v else x

    def dense_back(self, y, v, size):
        return (y.flip(-1) if v else y), None

    def points_forward(self, p, v, size):
        return _flip_points(p, 0, size[1]) if v else p

    points_back = points_forward

    def reflects(self, v):
        return bool(v)


class VerticalFlip(HorizontalFlip):
    """The original and the upside-down mirrored image."""

    name = "vertical_flip"
    aliases = ("vflip",)

    def image(self, x, v):
        return x.flip(-2) if v else x

    def dense_back(self, y, v, size):
        return (y.flip(-2) if v else y), None

    def points_forward(self, p, v, size):
        return _flip_points(p, 1, size[0]) if v else p

    points_back = points_forward


class Rot90(TTATransform):
    """Rotations by k * 90 degrees counter-clockwise (H and W swap for odd k)."""

    name = "rot90"

    class Params(TTAParams):
        k: list[Literal[0, 1, 2, 3]] = Field([0, 1, 2, 3], min_length=1,
                                             description="Quarter turns to include (0 is the original).")

    def variants(self):
        return sorted(set(self.params.k))

    def is_identity(self, v):
        return v == 0

    def out_size(self, v, size):
        return (size[1], size[0]) if v % 2 else size

    def image(self, x, v):
        return torch.rot90(x, v, dims=(-2, -1)) if v else x

    def dense_back(self, y, v, size):
        return (torch.rot90(y, -v, dims=(-2, -1)) if v else y), None

    def points_forward(self, p, v, size):
        h, w = size
        for _ in range(v):        # a quarter turn maps (x, y) -> (y, W - x); the frame becomes W x H
            p = torch.cat([torch.stack([p[..., 1], w - p[..., 0]], dim=-1), p[..., 2:]], dim=-1)
            h, w = w, h
        return p

    def points_back(self, p, v, size):
        h, w = self.out_size(v, size)
        for _ in range(v):        # the inverse quarter turn maps (x', y') -> (H' - y', x')
            p = torch.cat([torch.stack([h - p[..., 1], p[..., 0]], dim=-1), p[..., 2:]], dim=-1)
            h, w = w, h
        return p


class Scale(TTATransform):
    """Resize by each factor (the model sees a larger or smaller image); maps resize back."""

    name = "scale"

    class Params(TTAParams):
        factors: list[float] = Field([1.0], min_length=1, description="Scale factors; 1.0 is the original.")
        interpolation: Literal["bilinear", "bicubic", "nearest", "area"] = "bilinear"

        @field_validator("factors")
        @classmethod
        def _positive(cls, v):
            if any(f <= 0 for f in v):
                raise ValueError("scale factors must be positive")
            return v

    def variants(self):
        return list(dict.fromkeys(self.params.factors))

    def is_identity(self, v):
        return v == 1.0

    def out_size(self, v, size):
        return max(1, round(size[0] * v)), max(1, round(size[1] * v))

    def image(self, x, v):
        return resize(x, self.out_size(v, tuple(x.shape[-2:])), self.params.interpolation)

    def dense_back(self, y, v, size):
        return resize(y if y.is_floating_point() else y.float(), size, "bilinear"), None

    def _ratios(self, v, size):
        h2, w2 = self.out_size(v, size)
        return w2 / size[1], h2 / size[0]

    def points_forward(self, p, v, size):
        rx, ry = self._ratios(v, size)
        out = p.clone()
        out[..., 0] *= rx
        out[..., 1] *= ry
        return out

    def points_back(self, p, v, size):
        rx, ry = self._ratios(v, size)
        out = p.clone()
        out[..., 0] /= rx
        out[..., 1] /= ry
        return out


class Shift(TTATransform):
    """Translate by each (dx, dy) pixel offset; pixels a shifted view never saw are left out of merges."""

    name = "shift"

    class Params(TTAParams):
        offsets: list[tuple[int, int]] = Field([(0, 0)], min_length=1, description="[dx, dy] pixel offsets.")
        border: Border = "constant"
        fill: float = 0.0

    def variants(self):
        return [tuple(o) for o in dict.fromkeys(tuple(o) for o in self.params.offsets)]

    def _offset(self, v):
        return v

    def is_identity(self, v):
        return tuple(self._offset(v)) == (0, 0)

    def image(self, x, v):
        dx, dy = self._offset(v)
        return translate(x, dx, dy, self.params.border, self.params.fill)

    def dense_back(self, y, v, size):
        dx, dy = self._offset(v)
        return translate_back(y, dx, dy)

    def points_forward(self, p, v, size):
        dx, dy = self._offset(v)
        out = p.clone()
        out[..., 0] += dx
        out[..., 1] += dy
        return out

    def points_back(self, p, v, size):
        dx, dy = self._offset(v)
        out = p.clone()
        out[..., 0] -= dx
        out[..., 1] -= dy
        return out


class PadCrop(Shift):
    """Pad by `pad` pixels and crop the original size at each offset (the CIFAR-style crop).

    A crop at offset (ox, oy) of the padded image equals a shift by (pad - ox, pad - oy); the
    default offsets are the centre and the four corners.
    """

    name = "pad_crop"

    class Params(TTAParams):
        pad: int = Field(4, ge=1, description="Padding on each side, in pixels.")
        offsets: list[tuple[int, int]] | None = Field(
            None, description="[x, y] crop origins in the padded image, each in [0, 2 * pad]; "
                              "default: centre and four corners.")
        border: Border = "constant"
        fill: float = 0.0

        @field_validator("offsets")
        @classmethod
        def _inside(cls, v, info):
            pad = info.data.get("pad", 4)
            if v is not None:
                bad = [o for o in v if not (0 <= o[0] <= 2 * pad and 0 <= o[1] <= 2 * pad)]
                if bad:
                    raise ValueError(f"crop origins must lie in [0, {2 * pad}] (2 * pad), got {bad}")
            return v

    def variants(self):
        p = self.params.pad
        offsets = self.params.offsets or [(p, p), (0, 0), (2 * p, 0), (0, 2 * p), (2 * p, 2 * p)]
        return [tuple(o) for o in dict.fromkeys(tuple(o) for o in offsets)]

    def _offset(self, v):
        return self.params.pad - v[0], self.params.pad - v[1]


class Rotate(TTATransform):
    """Small rotations by each angle (degrees, counter-clockwise); classification only.

    Bilinear resampling and the lost corners make the inverse inexact, so dense and point tasks
    reject it.
    """

    name = "rotate"
    invertible = False

    class Params(TTAParams):
        angles: list[float] = Field([0.0], min_length=1, description="Angles in degrees; 0 is the original.")
        border: Border = "constant"

    def variants(self):
        return list(dict.fromkeys(self.params.angles))

    def is_identity(self, v):
        return v == 0

    def image(self, x, v):
        return rotate_image(x, v, self.params.border)


class Multiply(TTATransform):
    """Scale pixel values by each factor (brightness/contrast of un-normalized inputs); no inverse needed."""

    name = "multiply"
    geometric = False

    class Params(TTAParams):
        factors: list[float] = Field([1.0], min_length=1)

    def variants(self):
        return list(dict.fromkeys(self.params.factors))

    def is_identity(self, v):
        return v == 1.0

    def image(self, x, v):
        return x * v if v != 1.0 else x


class Add(TTATransform):
    """Add each value to every pixel; no inverse needed."""

    name = "add"
    geometric = False

    class Params(TTAParams):
        values: list[float] = Field([0.0], min_length=1)

    def variants(self):
        return list(dict.fromkeys(self.params.values))

    def is_identity(self, v):
        return v == 0.0

    def image(self, x, v):
        return x + v if v != 0.0 else x


TRANSFORMS: dict[str, type[TTATransform]] = {}
for _cls in (HorizontalFlip, VerticalFlip, Rot90, Scale, Shift, PadCrop, Rotate, Multiply, Add):
    TRANSFORMS[_cls.name] = _cls
    for _alias in _cls.aliases:
        TRANSFORMS[_alias] = _cls


def invertible_names() -> list[str]:
    return [n for n, c in TRANSFORMS.items() if c.invertible and c.geometric and c.name == n]


__all__ = ["TTATransform", "TRANSFORMS", "invertible_names", "translate", "translate_back", "resize",
           "rotate_image", "HorizontalFlip", "VerticalFlip", "Rot90", "Scale", "Shift", "PadCrop", "Rotate",
           "Multiply", "Add"]
