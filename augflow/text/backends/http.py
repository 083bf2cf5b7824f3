"""Any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, Ollama, hosted APIs).

Each request has a timeout; timeouts, connection errors, 408/429/5xx answers and malformed JSON
are retried with exponential backoff (a numeric `Retry-After` is honoured, capped); other 4xx
answers are not retried. At most `concurrency` requests are in flight. A request that still
fails comes back as a failed Generation: the rewriter logs it and keeps the original text.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from augflow.text.backends.base import Generation, GenerationRequest

log = logging.getLogger("augflow.text")
_RETRY_STATUS = {408, 409, 425, 429}


class OpenAIBackend:
    """POST {base_url}/chat/completions with the prompt's messages, one rewrite per request.

    The API key is read from the environment variable named by `api_key_env`, never from YAML.
    """

    kind = "openai"

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None, timeout: float = 30.0,
                 connect_timeout: float | None = None, retries: int = 3, backoff: float = 0.5,
                 max_backoff: float = 8.0, concurrency: int = 4, headers: dict[str, str] | None = None,
                 extra_body: dict[str, Any] | None = None, transport: Any = None):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("retries and backoff must be >= 0 and timeout > 0")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.model_id = f"{base_url.rstrip('/')}::{model}"
        self.retries, self.backoff, self.max_backoff, self.concurrency = retries, backoff, max_backoff, concurrency
        self.extra_body = dict(extra_body or {})
        self._headers = dict(headers or {})
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(f"environment variable {api_key_env!r} (api_key_env) is not set")
            self._headers["Authorization"] = f"Bearer {key}"
        self._timeout = (timeout, connect_timeout)
        self._transport = transport
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import httpx
            read, connect = self._timeout
            self._client = httpx.Client(timeout=httpx.Timeout(read, connect=connect or read), headers=self._headers,
                                        transport=self._transport,
                                        limits=httpx.Limits(max_connections=self.concurrency))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        if len(requests) <= 1 or self.concurrency == 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def _one(self, req: GenerationRequest) -> Generation:
        import httpx

        body = {"model": self.model, "messages": req.messages, "temperature": req.temperature,
                "top_p": req.top_p, "max_tokens": req.max_new_tokens, "seed": req.seed, "n": 1, **self.extra_body}
        error, retry_after = "no attempt", None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                if retry_after is not None:
                    delay = min(self.max_backoff, max(delay, retry_after))
                if delay > 0:
                    time.sleep(delay)
            retry_after = None
            try:
                resp = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                error = f"timed out after {self._timeout[0]} s"
                continue
            except httpx.TransportError as exc:
                error = f"connection error ({type(exc).__name__}: {exc})"
                continue
            if resp.status_code == 200:
                try:
                    return Generation(_content(resp), attempts=attempt + 1)
                except ValueError as exc:
                    error = f"malformed response ({exc})"
                    continue
            error = f"HTTP {resp.status_code}: {resp.text[:200]!r}"
            if resp.status_code not in _RETRY_STATUS and resp.status_code < 500:
                return Generation(None, error, attempt + 1)     # the request itself is wrong: no retry
            try:
                retry_after = float(resp.headers.get("retry-after", ""))
            except ValueError:
                retry_after = None
        return Generation(None, f"{error} after {self.retries + 1} tries", self.retries + 1)


def _content(resp) -> str:
    try:
        data = resp.json()
    except ValueError as exc:
        raise ValueError(f"not JSON: {resp.text[:80]!r}") from exc
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"no choices[0].message.content in {str(data)[:120]}") from None
    if not isinstance(content, str):
        raise ValueError(f"message content is {type(content).__name__}, not text")
    return content


__all__ = ["OpenAIBackend"]
