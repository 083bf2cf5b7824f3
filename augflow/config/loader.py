"""YAML loading that keeps positions, so every error can point at a line and column.

Only `yaml.SafeLoader` is used: a pipeline file can never construct Python objects. Mappings come
back as `LocatedDict` (key and value positions), sequences as `LocatedList`; duplicate keys are an
error instead of a silent overwrite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from augflow.config.errors import ConfigIssue, PipelineConfigError

Position = tuple[int, int]  # 1-based line, column


class LocatedDict(dict):
    """A dict that remembers where it, its keys and its values were written."""

    pos: Position = (0, 0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_pos: dict[Any, Position] = {}
        self.value_pos: dict[Any, Position] = {}


class LocatedList(list):
    """A list that remembers where it and each item were written."""

    pos: Position = (0, 0)

    def __init__(self, *args):
        super().__init__(*args)
        self.item_pos: list[Position] = []


def _pos(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _LocatingLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences record positions and reject duplicate keys."""

    duplicate_issues: list[ConfigIssue]
    filename: str


def _construct_mapping(loader: _LocatingLoader, node: yaml.MappingNode) -> LocatedDict:
    loader.flatten_mapping(node)
    out = LocatedDict()
    out.pos = _pos(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            line, col = _pos(key_node)
            first = out.key_pos[key]
            loader.duplicate_issues.append(ConfigIssue(
                f"duplicate key {key!r} (first written at line {first[0]}); each key may appear once",
                loader.filename, line, col))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_pos[key] = _pos(key_node)
        out.value_pos[key] = _pos(value_node)
    return out


def _construct_sequence(loader: _LocatingLoader, node: yaml.SequenceNode) -> LocatedList:
    out = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    out.pos = _pos(node)
    out.item_pos = [_pos(child) for child in node.value]
    return out


_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml_text(text: str, filename: str = "<pipeline>") -> Any:
    """Parse YAML text into located containers; syntax errors become a PipelineConfigError."""
    loader = _LocatingLoader(text)
    loader.duplicate_issues = []
    loader.filename = filename
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or str(exc)
        context = f" ({exc.context})" if exc.context else ""
        raise PipelineConfigError([ConfigIssue(
            f"YAML syntax error: {problem}{context}; check indentation, colons and brackets near here",
            filename, line, col)]) from None
    except yaml.YAMLError as exc:
        raise PipelineConfigError([ConfigIssue(f"YAML error: {exc}", filename)]) from None
    finally:
        loader.dispose()
    if loader.duplicate_issues:
        raise PipelineConfigError(loader.duplicate_issues)
    return data


def load_yaml_file(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineConfigError([ConfigIssue("file not found; give the path of a pipeline YAML file", str(path))]) from None
    except UnicodeDecodeError as exc:
        raise PipelineConfigError([ConfigIssue(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})", str(path))]) from None
    return load_yaml_text(text, str(path))
