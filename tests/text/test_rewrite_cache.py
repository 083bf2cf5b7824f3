"""The SQLite rewrite cache: survives a new instance (a rerun), touches no file until used."""

from augflow.text.cache import RewriteCache, cache_key
from augflow.text.prompt import FewShotPrompt, clean_rewrite


def test_rewrites_survive_a_new_cache_instance(tmp_path):
    key = cache_key(backend="openai", model="m", prompt="p", input="x", seed=0, index=0)
    first = RewriteCache(tmp_path / "c.sqlite")
    first.put(key, "rewritten")
    first.close()
    again = RewriteCache(tmp_path / "c.sqlite")
    assert again.get(key) == "rewritten" and again.get_many([key, "other"]) == {key: "rewritten"}


def test_no_file_until_first_use(tmp_path):
    cache = RewriteCache(tmp_path / "sub" / "c.sqlite")
    assert not (tmp_path / "sub").exists()
    assert cache.get("k") is None and (tmp_path / "sub" / "c.sqlite").exists()


def test_key_changes_with_each_part():
    base = dict(backend="openai", model="m", prompt="p", input="x", seed=0, index=0)
    keys = {cache_key(**{**base, name: value}) for name, value in
            [("backend", "transformers"), ("model", "n"), ("prompt", "q"), ("input", "y"), ("seed", 1), ("index", 1)]}
    assert len(keys | {cache_key(**base)}) == 7


def test_prompt_renders_examples_as_turns_and_as_flat_text():
    prompt = FewShotPrompt(system="S", instruction="I", examples=[{"original": "a", "rewrite": "A."}], style=["s1"])
    msgs = prompt.messages("b")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1]["content"] == "I\nExamples of the style to follow:\n- s1\nText: a" and msgs[2]["content"] == "A."
    assert prompt.flat("b").endswith("Text: a\nRewrite: A.\n\nText: b\nRewrite:")


def test_clean_rewrite_keeps_only_the_rewrite():
    assert clean_rewrite('Rewrite: "The film was great."\n\nI hope this helps!') == "The film was great."
