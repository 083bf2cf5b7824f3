"""Which JPEG decoder for reduced-size decode: simplejpeg vs OpenCV IMREAD_REDUCED_* vs Pillow draft.

One thread, real JPEGs (bench/_jpegs.py) at 500x375 and 2400x1800, at scales n/8; OpenCV and
Pillow only have 1/1, 1/2, 1/4, 1/8, simplejpeg (libjpeg-turbo) every n/8. Best of `--repeat`
passes over the set, ms per image. augflow/compile/decoding.py uses the winner, and the
reduced-decode pass only the scales that beat a full decode (7/8 .. 5/8 do not).

    python bench/decode_reduced.py [--count 14] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import simplejpeg  # noqa: E402
from _jpegs import jpeg_set  # noqa: E402
from PIL import Image  # noqa: E402

CV_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def simplejpeg_decode(raw: bytes, h: int, w: int, n: int) -> np.ndarray:
    if n == 8:
        return simplejpeg.decode_jpeg(raw, colorspace="RGB")
    return simplejpeg.decode_jpeg(raw, colorspace="RGB", min_height=-(-h * n // 8), min_width=-(-w * n // 8))


def opencv_decode(raw: bytes, h: int, w: int, n: int) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(raw, np.uint8), CV_FLAGS[8 // n]), cv2.COLOR_BGR2RGB)


def pillow_decode(raw: bytes, h: int, w: int, n: int) -> np.ndarray:
    im = Image.open(io.BytesIO(raw))
    if n < 8:
        im.draft("RGB", (w * n // 8, h * n // 8))
    return np.asarray(im.convert("RGB"))


DECODERS = {"simplejpeg": simplejpeg_decode, "opencv": opencv_decode, "pillow": pillow_decode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print("| set | scale | simplejpeg ms | opencv ms | pillow ms | fastest |")
    print("|---|---|---:|---:|---:|---|")
    for kind in ("imagenet", "large"):
        raws = [Path(p).read_bytes() for p in jpeg_set(kind, args.count)]
        heads = [simplejpeg.decode_jpeg_header(r)[:2] for r in raws]
        for n in (8, 7, 6, 5, 4, 2, 1):
            ms = {}
            for name, fn in DECODERS.items():
                if name != "simplejpeg" and n not in (8, 4, 2, 1):
                    continue
                best = float("inf")
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    for raw, (h, w) in zip(raws, heads):
                        fn(raw, h, w, n)
                    best = min(best, (time.perf_counter() - start) / len(raws))
                ms[name] = best * 1e3
            fastest = min(ms, key=ms.get)
            cells = " | ".join(f"{ms[d]:.2f}" if d in ms else "-" for d in DECODERS)
            print(f"| {kind} | {n}/8 | {cells} | {fastest} |", flush=True)


if __name__ == "__main__":
    main()
