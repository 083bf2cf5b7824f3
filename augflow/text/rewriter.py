"""`Rewriter`: k in-context rewrites of each input by an LLM, cached, checked for meaning.

    rw = Rewriter.from_yaml("pipelines/rewrite_reviews.yaml")
    rw(["the film was gr8"])          # -> [["The film was great.", ...]]  (k rewrites per input)

Rewrite j of an input is generated with its own seed (from the rewriter's `seed` and j), so it
is reproducible and cached under (backend, model, prompt, input, seed, j, sampling settings). A
failed generation never raises: it is logged and the original text stands in for it (and is not
cached, so the next run tries again). With a meaning filter, rewrites that drift from the
original are dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from augflow import seeding
from augflow.config.errors import ConfigIssue, PipelineConfigError
from augflow.config.loader import LocatedDict, load_yaml_file
from augflow.text.backends import Backend, GenerationRequest, build_backend
from augflow.text.cache import RewriteCache, cache_key
from augflow.text.meaning import MeaningFilter
from augflow.text.prompt import FewShotPrompt, clean_rewrite

log = logging.getLogger("augflow.text")
_SEED_TAG = 0x7E471


@dataclass
class Rewrite:
    """One rewrite: its text and where it came from (`llm`, `cache`, or `fallback` = the original)."""

    text: str
    source: str
    similarity: float | None = None
    kept: bool = True
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.source != "fallback"


@dataclass
class RewriteStats:
    requested: int = 0
    cache_hits: int = 0
    llm_requests: int = 0
    fallbacks: int = 0
    filtered: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class RewriterSpec(BaseModel):
    """The `rewriter:` section of a YAML file."""

    model_config = ConfigDict(extra="forbid")

    backend: dict[str, Any]
    k: int = Field(4, ge=1, description="Rewrites per input.")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(64, ge=1)
    seed: int = Field(0, ge=0)
    cache: str | None = Field(None, description="SQLite file for cached rewrites.")
    meaning_filter: dict[str, Any] | None = Field(None, description="{threshold, model, device}")
    prompt: FewShotPrompt = Field(default_factory=FewShotPrompt)


class Rewriter:
    """In-context LLM rewriting (LLM-TTA) with a disk cache and an optional meaning filter."""

    def __init__(self, backend: Backend | Mapping[str, Any], prompt: FewShotPrompt | Mapping[str, Any] | None = None, *,
                 k: int = 4, temperature: float = 0.7, top_p: float = 0.95, max_new_tokens: int = 64, seed: int = 0,
                 cache: RewriteCache | str | Path | None = None,
                 meaning_filter: MeaningFilter | Mapping[str, Any] | None = None):
        spec = RewriterSpec(backend={}, k=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                            seed=seed)   # validates the numbers
        self.backend = build_backend(dict(backend)) if isinstance(backend, Mapping) else backend
        self.prompt = prompt if isinstance(prompt, FewShotPrompt) else FewShotPrompt(**dict(prompt or {}))
        self.k, self.temperature, self.top_p = spec.k, spec.temperature, spec.top_p
        self.max_new_tokens, self.seed = spec.max_new_tokens, spec.seed
        self.cache = RewriteCache(cache) if isinstance(cache, (str, Path)) else cache
        self.meaning_filter = MeaningFilter(**dict(meaning_filter)) if isinstance(meaning_filter, Mapping) \
            else meaning_filter
        self.stats = RewriteStats()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> "Rewriter":
        """Build from the `rewriter:` section of a YAML file (errors name file, line and column)."""
        return cls.from_dict(load_yaml_file(path), str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], filename: str = "<dict>") -> "Rewriter":
        section = data.get("rewriter") if isinstance(data, Mapping) else None
        if not isinstance(section, Mapping):
            pos = getattr(data, "pos", (1, 1))
            raise PipelineConfigError([ConfigIssue("a rewriter file needs a 'rewriter:' mapping with at least "
                                                   "'backend'", filename, *pos)])
        unknown = [k for k in data if k not in ("augflow", "name", "description", "rewriter")]
        if unknown:
            pos = data.key_pos.get(unknown[0]) if isinstance(data, LocatedDict) else None
            raise PipelineConfigError([ConfigIssue(f"unknown top-level key {unknown[0]!r} in a rewriter file "
                                                   "(allowed: augflow, name, description, rewriter)", filename,
                                                   *(pos or (None, None)))])
        try:
            spec = RewriterSpec(**dict(section))
        except ValidationError as exc:
            raise PipelineConfigError([_issue(err, section, filename) for err in exc.errors()]) from None
        try:
            backend = build_backend(spec.backend)
        except (TypeError, ValueError, FileNotFoundError) as exc:
            pos = section.value_pos.get("backend") if isinstance(section, LocatedDict) else None
            raise PipelineConfigError([ConfigIssue(f"backend: {exc}", filename, *(pos or (None, None)))]) from None
        return cls(backend, spec.prompt, k=spec.k, temperature=spec.temperature, top_p=spec.top_p,
                   max_new_tokens=spec.max_new_tokens, seed=spec.seed, cache=spec.cache,
                   meaning_filter=spec.meaning_filter)

    # ---- rewriting ----------------------------------------------------------------------------
    def seed_of(self, j: int) -> int:
        """The generation seed of rewrite j (31 bits: every server accepts it)."""
        return seeding.seed_int(np.random.SeedSequence([_SEED_TAG, self.seed, j])) % (2 ** 31)

    def key(self, text: str, j: int) -> str:
        return cache_key(backend=self.backend.kind, model=self.backend.model_id, prompt=self.prompt.fingerprint(),
                         input=text, seed=self.seed, index=j, temperature=self.temperature, top_p=self.top_p,
                         max_new_tokens=self.max_new_tokens)

    def rewrite(self, texts: list[str]) -> list[list[Rewrite]]:
        """k Rewrite records per input, in order."""
        texts = [str(t) for t in texts]
        slots = [(i, j) for i in range(len(texts)) for j in range(self.k)]
        keys = {(i, j): self.key(texts[i], j) for i, j in slots}
        cached = self.cache.get_many(list(keys.values())) if self.cache is not None else {}
        out: list[list[Rewrite | None]] = [[None] * self.k for _ in texts]
        todo = []
        for i, j in slots:
            hit = cached.get(keys[(i, j)])
            if hit is not None:
                out[i][j] = Rewrite(hit, "cache")
            else:
                todo.append((i, j))
        requests = [GenerationRequest(self.prompt.messages(texts[i]), self.prompt.flat(texts[i]), self.seed_of(j),
                                      self.temperature, self.max_new_tokens, self.top_p) for i, j in todo]
        generations = self.backend.generate(requests) if requests else []
        for (i, j), gen in zip(todo, generations):
            text = clean_rewrite(gen.text, self.prompt.output_label) if gen.text is not None else ""
            if not text:
                error = gen.error or "empty rewrite"
                log.warning("rewrite %d of input %d failed (%s); keeping the original text", j, i, error)
                out[i][j] = Rewrite(texts[i], "fallback", error=error)
                self.stats.errors[error.split(" (")[0]] = self.stats.errors.get(error.split(" (")[0], 0) + 1
                continue
            out[i][j] = Rewrite(text, "llm")
            if self.cache is not None:
                self.cache.put(keys[(i, j)], text, {"model": self.backend.model_id, "index": j})
        result: list[list[Rewrite]] = [[r for r in row if r is not None] for row in out]
        if self.meaning_filter is not None:
            self._filter(texts, result)
        self.stats.requested += len(slots)
        self.stats.cache_hits += len(slots) - len(todo)
        self.stats.llm_requests += len(todo)
        self.stats.fallbacks += sum(not r.ok for row in result for r in row)
        return result

    def _filter(self, texts: list[str], result: list[list[Rewrite]]) -> None:
        checked = [[r for r in row if r.ok] for row in result]
        sims = self.meaning_filter.similarities(texts, [[r.text for r in row] for row in checked])
        for row, row_sims in zip(checked, sims):
            for r, s in zip(row, row_sims):
                r.similarity = s
                r.kept = s >= self.meaning_filter.threshold
                self.stats.filtered += not r.kept

    def __call__(self, texts: list[str]) -> list[list[str]]:
        """The rewrites of each input that passed the meaning filter (failed ones: the original)."""
        return [[r.text for r in row if r.kept] for row in self.rewrite(texts)]


def _issue(err: dict, section: Mapping, filename: str) -> ConfigIssue:
    loc = [str(p) for p in err.get("loc", ())]
    node, pos = section, getattr(section, "pos", None)
    for part in loc:
        if isinstance(node, LocatedDict) and part in node:
            pos = node.value_pos.get(part, pos) if err.get("type") != "extra_forbidden" else node.key_pos.get(part, pos)
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            item_pos = getattr(node, "item_pos", None)
            pos = item_pos[int(part)] if item_pos else pos
            node = node[int(part)]
    msg = err.get("msg", "is invalid")
    msg = msg[:1].lower() + msg[1:]
    where = ".".join(loc)
    if err.get("type") == "extra_forbidden":
        return ConfigIssue(f"rewriter: unknown key {where!r}", filename, *(pos or (None, None)))
    given = "" if err.get("type") == "missing" else f", got {err.get('input')!r}"
    return ConfigIssue(f"rewriter.{where}: {msg}{given}", filename, *(pos or (None, None)))


__all__ = ["Rewriter", "Rewrite", "RewriteStats", "RewriterSpec"]
