"""Batch ops: Kornia-backed kernels with per-element parameters (kernels.py), and ops that mix
images of a batch — MixUp and CutMix (mixing.py), ResizeMix (resizemix.py), Mosaic (mosaic.py),
Copy-Paste (copy_paste.py) — plus the TransMix relabelling hook (transmix.py).

Mixing ops are registered like every op (family "batch") and are valid only under `batch: ops:`;
the per-sample ops' names (`horizontal_flip`, `color_jitter`, `normalize`, ...) work there too,
through the kernels.
"""
