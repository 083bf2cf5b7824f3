"""Local model directories: checks, content hashes, and the once-per-worker model cache.

Generative ops name a model by a local directory, never a hub id: `check_model_dir` runs when a
pipeline is loaded, so a missing or incomplete directory is an error on line N of the YAML, not on
the 10,000th sample. Models are loaded lazily, at most once per process (a DataLoader worker is a
process) and per (directory, dtype, device), by `cached_model`. `CALLS` counts model invocations
per op, which is how tests and benchmarks see that a results cache did its job.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import threading
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

from augflow.errors import AugflowError

# Model invocations (one per forward batch) and images generated, per op name.
CALLS: Counter = Counter()
IMAGES: Counter = Counter()

_MODELS: dict[tuple, Any] = {}
_LOCKS: dict[tuple, threading.Lock] = {}
_GLOBAL_LOCK = threading.Lock()

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
_HASHED_SUFFIXES = (".json", ".txt", ".model", ".yaml")


class ModelError(AugflowError, ValueError):
    """A model directory or file that cannot be used; the message names op, path and what is missing."""


def require(package: str, op: str | None = None, extra: str = "diffusers") -> None:
    """Raise a ModelError naming the extra to install when `package` is not importable."""
    if importlib.util.find_spec(package) is None:
        who = f"op {op!r} needs" if op else "needs"
        raise ModelError(f"{who} the {package!r} package, which is not installed; "
                         f"install the extra: pip install 'augflow[{extra}]'")


def check_diffusers_dir(path: str | Path, op: str | None = None, role: str = "model") -> Path:
    """A diffusers directory (pipeline or single model) that holds every file it declares.

    A pipeline directory (`model_index.json`) must have each non-empty component's folder with
    its config and, for networks, a weights file. A single-model directory (a ControlNet) must
    have `config.json` and weights.
    """
    p = Path(path).expanduser()
    what = (f"op {op!r}: " if op else "") + f"{role} directory {str(p)!r}"
    if not p.exists():
        raise ModelError(f"{what} does not exist; give a local diffusers directory (saved with "
                         "`save_pretrained` or downloaded beforehand) — augflow never downloads models")
    if not p.is_dir():
        raise ModelError(f"{what} is a file; give the directory that holds model_index.json or config.json")
    index = p / "model_index.json"
    if index.exists():
        try:
            components = json.loads(index.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelError(f"{what}: model_index.json is not valid JSON ({exc})") from None
        missing = []
        for name, value in components.items():
            if name.startswith("_") or not isinstance(value, list) or len(value) != 2 or value[1] is None:
                continue
            missing += _missing_component_files(p / name, name, value[1])
        if missing:
            raise ModelError(f"{what} is incomplete: missing {', '.join(missing)}")
        return p.resolve()
    if (p / "config.json").exists():
        if not _has_weights(p):
            raise ModelError(f"{what} has config.json but no weights file "
                             f"({', '.join('*' + s for s in _WEIGHT_SUFFIXES[:2])})")
        return p.resolve()
    raise ModelError(f"{what} has neither model_index.json (a pipeline) nor config.json (a single model)")


def _missing_component_files(folder: Path, name: str, cls_name: str) -> list[str]:
    if not folder.is_dir():
        return [f"{name}/ (declared in model_index.json as {cls_name})"]
    lowered = cls_name.lower()
    if "tokenizer" in lowered:
        files = {f.name for f in folder.iterdir()}
        ok = "tokenizer.json" in files or "vocab.json" in files or any(f.endswith(".model") for f in files)
        return [] if ok else [f"{name}/tokenizer.json or vocab.json"]
    if "scheduler" in lowered:
        return [] if (folder / "scheduler_config.json").exists() else [f"{name}/scheduler_config.json"]
    if "processor" in lowered or "extractor" in lowered:
        return [] if (folder / "preprocessor_config.json").exists() else [f"{name}/preprocessor_config.json"]
    out = []
    if not (folder / "config.json").exists():
        out.append(f"{name}/config.json")
    if not _has_weights(folder):
        out.append(f"{name}/ weights (*.safetensors or *.bin)")
    return out


def _has_weights(folder: Path) -> bool:
    return any(f.suffix in _WEIGHT_SUFFIXES or f.name.endswith(".safetensors.index.json")
               for f in folder.iterdir() if f.is_file())


def content_hash(path: str | Path) -> str:
    """`sha256:...` of a model directory or file: every config/tokenizer file's bytes, and for each
    weights file its size plus three 1 MiB samples (start, middle, end). Hashing gigabytes of
    weights on every run would cost minutes; a retrained or fine-tuned checkpoint changes its
    sampled bytes (weights change everywhere), which is what the results cache needs to notice.
    """
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        rel = f.relative_to(p).as_posix() if p.is_dir() else f.name
        if rel.startswith(".") or "/." in rel:
            continue
        h.update(rel.encode())
        if f.suffix in _HASHED_SUFFIXES:
            h.update(f.read_bytes())
        else:
            h.update(_sampled_bytes(f))
    return "sha256:" + h.hexdigest()


def _sampled_bytes(f: Path, chunk: int = 1 << 20) -> bytes:
    size = f.stat().st_size
    with open(f, "rb") as handle:
        if size <= 3 * chunk:
            return str(size).encode() + handle.read()
        parts = [str(size).encode()]
        for offset in (0, size // 2, size - chunk):
            handle.seek(offset)
            parts.append(handle.read(chunk))
    return b"".join(parts)


def cached_model(key: tuple, loader: Callable[[], Any]) -> Any:
    """The model stored under `key`, loading it with `loader()` the first time in this process."""
    model = _MODELS.get(key)
    if model is not None:
        return model
    with _GLOBAL_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:   # two threads asking for one model load it once
        model = _MODELS.get(key)
        if model is None:
            model = loader()
            _MODELS[key] = model
    return model


def clear_models() -> None:
    """Forget every loaded model (frees memory; the next call loads again)."""
    _MODELS.clear()


def resolve_device(device: str) -> str:
    """`auto` means CUDA when present, else CPU."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_device(device: str) -> str:
    """A device name that can work here: cpu, auto, or cuda[:n] when CUDA is present."""
    text = str(device)
    if text in ("cpu", "auto") or text.startswith("mps"):
        return text
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ModelError(f"device {text!r} is not available on this machine (no CUDA); use device: auto "
                             "to run on CUDA where present and on the CPU elsewhere")
        return text
    raise ModelError(f"device must be cpu, cuda, cuda:N or auto, got {text!r}")


def torch_dtype(name: str, device: str):
    """The torch dtype for a schema name; half precision on CPU is refused (slow, and often unsupported)."""
    import torch

    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    if device == "cpu" and dtype is torch.float16:
        raise ModelError("dtype float16 needs a GPU (device: cuda); use float32 or bfloat16 on CPU")
    return dtype


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence diffusers/transformers loading bars and info logs while a model loads."""
    import diffusers.utils.logging as dlog

    try:
        import transformers.utils.logging as tlog
    except ImportError:  # pragma: no cover - transformers is a dependency of the diffusers extra
        tlog = None
    d_bars = not dlog.are_progress_bars_disabled() if hasattr(dlog, "are_progress_bars_disabled") else False
    t_bars = tlog is not None and tlog.is_progress_bar_enabled()
    d_level = dlog.get_verbosity()
    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    if tlog is not None:
        tlog.disable_progress_bar()
        t_level = tlog.get_verbosity()
        tlog.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            # diffusers >= 0.36 renames torch_dtype to dtype; older releases know only torch_dtype.
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            yield
    finally:
        dlog.set_verbosity(d_level)
        if d_bars:
            dlog.enable_progress_bar()
        if tlog is not None:
            tlog.set_verbosity(t_level)
            if t_bars:
                tlog.enable_progress_bar()


__all__ = ["CALLS", "IMAGES", "ModelError", "require", "check_diffusers_dir", "content_hash", "cached_model",
           "clear_models", "resolve_device", "check_device", "torch_dtype", "quiet_loading"]
