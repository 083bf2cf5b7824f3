"""The in-context rewriting prompt (LLM-TTA): an instruction, a few examples, then the input.

Examples come from the training (in-distribution) data, so a rewrite moves the input toward the
style the classifier was trained on while keeping its meaning. They are either pairs
(`original -> rewrite`, shown as earlier turns of the conversation) or plain in-distribution
texts (`style`, listed inside the instruction). Chat models get messages (their own template
renders them); seq2seq and template-less models get the same content as flat text.

```yaml
prompt:
  system: You rewrite text for a sentiment classifier. Reply with the rewritten text only.
  instruction: Rewrite the text in the style of movie reviews, keeping its meaning.
  examples:
    - {original: "dis film was gr8, luv it", rewrite: "This film was great; I loved it."}
  style: ["A moving, well-acted drama.", "The plot drags and the jokes fall flat."]
```
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    original: str
    rewrite: str


class FewShotPrompt(BaseModel):
    """The rewriting prompt; every field can be set in the rewriter's YAML under `prompt:`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str = Field("You rewrite text. Keep its meaning exactly; change only the wording. "
                        "Reply with the rewritten text only, on one line.")
    instruction: str = Field("Rewrite the following text, keeping its meaning.")
    examples: list[Example] = Field(default_factory=list, description="original -> rewrite pairs.")
    style: list[str] = Field(default_factory=list, description="In-distribution texts to imitate.")
    input_label: str = "Text"
    output_label: str = "Rewrite"

    def _instruction(self) -> str:
        if not self.style:
            return self.instruction
        listed = "\n".join(f"- {s}" for s in self.style)
        return f"{self.instruction}\nExamples of the style to follow:\n{listed}"

    def _user(self, text: str) -> str:
        return f"{self._instruction()}\n{self.input_label}: {text}"

    def messages(self, text: str) -> list[dict[str, str]]:
        """Chat messages: system, the example pairs as earlier turns, then the input."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        for ex in self.examples:
            out.append({"role": "user", "content": self._user(ex.original)})
            out.append({"role": "assistant", "content": ex.rewrite})
        out.append({"role": "user", "content": self._user(text)})
        return out

    def flat(self, text: str) -> str:
        """The same prompt as plain text, ending where the model's rewrite should begin."""
        parts = [self.system] if self.system else []
        parts.append(self._instruction())
        for ex in self.examples:
            parts.append(f"{self.input_label}: {ex.original}\n{self.output_label}: {ex.rewrite}")
        parts.append(f"{self.input_label}: {text}\n{self.output_label}:")
        return "\n\n".join(parts)

    def fingerprint(self) -> str:
        """A short hash of everything that shapes the prompt (part of the cache key)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def clean_rewrite(text: str, output_label: str = "Rewrite") -> str:
    """The rewrite itself: first paragraph, without a leading label or wrapping quotes."""
    text = text.strip()
    for label in (f"{output_label}:", "Rewrite:", "Paraphrase:", "Rewritten text:"):
        if text.lower().startswith(label.lower()):
            text = text[len(label):].strip()
    text = text.split("\n\n")[0].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


__all__ = ["Example", "FewShotPrompt", "clean_rewrite"]
