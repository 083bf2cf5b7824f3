"""The sample stage compiled into an NVIDIA DALI pipeline, behind the same loader interface.

DALI runs the pixels (decode fused with the first crop via `decoders.image_slice`, `resize`,
`flip`, `brightness_contrast`, `saturation`, `hue`, `crop_mirror_normalize`); augflow draws the
parameters. A per-sample `external_source` callback reads the encoded bytes and the JPEG header,
draws every op's parameters with the op's own `sample_params` on the generator of (pipeline
seed, epoch, global index) — the same stream as the other backends — and feeds them to the DALI
operators as per-sample arguments. So one pipeline file gives the same crops and flips on all
backends, and outputs agree within the tolerances in tests/compile/test_backends_agree.py.

CPU: `device_id=None`, CPU operators only (this machine). GPU: when `torch.cuda.is_available()`
and the loader's device is CUDA, the decoder is `mixed` (nvJPEG) and the ops run on the GPU;
written the same way, tested when a GPU is lent. ColorJitter applies brightness, contrast,
saturation, hue in that fixed order (albumentations draws an order per sample; the first three
commute up to clipping, hue does not exactly).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Iterator

import numpy as np

from augflow import seeding
from augflow.compile.backends import BackendError
from augflow.compile.batch_stage import BatchStage
from augflow.compile.fused import proxy
from augflow.compile.plan import OpItem, Plan
from augflow.compile.sample_stage import EPOCH_KEY, INDEX_KEY
from augflow.ops.batch.geometry import op_settings
from augflow.params_codec import from_jsonable, to_jsonable
from augflow.steps import OpStep

_CROPS = ("albumentations.RandomResizedCrop",)


def _size(cfg: dict) -> tuple[int, int]:
    size = cfg.get("size")
    if size is not None:
        return int(size[0]), int(size[1])
    return int(cfg["height"]), int(cfg["width"])


# Per-op arguments: (params or None when skipped, settings, current (h, w)) -> (arrays, new (h, w)).
def _args_rrc(p, cfg, hw):
    if p is None:
        raise BackendError("random_resized_crop with p < 1 changes the output size per sample; DALI needs p=1")
    x1, y1, x2, y2 = p["crop_coords"]
    return [np.array([x1, y1], np.float32), np.array([x2 - x1, y2 - y1], np.float32)], _size(cfg)


def _args_resize(p, cfg, hw):
    if p is None:
        raise BackendError("resize with p < 1 changes the output size per sample; DALI needs p=1")
    return [], _size(cfg)


def _args_flip(p, cfg, hw):
    return [np.array(0 if p is None else 1, np.int32)], hw


def _args_jitter(p, cfg, hw):
    if p is None:
        return [np.array(v, np.float32) for v in (1.0, 1.0, 1.0, 0.0)], hw
    return [np.array(p[k], np.float32) for k in ("brightness", "contrast", "saturation")] + \
        [np.array(p["hue"] * 360.0, np.float32)], hw


def _args_none(p, cfg, hw):
    return [], hw


# canonical op name -> how it becomes DALI arguments (operators: _graph); the ops declared `dali`
# in augflow/op_backends.py, no more, no fewer (tests/test_op_backends.py)
_ARGS: dict[str, Callable] = {
    "albumentations.RandomResizedCrop": _args_rrc, "albumentations.Resize": _args_resize,
    "albumentations.HorizontalFlip": _args_flip, "albumentations.VerticalFlip": _args_flip,
    "albumentations.ColorJitter": _args_jitter, "albumentations.Normalize": _args_none, "to_tensor": _args_none,
}


def _steps(plan: Plan) -> list[OpStep]:
    steps = []
    for item in plan.sample.items:
        if not isinstance(item, OpItem) or not isinstance(item.step, OpStep):
            raise BackendError("the dali backend runs a plain list of ops; one_of/some_of/sequential are available "
                               "on backends: albumentations")
        steps.append(item.step)
    for i, step in enumerate(steps):
        if step.op.name == "albumentations.Normalize" and i != len(steps) - 1 and \
                not (i == len(steps) - 2 and steps[-1].op.name == "to_tensor"):
            raise BackendError(f"op {step.name!r} at {step.path}: on DALI, normalize must be the last op "
                               "(before to_tensor)")
    return steps


class DaliLoader:
    """A DALI pipeline wrapped as an augflow loader: `set_epoch`, iteration, `explain()`."""

    def __init__(self, plan: Plan, records: Any):
        import torch

        from augflow.compile.backends.torch_loader import EpochSampler, distributed_info

        self.plan, self.records = plan, records
        self.steps = _steps(plan)
        opts = plan.options
        if getattr(opts, "on_error", "raise") != "raise":
            raise BackendError(f"on_error={opts.on_error!r} is not supported by the dali backend (a bad file stops "
                               "the DALI pipeline); use the default backend to skip bad samples")
        self.rank, self.world_size = distributed_info(opts.rank, opts.world_size)
        self.sampler = EpochSampler(len(records), plan.seed, opts.shuffle, self.rank, self.world_size, opts.drop_last)
        self.gpu = torch.cuda.is_available() and str(plan.batch.device).startswith("cuda")
        self.batch_stage = BatchStage(plan, getattr(records, "num_classes", None))
        self.has_label = "label" in records[0] if len(records) else False
        self.epoch = 0
        self._epochs: list[int] = []
        self._orders: dict[int, list[int]] = {}
        self._iterator = None
        self._unfinished = False

    # ---- parameters, drawn in Python on augflow's streams -------------------------------------
    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            self.sampler.set_epoch(epoch)
            self._orders = {epoch: [i for i, _ in self.sampler]}
        return self._orders[epoch]

    def _source(self, info) -> tuple:
        from augflow.compile.decoding import jpeg_header, read_bytes

        epoch = self._epochs[info.epoch_idx]
        order = self._order(epoch)
        bs = self.plan.options.batch_size
        # whole batches: the last one is padded with repeats that the iterator trims (size=)
        padded = (len(order) // bs) * bs if self.plan.options.drop_last else math.ceil(len(order) / bs) * bs
        if info.idx_in_epoch >= padded:
            raise StopIteration
        index = order[min(info.idx_in_epoch, len(order) - 1)]
        record = self.records[index]
        raw = read_bytes(record["image"])
        hw = jpeg_header(raw) or _header_pillow(raw)
        seed_epoch = epoch if self.plan.options.epoch_seed else 0
        rng = seeding.call_generator(self.plan.seed, seed_epoch, index)
        args: list[np.ndarray] = []
        for step in self.steps:
            op = step.op
            params = None
            if not (op.p < 1.0 and not (op.p > 0.0 and rng.random() < op.p)):
                params = from_jsonable(to_jsonable(op.sample_params(rng, proxy(hw))))
            more, hw = _ARGS[op.name](params, op_settings(op) if op.name.startswith("albumentations.") else {}, hw)
            args.extend(more)
        out = [np.frombuffer(raw, dtype=np.uint8), np.array(index, np.int64), np.array(seed_epoch, np.int64)]
        if self.has_label:
            out.append(np.array(int(record["label"]), np.int64))
        return tuple(out + args)

    # ---- the DALI graph ------------------------------------------------------------------------
    def _n_outputs(self) -> int:
        n = 3 + int(self.has_label)
        hw = (1, 1)
        for step in self.steps:
            dummy = {"crop_coords": (0, 0, 1, 1), "brightness": 1, "contrast": 1, "saturation": 1, "hue": 0}
            more, hw = _ARGS[step.op.name](dummy, op_settings(step.op) if step.op.name.startswith("albumentations.")
                                           else {}, hw)
            n += len(more)
        return n

    def _build(self):
        import torch
        import nvidia.dali.fn as fn
        import nvidia.dali.types as types
        from nvidia.dali import pipeline_def

        opts = self.plan.options
        device_id = torch.cuda.current_device() if self.gpu else None
        decoder_device = "mixed" if self.gpu else "cpu"

        @pipeline_def(batch_size=opts.batch_size, num_threads=max(1, int(opts.num_workers)), device_id=device_id,
                      prefetch_queue_depth=max(1, opts.prefetch_factor or 2), seed=self.plan.seed)
        def graph():
            outs = list(fn.external_source(source=self._source, num_outputs=self._n_outputs(), batch=False))
            jpegs, index, epoch = outs[:3]
            label = outs[3] if self.has_label else None
            args = outs[3 + int(self.has_label):]
            images, rest = None, list(self.steps)
            if rest and rest[0].op.name in _CROPS:
                anchor, shape = args[0], args[1]
                images = fn.decoders.image_slice(jpegs, anchor, shape, device=decoder_device, output_type=types.RGB,
                                                 axis_names="WH", normalized_anchor=False, normalized_shape=False)
                oh, ow = _size(op_settings(rest[0].op))
                images = fn.resize(images, resize_x=ow, resize_y=oh, interp_type=types.INTERP_LINEAR, antialias=False)
                args, rest = args[2:], rest[1:]
            else:
                images = fn.decoders.image(jpegs, device=decoder_device, output_type=types.RGB)
            normalized = False
            for step in rest:
                name = step.op.name
                cfg = op_settings(step.op) if name.startswith("albumentations.") else {}
                if name == "albumentations.RandomResizedCrop":
                    images = fn.slice(images, args[0], args[1], axis_names="WH", normalized_anchor=False,
                                      normalized_shape=False)
                    oh, ow = _size(cfg)
                    images = fn.resize(images, resize_x=ow, resize_y=oh, interp_type=types.INTERP_LINEAR,
                                       antialias=False)
                    args = args[2:]
                elif name == "albumentations.Resize":
                    oh, ow = _size(cfg)
                    images = fn.resize(images, resize_x=ow, resize_y=oh, interp_type=types.INTERP_LINEAR,
                                       antialias=False)
                elif name == "albumentations.HorizontalFlip":
                    images = fn.flip(images, horizontal=args[0], vertical=0)
                    args = args[1:]
                elif name == "albumentations.VerticalFlip":
                    images = fn.flip(images, horizontal=0, vertical=args[0])
                    args = args[1:]
                elif name == "albumentations.ColorJitter":
                    b, c, s, h = args[:4]
                    gray = fn.color_space_conversion(images, image_type=types.RGB, output_type=types.GRAY)
                    center = fn.reductions.mean(gray)
                    if self.gpu:
                        center = center.cpu()    # argument inputs live on the CPU (dynamic executor)
                    images = fn.brightness_contrast(images, brightness=b, contrast=c, contrast_center=center)
                    images = fn.saturation(images, saturation=s)
                    images = fn.hue(images, hue=h)
                    args = args[4:]
                elif name == "albumentations.Normalize":
                    mpv = float(cfg.get("max_pixel_value") or 255.0)
                    images = fn.crop_mirror_normalize(
                        images, dtype=types.FLOAT, output_layout="CHW",
                        mean=[float(m) * mpv for m in np.atleast_1d(cfg["mean"])],
                        std=[float(s) * mpv for s in np.atleast_1d(cfg["std"])])
                    normalized = True
                elif name == "to_tensor" and not normalized:
                    if getattr(step.op.params, "dtype", "keep") == "float32":
                        images = fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="CHW",
                                                          mean=[0.0], std=[255.0])
                        normalized = True
            if not normalized:
                images = fn.transpose(images, perm=[2, 0, 1])
            outputs = [images, index, epoch] + ([label] if label is not None else [])
            return tuple(outputs)

        pipe = graph()
        pipe.build()
        return pipe

    def _make_iterator(self):
        from nvidia.dali.plugin.base_iterator import LastBatchPolicy
        from nvidia.dali.plugin.pytorch import DALIGenericIterator

        names = ["image", INDEX_KEY, EPOCH_KEY] + (["label"] if self.has_label else [])
        policy = LastBatchPolicy.DROP if self.plan.options.drop_last else LastBatchPolicy.PARTIAL
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # "set reader_name": there is no DALI reader, we shard ourselves
            return DALIGenericIterator(self._build(), names, size=len(self.sampler), last_batch_policy=policy,
                                       auto_reset=False, prepare_first_batch=False)

    # ---- loader interface ----------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._epoch_chosen = True

    def __iter__(self) -> Iterator[dict]:
        # as the torch loader: a new iteration is the next epoch unless set_epoch chose one
        if getattr(self, "_iterated", False) and not getattr(self, "_epoch_chosen", False):
            self.epoch += 1
        self._epoch_chosen, self._iterated = False, True
        if self._unfinished:     # an earlier loop broke off mid-epoch: start over with a fresh DALI pipeline
            self._iterator, self._epochs = None, []
        self._epochs.append(self.epoch)   # before DALI prefetches the epoch (it does at reset)
        if self._iterator is None:
            self._iterator = self._make_iterator()
        else:
            self._iterator.reset()
        self._unfinished = True
        for out in self._iterator:
            batch = dict(out[0])
            for key in (INDEX_KEY, EPOCH_KEY, "label"):
                if key in batch:
                    batch[key] = batch[key].reshape(-1)
            yield self.batch_stage(batch)
        self._unfinished = False

    def close(self) -> None:
        """Stop DALI's threads now. They otherwise live until the pipeline is garbage-collected (it
        sits in a reference cycle with this loader), and a process that forks while they run
        (DataLoader workers) can deadlock in the child."""
        import gc

        self._iterator, self._epochs, self._unfinished = None, [], False
        gc.collect()

    def __len__(self) -> int:
        n, bs = len(self.sampler), self.plan.options.batch_size
        return n // bs if self.plan.options.drop_last else math.ceil(n / bs)

    def explain(self) -> str:
        from augflow.compile.explainer import explain_plan
        return explain_plan(self.plan, self)


def _header_pillow(raw: bytes) -> tuple[int, int]:
    import io

    from PIL import Image
    with Image.open(io.BytesIO(raw)) as im:
        return im.height, im.width
