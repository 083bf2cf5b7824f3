"""Pillow kernels of the automatic-augmentation ops (RandAugment, TrivialAugmentWide, AugMix).

Each kernel is a plain function `(PIL image, magnitude, interpolation, fill) -> PIL image` that
makes the same Pillow call, with the same arguments, as torchvision's v2 PIL backend
(`torchvision.transforms.v2.functional` on a `PIL.Image`), so that for one op and one magnitude our
output equals torchvision's bit for bit. `magnitude` is already signed; ops that have no magnitude
ignore it.

Inputs are uint8 arrays with 1 (mode "L") or 3 ("RGB") channels, the PIL modes torchvision
documents for its auto-augment transforms; the ops in `augflow.ops.auto` check this first.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

Fill = Union[None, int, Sequence[int]]
Kernel = Callable[[Image.Image, float, int, Fill], Image.Image]

# torchvision's `pil_modes_mapping` for the modes Pillow's affine/rotate accept.
INTERPOLATION = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


# ---- arrays <-> PIL -------------------------------------------------------------------------------
def to_pil(img: np.ndarray) -> Image.Image:
    """uint8 HxW/HxWx1 -> mode "L", HxWx3 -> mode "RGB"."""
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(img))  # uint8 2-D -> "L", HxWx3 -> "RGB"


def from_pil(pil: Image.Image, like: np.ndarray) -> np.ndarray:
    """The PIL result back in the layout of the input array (HxWx1 stays HxWx1)."""
    return np.array(pil, dtype=np.uint8).reshape(like.shape)   # a writable copy


def fill_for(pil: Image.Image, fill: Fill) -> int | tuple[int, ...]:
    """torchvision's `_parse_fill`: None -> 0, a number -> one per band, ints for uint8 modes."""
    bands = len(pil.getbands())
    if fill is None:
        fill = 0
    if isinstance(fill, (int, float)):
        return int(fill) if bands == 1 else tuple([int(fill)] * bands)
    fill = list(fill)
    if len(fill) == 1:
        fill = fill * bands
    if len(fill) != bands:
        raise ValueError(f"fill has {len(fill)} values but the image has {bands} channel(s); "
                         "give one number or one per channel")
    return int(fill[0]) if bands == 1 else tuple(int(v) for v in fill)


# ---- geometry --------------------------------------------------------------------------------------
def inverse_affine_matrix(center: Sequence[float], angle: float, translate: Sequence[float], scale: float,
                          shear: Sequence[float]) -> list[float]:
    """The output->input matrix Pillow's AFFINE transform wants, for M = T * C * R * S * Sh * C^-1.

    The arithmetic follows torchvision's `_get_inverse_affine_matrix` operation for operation,
    because a last-bit difference can move a nearest-neighbour sample by one pixel.
    """
    rot = math.radians(angle)
    sx = math.radians(shear[0])
    sy = math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    cos_sy = math.cos(sy)
    tan_sx = math.tan(sx)
    rot_minus_sy = rot - sy
    cx_plus_tx = cx + tx
    cy_plus_ty = cy + ty
    a = math.cos(rot_minus_sy) / cos_sy
    b = -(a * tan_sx + math.sin(rot))
    c = math.sin(rot_minus_sy) / cos_sy
    d = math.cos(rot) - c * tan_sx
    matrix = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    matrix[2] += cx - matrix[0] * cx_plus_tx - matrix[1] * cy_plus_ty
    matrix[5] += cy - matrix[3] * cx_plus_tx - matrix[4] * cy_plus_ty
    return matrix


def affine(pil: Image.Image, *, translate: Sequence[float] = (0, 0), shear: Sequence[float] = (0.0, 0.0),
           center: Sequence[float] | None = None, interpolation: int = Image.NEAREST, fill: Fill = None) -> Image.Image:
    """Shear/translate about `center` (default: the image centre, w/2, h/2, as torchvision)."""
    if center is None:
        center = [pil.width * 0.5, pil.height * 0.5]
    else:
        center = [float(v) for v in center]
    matrix = inverse_affine_matrix(center, 0.0, translate, 1.0, shear)
    return pil.transform(pil.size, Image.AFFINE, matrix, interpolation, fillcolor=fill_for(pil, fill))


def shear_x(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    # magnitude is the shear factor; torchvision turns it into an angle and shears about (0, 0)
    return affine(pil, shear=[math.degrees(math.atan(magnitude)), 0.0], center=[0, 0],
                  interpolation=interpolation, fill=fill)


def shear_y(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    return affine(pil, shear=[0.0, math.degrees(math.atan(magnitude))], center=[0, 0],
                  interpolation=interpolation, fill=fill)


def translate_x(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    # whole pixels: torchvision truncates the magnitude with int()
    return affine(pil, translate=[int(magnitude), 0], interpolation=interpolation, fill=fill)


def translate_y(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    return affine(pil, translate=[0, int(magnitude)], interpolation=interpolation, fill=fill)


def rotate(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    """Counter-clockwise by `magnitude` degrees about the centre, same canvas."""
    return pil.rotate(magnitude, interpolation, False, None, fillcolor=fill_for(pil, fill))


# ---- colour ----------------------------------------------------------------------------------------
def identity(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    return pil


def brightness(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    return ImageEnhance.Brightness(pil).enhance(1.0 + magnitude)


def color(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    """Saturation: blend with the grayscale image (a no-op on grayscale input)."""
    return ImageEnhance.Color(pil).enhance(1.0 + magnitude)


def contrast(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    return ImageEnhance.Contrast(pil).enhance(1.0 + magnitude)


def sharpness(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    return ImageEnhance.Sharpness(pil).enhance(1.0 + magnitude)


def posterize(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    """Keep the top int(magnitude) bits of each channel.

    0 bits (reachable only in AugMix at severity >= 9) gives a black image, as torchvision's
    tensor kernel does; Pillow's posterize refuses 0.
    """
    bits = int(magnitude)
    if bits <= 0:
        return Image.new(pil.mode, pil.size, 0)
    return ImageOps.posterize(pil, bits)


def solarize(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    """Invert values >= 255 * magnitude (magnitude 1.0 leaves the image unchanged)."""
    return ImageOps.solarize(pil, 255.0 * magnitude)


def autocontrast(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    return ImageOps.autocontrast(pil)


def equalize(pil: Image.Image, magnitude: float, interpolation: int, fill: Fill) -> Image.Image:
    return ImageOps.equalize(pil)


# torchvision's transform ids -> kernels
KERNELS: dict[str, Kernel] = {
    "Identity": identity, "ShearX": shear_x, "ShearY": shear_y, "TranslateX": translate_x,
    "TranslateY": translate_y, "Rotate": rotate, "Brightness": brightness, "Color": color,
    "Contrast": contrast, "Sharpness": sharpness, "Posterize": posterize, "Solarize": solarize,
    "AutoContrast": autocontrast, "Equalize": equalize,
}


def apply_op(pil: Image.Image, op: str, magnitude: float, interpolation: str = "nearest",
             fill: Fill = None) -> Image.Image:
    """One op by its torchvision name, with an already-signed magnitude."""
    return KERNELS[op](pil, magnitude, INTERPOLATION[interpolation], fill)


def augmix_mix(original: np.ndarray, augmented: Sequence[np.ndarray], beta: Sequence[float],
               dirichlet: Sequence[float]) -> np.ndarray:
    """AugMix's convex mix, in float32 as torchvision computes it, truncated to uint8 like its `.to(uint8)`.

    out = beta[0] * original + sum_i (dirichlet[i] * beta[1]) * augmented[i]
    """
    m0, m1 = np.float32(beta[0]), np.float32(beta[1])
    weights = np.asarray(dirichlet, dtype=np.float32) * m1
    mix = m0 * original.astype(np.float32)
    for weight, aug in zip(weights, augmented):
        mix += weight * aug.astype(np.float32)
    return np.clip(mix, 0, 255).astype(np.uint8)


def apply_chain(img: np.ndarray, ops: Sequence[tuple[str, float]], interpolation: str = "nearest",
                fill: Fill = None) -> np.ndarray:
    """Apply (op, signed magnitude) pairs in order to a uint8 array; converts to PIL once."""
    pil = to_pil(img)
    for op, magnitude in ops:
        pil = apply_op(pil, op, magnitude, interpolation, fill)
    return from_pil(pil, img)
