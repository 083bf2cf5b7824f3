"""The op registry: name -> op class + typed parameter schema.

YAML validation, `augflow.list_ops()`, the JSON Schema and the CLI's catalogue are all generated from
what is registered here. Custom ops come in only through `register` (directly, or from a module
named in a pipeline's `imports:` list) — never from arbitrary strings in a YAML file.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ValidationError

from augflow import op_backends
from augflow._builtins import BUILTIN_FAMILIES
from augflow.errors import AugflowError
from augflow.ops.base import Op


@dataclass
class OpSpec:
    """What the registry knows of one op."""

    name: str
    factory: Callable[..., Op]        # called with the user's keyword params
    schema_source: type[BaseModel] | Callable[[], type[BaseModel]]  # the model, or a builder of it
    targets: frozenset[str]
    family: str
    doc: str = ""
    backends: tuple[str, ...] | None = None   # None: from augflow/op_backends.py (the one table)
    aliases: tuple[str, ...] = ()
    hidden_params: tuple[str, ...] = ()   # schema fields not exposed to users (e.g. albumentations' `strict`)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # set once, here: the compiler and the catalogue both read this field
        self.backends = op_backends.declared(self.name, self.extra.get("cls"), self.backends)

    @functools.cached_property
    def schema(self) -> type[BaseModel]:
        """The pydantic model of the op's parameters (built on first use for adapter ops)."""
        src = self.schema_source
        return src if isinstance(src, type) and issubclass(src, BaseModel) else src()

    def params_info(self) -> list[dict[str, Any]]:
        """Parameter name, type, default and description, for listings."""
        rows = []
        arg_docs = arg_descriptions(self.doc)
        for pname, f in self.schema.model_fields.items():
            if pname in self.hidden_params:
                continue
            default = None if f.is_required() else f.get_default(call_default_factory=True)
            row = {
                "name": pname,
                "type": _type_name(f.annotation),
                "required": f.is_required(),
                "default": default,
                "description": f.description or arg_docs.get(pname, ""),
                "constraints": [str(m) for m in f.metadata],
            }
            named = self.extra.get("named_constants", {}).get(pname)
            if named:   # `interpolation: linear` is what users write; OpenCV's integer codes still work
                by_code = {code: n for n, code in named.items()}
                row["type"] = "str"
                row["default"] = by_code.get(default, default)
                row["constraints"] = [f"one of {', '.join(named)}"]
            rows.append(row)
        return rows

    def validate(self, params: dict[str, Any]) -> BaseModel:
        """Validate user params against the schema; raises pydantic's ValidationError."""
        return self.schema(**params)

    def build(self, params: dict[str, Any]) -> Op:
        return self.factory(**params)


def arg_descriptions(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google-style docstring's `Args:` section (albumentations' classes).

    `name (type): text` starts an entry; more-indented lines continue it; a line such as
    `Default: ...` stays part of the text.
    """
    out: dict[str, str] = {}
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() in ("Args:", "Arguments:", "Parameters:"))
    except StopIteration:
        return out
    indent, current = None, None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        if width < indent:
            break
        match = re.match(r"\s*(\w+)\s*(\([^)]*\))?\s*:\s*(.*)", line) if width == indent else None
        if match:
            current = match.group(1)
            out[current] = match.group(3).strip()
        elif current is not None and width > indent:
            out[current] = (out[current] + " " + line.strip()).strip()
    return out


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    return text or str(annotation).replace("typing.", "")


class UnknownOpError(AugflowError, KeyError):
    """An op name that is not registered; carries close matches."""

    def __init__(self, name: str, suggestions: list[str]):
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown op {name!r}{hint} (see `augflow ops` for the list)")

    def __str__(self) -> str:
        return self.args[0]


_REGISTRY: dict[str, OpSpec] = {}
_ALIASES: dict[str, str] = {}
_FAMILIES_TRIED = 0              # how many of BUILTIN_FAMILIES have been imported so far
_FAMILIES_LOCK = threading.RLock()


def register(name: str, *, targets: Iterable[str] = ("image",), family: str = "custom",
             backends: Iterable[str] | None = None, aliases: Iterable[str] = ()) -> Callable[[type[Op]], type[Op]]:
    """Class decorator: register an `Op` subclass under `name` with its `Params` schema.

    `backends`: the compile backends that run a custom op (see augflow/op_backends.py); None: the
    per-sample path, plus `kornia` when the class has `apply_batch`. Built-in ops are declared in
    that module's TABLE."""

    def deco(cls: type[Op]) -> type[Op]:
        cls.name = name
        cls.targets = frozenset(targets)
        add(OpSpec(
            name=name, factory=lambda **kw: cls(cls.Params(**kw)), schema_source=cls.Params,
            targets=cls.targets, family=family, doc=(cls.__doc__ or "").strip(),
            backends=None if backends is None else tuple(backends), aliases=tuple(aliases), extra={"cls": cls},
        ))
        return cls

    return deco


def add(spec: OpSpec) -> None:
    """Add a spec (used by `register` and by adapters that register many ops at once)."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing.extra.get("cls") is not spec.extra.get("cls"):
        # Re-registering the same class (module reload) is fine; a different class is a clash.
        if existing.extra.get("cls") is None or spec.extra.get("cls") is None or \
                existing.extra["cls"].__qualname__ != spec.extra["cls"].__qualname__:
            raise ValueError(f"op name {spec.name!r} is already registered (family {existing.family})")
    _REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES.setdefault(alias, spec.name)


def _load_next_family() -> bool:
    """Import the next built-in family not imported yet; False when all have been."""
    global _FAMILIES_TRIED
    with _FAMILIES_LOCK:
        if _FAMILIES_TRIED >= len(BUILTIN_FAMILIES):
            return False
        module = BUILTIN_FAMILIES[_FAMILIES_TRIED]
        _FAMILIES_TRIED += 1
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:   # a family that exists but fails to import is a real error
                raise
        return True


def _load_builtins() -> None:
    """Import every built-in family (for listings and suggestions)."""
    while _load_next_family():
        pass


def get(name: str) -> OpSpec:
    """The spec of a registered op; raises UnknownOpError with close matches."""
    spec = _REGISTRY.get(name)
    while spec is None and _load_next_family():   # families load on first use, in table order
        spec = _REGISTRY.get(name)
    if spec is None:   # every family is loaded by now: an op's own name beats another op's alias
        spec = _REGISTRY.get(_ALIASES.get(name, ""))
    if spec is None:
        raise UnknownOpError(name, suggest(name))
    return spec


def suggest(name: str, n: int = 3) -> list[str]:
    _load_builtins()
    pool = list(_REGISTRY) + list(_ALIASES)
    lowered = {p.lower(): p for p in pool}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]


def names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def specs() -> list[OpSpec]:
    _load_builtins()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def import_plugin(module: str) -> None:
    """Import a module that registers custom ops (the YAML `imports:` list)."""
    importlib.import_module(module)


def ops(family: str | None = None) -> list[dict[str, Any]]:
    """The op catalogue: name, family, backends, targets, doc and parameters of every op."""
    return [
        {"name": s.name, "family": s.family, "backends": list(s.backends), "targets": sorted(s.targets),
         "doc": s.doc.split("\n\n")[0], "params": s.params_info(), "aliases": list(s.aliases)}
        for s in specs() if family is None or s.family == family
    ]


__all__ = ["OpSpec", "UnknownOpError", "register", "add", "get", "suggest", "names", "specs", "ops",
           "import_plugin", "ValidationError"]
