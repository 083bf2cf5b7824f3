"""Rewriter over HTTP: a real OpenAI-compatible server on 127.0.0.1 serving a local model, with
injected timeouts, 500s and malformed JSON proving the retries, the fallback and the cache."""

import logging

import pytest

from augflow.text import FewShotPrompt, Rewriter

pytest.importorskip("httpx", reason="the HTTP backend needs httpx (augflow[llm])")

PROMPT = FewShotPrompt(system="Rewrite politely.", examples=[{"original": "gimme tea", "rewrite": "May I have tea?"}])


def _rewriter(server, k=1, cache=None, **backend):
    cfg = {"kind": "openai", "base_url": server.url, "model": "tiny-llama", "timeout": 5.0, "retries": 2,
           "backoff": 0.0, **backend}
    return Rewriter(cfg, PROMPT, k=k, temperature=0.8, max_new_tokens=8, seed=1,
                    cache=cache)


def test_rewrites_come_from_the_served_model_over_chat_completions(openai_server):
    rw = _rewriter(openai_server, k=2)
    out = rw.rewrite(["the movie was great"])
    assert [r.source for r in out[0]] == ["llm", "llm"] and all(r.text for r in out[0])
    body = openai_server.requests[0]["body"]
    assert openai_server.requests[0]["path"] == "/v1/chat/completions"
    assert body["model"] == "tiny-llama" and body["temperature"] == 0.8 and body["max_tokens"] == 8
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][-1]["content"].endswith("Text: the movie was great")
    assert {r["body"]["seed"] for r in openai_server.requests} == {rw.seed_of(0), rw.seed_of(1)}


@pytest.mark.parametrize("failure", ["500", "malformed", "no_content"])
def test_transient_failures_are_retried(openai_server, failure):
    openai_server.script = [failure, failure]
    out = _rewriter(openai_server).rewrite(["the movie was great"])
    assert out[0][0].source == "llm"
    assert len(openai_server.requests) == 3


def test_timeouts_fall_back_to_the_original_text_and_log(openai_server, caplog):
    openai_server.mode = "hang"
    rw = _rewriter(openai_server, timeout=0.3, retries=1)
    with caplog.at_level(logging.WARNING, logger="augflow.text"):
        out = rw(["the movie was great"])
    assert out == [["the movie was great"]]
    assert "timed out after 0.3 s after 2 tries" in caplog.text and "keeping the original text" in caplog.text
    assert rw.stats.fallbacks == 1


def test_client_errors_are_not_retried(openai_server):
    openai_server.mode = "400"
    out = _rewriter(openai_server).rewrite(["x"])
    assert out[0][0].source == "fallback" and "HTTP 400" in out[0][0].error
    assert len(openai_server.requests) == 1


def test_failures_are_not_cached_and_a_healthy_rerun_is(openai_server, tmp_path):
    cache = tmp_path / "rw.sqlite"
    openai_server.mode = "500"
    broken = _rewriter(openai_server, cache=cache, retries=0)
    assert broken.rewrite(["the movie was great"])[0][0].source == "fallback"
    openai_server.mode = "ok"
    healthy = _rewriter(openai_server, cache=cache)
    text = healthy(["the movie was great"])
    assert healthy.stats.llm_requests == 1
    served = len(openai_server.requests)
    rerun = _rewriter(openai_server, cache=cache)
    assert rerun(["the movie was great"]) == text
    assert rerun.stats.cache_hits == 1 and len(openai_server.requests) == served   # no request at all


def test_concurrency_limit_caps_requests_in_flight(openai_server):
    openai_server.mode = "barrier"          # each request waits for a second one to be in flight
    rw = _rewriter(openai_server, k=3, concurrency=2)
    out = rw.rewrite(["one", "two"])
    assert all(r.source == "llm" for row in out for r in row)
    assert openai_server.max_inflight == 2


def test_unreachable_server_falls_back(caplog):
    rw = Rewriter({"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "retries": 1,
                   "backoff": 0.0, "timeout": 2.0}, k=1)
    with caplog.at_level(logging.WARNING, logger="augflow.text"):
        assert rw(["hello"]) == [["hello"]]
    assert "connection error" in caplog.text


def test_api_key_comes_from_the_named_environment_variable(monkeypatch):
    backend = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "AUGFLOW_TEST_KEY"}
    with pytest.raises(ValueError, match="'AUGFLOW_TEST_KEY' .* is not set"):
        Rewriter(backend)
    monkeypatch.setenv("AUGFLOW_TEST_KEY", "sk-test")
    rw = Rewriter(backend)
    assert rw.backend.client.headers["authorization"] == "Bearer sk-test"
