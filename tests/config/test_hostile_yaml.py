"""Files from others: alias bombs, deep nesting, tags and `imports:` are refused with a clear
message and a position, quickly and in bounded memory."""

import time
import tracemalloc

import pytest

import augflow
from augflow import PipelineConfigError
from augflow.config.loader import MAX_DEPTH, MAX_NODES, load_yaml_text


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """`levels` anchors, each a list of `width` aliases of the one before, used as `p: *last`."""
    lines = ["augflow: 1", "x:", "  a0: &a0 [lol]"]
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines += ["sample:", f"  - horizontal_flip: {{p: *a{levels}}}"]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly_in_bounded_memory(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(PipelineConfigError) as info:
            augflow.Pipeline.from_yaml(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert f"bomb.yaml:" in message and f"past {MAX_NODES} values" in message and "alias" in message
    assert elapsed < 1.0, elapsed
    assert peak < 20 * 2 ** 20, peak          # 9**9 expanded values would be gigabytes


def test_modest_alias_use_still_loads():
    text = "augflow: 1\nx: &crop {size: [32, 32]}\nsample:\n  - random_resized_crop: *crop\n"
    data = load_yaml_text(text)
    assert data["sample"][0]["random_resized_crop"]["size"] == [32, 32]


def test_recursive_alias_is_refused():
    with pytest.raises(PipelineConfigError, match=r"<pipeline>:2:4: refused: an alias refers to the value that contains it"):
        load_yaml_text("augflow: 1\nx: &a [*a]\n")


@pytest.mark.parametrize("style", ["flow", "block"])
def test_3000_deep_one_of_gets_a_clear_error_with_position(style):
    if style == "flow":
        text = "augflow: 1\nsample:\n  - " + "{one_of: [" * 3000 + "horizontal_flip" + "]}" * 3000 + "\n"
    else:
        lines, indent = ["augflow: 1", "sample:"], "  "
        for _ in range(3000):
            lines.append(f"{indent}- one_of:")
            indent += "    "
        lines.append(f"{indent}- horizontal_flip")
        text = "\n".join(lines) + "\n"
    with pytest.raises(PipelineConfigError) as info:     # not a RecursionError
        augflow.Pipeline.from_yaml_text(text, "deep.yaml")
    issue = info.value.issues[0]
    assert issue.file == "deep.yaml" and issue.line is not None and issue.column is not None
    assert f"nesting deeper than {MAX_DEPTH} levels" in issue.message


def test_nesting_within_the_limit_loads():
    depth = 10
    text = "augflow: 1\nsample:\n  - " + "{one_of: [" * depth + "horizontal_flip" + "]}" * depth + "\n"
    assert len(augflow.Pipeline.from_yaml_text(text).op_steps()) == 1


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['echo hi']", "!!python/name:os.system",
                                 "!custom 3"])
def test_tags_are_refused_as_tags(tag):
    with pytest.raises(PipelineConfigError) as info:
        augflow.Pipeline.from_yaml_text(f"augflow: 1\nname: {tag}\n", "t.yaml")
    message = str(info.value)
    assert message.startswith("t.yaml:2:7: YAML tags are not allowed")
    assert "indentation" not in message


def test_allow_imports_false_refuses_a_file_with_imports(tmp_path):
    path = tmp_path / "imports.yaml"
    path.write_text("augflow: 1\nimports: [colorsys]\nsample:\n  - horizontal_flip: {}\n")
    assert augflow.Pipeline.from_yaml(path).spec.imports == ["colorsys"]     # default: imports run
    with pytest.raises(PipelineConfigError) as info:
        augflow.Pipeline.from_yaml(path, allow_imports=False)
    message = str(info.value)
    assert "imports.yaml:2:1:" in message and "'colorsys'" in message and "allow_imports=False" in message

