"""Reading samples: image decoding (readers and writers for datasets live beside it)."""

from augflow.io.decode import ImageDecodeError, MissingImageError, load_image

__all__ = ["load_image", "ImageDecodeError", "MissingImageError"]
