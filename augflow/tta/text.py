"""Text test-time augmentation (LLM-TTA): classify the input and its LLM rewrites, merge.

    tta = TextTTA(classify, Rewriter.from_yaml("pipelines/rewrite_reviews.yaml"), merge="mean")
    probs = tta(["the film was gr8 but 2 long"])      # (B, C)

`classifier(list_of_texts)` returns `(B, C)` logits (or probabilities with output='probs').
Entropy-selective rewriting: with a threshold (or after `calibrate`), only inputs whose plain
prediction has entropy above it are rewritten, which cuts LLM calls. Rewrites that failed (the
rewriter fell back to the original) or were dropped by the meaning filter do not vote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from augflow.tta.image import TTAReport, threshold_for_rate
from augflow.tta.merge import CLASS_MERGES, entropy, merge, to_probs


@dataclass
class TextTTAReport(TTAReport):
    """TTAReport plus the rewriter's side: LLM requests, cache hits, fallbacks, filtered rewrites."""

    llm_requests: int = 0
    cache_hits: int = 0
    fallbacks: int = 0
    filtered: int = 0

    def add(self, other: "TTAReport") -> None:
        super().add(other)
        for name in ("llm_requests", "cache_hits", "fallbacks", "filtered"):
            setattr(self, name, getattr(self, name) + getattr(other, name, 0))

    def __str__(self) -> str:
        return (f"rewrote {self.augmented} of {self.inputs} inputs ({100 * self.rate:.1f}%): "
                f"{self.llm_requests} LLM requests, {self.cache_hits} cache hits, {self.fallbacks} fallbacks, "
                f"{self.filtered} rewrites filtered; {self.model_calls} classifier calls on {self.model_inputs} texts")


@dataclass
class TextTTAResult:
    merged: torch.Tensor
    augmented: torch.Tensor
    rewrites: list[list[str]]               # the rewrites that voted, per input
    predictions: list[torch.Tensor]         # per input: (1 + len(rewrites), C), the original first
    report: TextTTAReport


class TextTTA:
    """Merge a text classifier's predictions over the input and its rewrites."""

    def __init__(self, classifier: Callable[[list[str]], torch.Tensor], rewriter, *, merge: str = "mean",
                 output: str = "logits", activation: str = "auto", threshold: float | None = None,
                 max_batch: int | None = 64):
        if merge not in CLASS_MERGES:
            raise ValueError(f"merge {merge!r} is not for class scores; allowed: {', '.join(CLASS_MERGES)}")
        if merge == "mean_logits" and output != "logits":
            raise ValueError("merge 'mean_logits' needs output='logits'")
        self.classifier, self.rewriter = classifier, rewriter
        self.merge, self.output, self.activation = merge, output, activation
        self.threshold, self.max_batch = threshold, max_batch
        self.report = TextTTAReport()
        self.last_report = TextTTAReport()

    def _classify(self, texts: list[str], rep: TTAReport) -> torch.Tensor:
        step = self.max_batch or max(1, len(texts))
        outs = []
        with torch.no_grad():
            for start in range(0, len(texts), step):
                outs.append(torch.as_tensor(self.classifier(texts[start:start + step])))
                rep.model_calls += 1
        rep.model_inputs += len(texts)
        return torch.cat(outs)

    def uncertainty(self, predictions: torch.Tensor) -> torch.Tensor:
        binary = self.activation == "sigmoid" or (self.activation == "auto" and predictions.shape[1] == 1)
        return entropy(to_probs(predictions, self.output, self.activation, 1), 1, binary)

    def __call__(self, texts: list[str], *, return_all: bool = False):
        texts = list(texts)
        rep = TextTTAReport(inputs=len(texts))
        base = self._classify(texts, rep)
        selected = torch.ones(len(texts), dtype=torch.bool)
        if self.threshold is not None:
            selected = self.uncertainty(base).cpu() > self.threshold
        idx = selected.nonzero().flatten().tolist()
        rep.augmented = len(idx)
        before = _snapshot(self.rewriter.stats)
        records = self.rewriter.rewrite([texts[i] for i in idx]) if idx else []
        after = _snapshot(self.rewriter.stats)
        rep.llm_requests, rep.cache_hits, rep.fallbacks, rep.filtered = (a - b for a, b in zip(after, before))
        voting = [[r.text for r in row if r.ok and r.kept] for row in records]
        flat = [t for row in voting for t in row]
        rewritten = self._classify(flat, rep) if flat else base[:0]
        merged = merge(base[None], self.merge, output=self.output, activation=self.activation)
        per_input = [base[i:i + 1] for i in range(len(texts))]
        pos = 0
        for i, row in zip(idx, voting):
            preds = torch.cat([base[i:i + 1], rewritten[pos:pos + len(row)]])
            pos += len(row)
            per_input[i] = preds
            merged[i] = merge(preds[:, None], self.merge, output=self.output, activation=self.activation)[0]
        self.last_report = rep
        self.report.add(rep)
        if not return_all:
            return merged
        all_rewrites = [[] for _ in texts]
        for i, row in zip(idx, voting):
            all_rewrites[i] = row
        return TextTTAResult(merged, selected, all_rewrites, per_input, rep)

    def calibrate(self, texts: Iterable[str], target_rate: float = 0.4) -> float:
        """The entropy threshold that rewrites `target_rate` of these held-out texts; kept and returned."""
        texts = list(texts)
        if not texts:
            raise ValueError("calibrate needs held-out texts")
        scores = self.uncertainty(self._classify(texts, TTAReport()))
        self.threshold = threshold_for_rate(scores.cpu(), target_rate)
        return self.threshold


def _snapshot(stats) -> tuple[int, int, int, int]:
    return stats.llm_requests, stats.cache_hits, stats.fallbacks, stats.filtered


__all__ = ["TextTTA", "TextTTAReport", "TextTTAResult"]
