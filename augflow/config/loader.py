"""YAML loading that keeps positions, so every error can point at a line and column.

Only `yaml.SafeLoader` is used: a pipeline file can never construct Python objects, and tags
(`!!python/...`, `!custom`) are refused by name. Mappings come back as `LocatedDict` (key and value
positions), sequences as `LocatedList`; duplicate keys are an error instead of a silent overwrite.
Files from others are bounded: nesting deeper than MAX_DEPTH and documents whose aliases expand to
more than MAX_NODES values ("billion laughs") are refused before anything is constructed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from augflow.config.errors import ConfigIssue, PipelineConfigError

Position = tuple[int, int]  # 1-based line, column

MAX_DEPTH = 64          # nested mappings/lists; real pipelines use under 10
MAX_NODES = 100_000     # values after expanding aliases; real pipelines have a few hundred


class _LimitError(yaml.MarkedYAMLError):
    """A document over MAX_DEPTH or MAX_NODES (reported with its position, not as a syntax error)."""


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
    _depth = 0

    def compose_node(self, parent, index):
        """Count nesting while composing: a 3000-deep file stops here, not in a RecursionError."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitError(problem=f"nesting deeper than {MAX_DEPTH} levels; a pipeline needs far fewer "
                                          "(is a one_of/some_of nested in itself by mistake?)",
                                  problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_expansion(root: yaml.Node | None) -> None:
    """Refuse alias use that expands past MAX_NODES values or MAX_DEPTH levels, or refers to itself.

    Counted on the composed node graph with memoisation, so the check costs the file's size,
    not the expanded size.
    """
    sizes: dict[int, tuple[int, int]] = {}    # id(node) -> (expanded node count, height)
    active: set[int] = set()

    def visit(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            count, height = sizes[key]
        else:
            if key in active:
                raise _LimitError(problem="an alias refers to the value that contains it (a cycle)",
                                  problem_mark=node.start_mark)
            active.add(key)
            count, height = 1, 1
            children = node.value if isinstance(node, yaml.SequenceNode) else \
                [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else ()
            for child in children:
                c_count, c_height = visit(child, depth + 1)
                count += c_count
                height = max(height, c_height + 1)
                if count > MAX_NODES:
                    raise _LimitError(problem=f"aliases expand this document past {MAX_NODES} values "
                                              "(an alias bomb?); write the values out or use fewer aliases",
                                      problem_mark=child.start_mark)
            active.discard(key)
            sizes[key] = (count, height)
        if depth + height - 1 > MAX_DEPTH:
            raise _LimitError(problem=f"aliases nest this document deeper than {MAX_DEPTH} levels",
                              problem_mark=node.start_mark)
        return count, height

    if root is not None:
        visit(root, 1)


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


# YAML 1.2 reads `1e5` as a number; PyYAML (YAML 1.1) would read it as the string '1e5'
_LocatingLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                      list("-+0123456789"))
_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml_text(text: str, filename: str = "<pipeline>") -> Any:
    """Parse YAML text into located containers; syntax errors become a PipelineConfigError."""
    loader = _LocatingLoader(text)
    loader.duplicate_issues = []
    loader.filename = filename
    try:
        node = loader.get_single_node()
        _check_expansion(node)
        data = loader.construct_document(node) if node is not None else None
    except _LimitError as exc:
        mark = exc.problem_mark
        raise PipelineConfigError([ConfigIssue(f"refused: {exc.problem}", filename,
                                               *((mark.line + 1, mark.column + 1) if mark else (None, None)))]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        tag = re.search(r"constructor for the tag '([^']*)'", exc.problem or "")
        if tag:
            raise PipelineConfigError([ConfigIssue(
                f"YAML tags are not allowed in a pipeline file (found {tag.group(1).replace('tag:yaml.org,2002:', '!!')!r}): "
                "write plain values (numbers, strings, lists, mappings); a pipeline file never constructs "
                "Python objects", filename, line, col)]) from None
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
