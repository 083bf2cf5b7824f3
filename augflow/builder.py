"""The Python builder that mirrors the YAML: `augflow.op.<name>(**params)` and `Pipeline.build`.

    pipe = augflow.Pipeline.build(
        sample=[augflow.op.random_resized_crop(size=(224, 224)), augflow.op.horizontal_flip(p=0.5)],
        batch=[augflow.op.mixup(alpha=0.2)])
    pipe.to_yaml()            # the same file a user would have written

An `OpCall` is one YAML item (`{name: params}`), checked when it is written: its parameters go
through the same validation as a YAML file, and an error names the Python call
(`augflow.op.random_resized_crop(scale=[0.08, 1.5]): ...`). Control flow is `augflow.op.one_of`,
`some_of` and `sequential`. `augflow/op.pyi` (written by `python -m augflow.builder`) gives editors
each op's keyword arguments and types, from the op schemas.
"""

from __future__ import annotations

from augflow.errors import OpCallError
import keyword
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from augflow.config.errors import PipelineConfigError

CONTROL = ("one_of", "some_of", "sequential", "views")



@dataclass(frozen=True)
class OpCall:
    """One pipeline item written in Python: an op (or control step) name and its parameters."""

    name: str
    params: Mapping[str, Any]

    def to_item(self) -> dict[str, Any]:
        """The YAML item: `{name: params}`, control steps with their `ops` as items too."""
        if self.name == "views":   # the `- views: k` split point
            return {"views": self.params["k"]}
        return {self.name: _plain(self.params)}

    def __repr__(self) -> str:
        return _call_text(self.name, self.params)


def _plain(value: Any) -> Any:
    """YAML-safe values: tuples become lists, OpCalls their items."""
    if isinstance(value, OpCall):
        return value.to_item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):   # numpy scalars
        return value.item()
    return value


def _call_text(name: str, params: Mapping[str, Any], only: str | None = None) -> str:
    shown = {only: params[only]} if only is not None and only in params else params
    args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
    if only is not None and only not in params:
        args = f"{only}=..."
    return f"augflow.op.{name}({args})"


def op_call(name: str, params: Mapping[str, Any]) -> OpCall:
    """Check one op's parameters as a YAML file would be checked; errors name the Python call."""
    from augflow.config.build import build_spec

    item = {name: _plain(dict(params))}
    try:
        build_spec({"augflow": 1, "sample": [item]}, f"<augflow.op.{name}>")
    except PipelineConfigError as exc:
        lines = []
        for issue in exc.issues:   # an op inside a control step is named itself
            own = not issue.op or issue.op == name
            call = _call_text(name if own else issue.op, params if own else {}, issue.param)
            lines.append(f"{call}: {issue.message}")
        raise OpCallError("\n".join(lines)) from None
    return OpCall(name, dict(params))


def control(kind: str, ops: Iterable[OpCall], **params: Any) -> OpCall:
    """`one_of`, `some_of` or `sequential` over OpCalls (checked together with them)."""
    ops = list(ops)
    bad = [o for o in ops if not isinstance(o, OpCall)]
    if bad:
        raise OpCallError(f"augflow.op.{kind}(ops=[...]): every item must be an augflow.op.<name>(...) call, "
                          f"got {type(bad[0]).__name__}")
    return op_call(kind, {"ops": ops, **params})


def views_item(k: int) -> OpCall:
    """The `- views: k` item: ops before it in `sample` run once, ops after it once per view."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise OpCallError(f"augflow.op.views({k!r}): the number of views must be a positive integer")
    return OpCall("views", {"k": k})


def pipeline_data(sample: Iterable[OpCall] = (), batch: Iterable[OpCall] | Mapping[str, Any] | None = None, *,
                  views: Mapping[str, Iterable[OpCall]] | None = None, offline: Iterable[OpCall] | None = None,
                  negatives: Iterable[OpCall] | None = None, fields: Mapping[str, Any] | None = None,
                  name: str = "pipeline", description: str | None = None, seed: int = 0,
                  imports: Iterable[str] | None = None, decode: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The pipeline dict the keyword arguments describe, in the YAML file's key order."""
    data: dict[str, Any] = {"augflow": 1, "name": name}
    if description:
        data["description"] = description
    data["seed"] = int(seed)
    if imports:
        data["imports"] = list(imports)
    if fields:
        data["fields"] = _plain(dict(fields))
    if decode:
        data["decode"] = _plain(dict(decode))
    data["sample"] = _items(sample, "sample")
    if views is not None and not isinstance(views, Mapping):
        raise OpCallError(f"Pipeline.build(views={views!r}): views takes a mapping of view names to op lists; "
                          "for k views of the same ops put augflow.op.views(k) in sample, before the per-view ops")
    if views is not None:
        data["views"] = {k: _items(v, f"views[{k!r}]") for k, v in views.items()}
    if batch is not None:
        if isinstance(batch, Mapping):
            data["batch"] = {k: (_items(v, "batch") if k == "ops" else v) for k, v in batch.items()}
        else:
            data["batch"] = {"ops": _items(batch, "batch")}
    if offline is not None:
        data["offline"] = _items(offline, "offline")
    if negatives is not None:
        data["negatives"] = _items(negatives, "negatives")
    return data


def _items(ops: Iterable[OpCall], where: str) -> list[dict[str, Any]]:
    out = []
    for i, o in enumerate(ops):
        if not isinstance(o, OpCall):
            raise OpCallError(f"Pipeline.build({where}=[...]): item {i} must be an augflow.op.<name>(...) call, "
                              f"got {o!r}")
        out.append(o.to_item())
    return out


# ---- the editor stub (augflow/op.pyi) ---------------------------------------------------------
def op_stub() -> str:
    """Python stub text: one typed function per op name that is a Python identifier."""
    from augflow import registry

    lines = ['"""Generated by `python -m augflow.builder` from the op schemas; do not edit."""',
             "from typing import Any, Literal, Sequence", "", "from augflow.builder import OpCall", "",
             "def one_of(ops: Sequence[OpCall], *, p: float = 1.0, weights: Sequence[float] | None = None) "
             "-> OpCall: ...",
             "def some_of(ops: Sequence[OpCall], *, n: int | Sequence[int] = 1, replace: bool = False, "
             "p: float = 1.0) -> OpCall: ...",
             "def sequential(ops: Sequence[OpCall], *, p: float = 1.0) -> OpCall: ...",
             "def views(k: int) -> OpCall: ...",
             "def __getattr__(name: str) -> Any: ...", ""]
    for spec in registry.specs():
        for name in (spec.name, *spec.aliases):
            if not name.isidentifier() or keyword.iskeyword(name) or name in CONTROL:
                continue
            if name != spec.name and registry.get(name) is not spec:
                continue
            named = spec.extra.get("named_constants", {})
            args = []
            for p in spec.params_info():
                if not p["name"].isidentifier() or keyword.iskeyword(p["name"]):
                    continue
                tp = _stub_type(spec.schema.model_fields[p["name"]].annotation)
                if named.get(p["name"]) and tp != "Any":   # e.g. border_mode: "reflect" as well as its code
                    tp = "Literal[" + ", ".join(repr(str(c)) for c in named[p["name"]]) + "] | " + tp
                args.append(f"{p['name']}: {tp}" + ("" if p["required"] else " = ..."))
            doc = spec.doc.split("\n\n")[0].replace('"""', "'''").replace("\\", "\\\\").strip()
            sig = ", ".join(["*", *args]) if args else ""
            lines.append(f"def {name}({sig}) -> OpCall:\n    \"\"\"{doc}\"\"\"")
    return "\n".join(lines) + "\n"


_SIMPLE = {int: "int", float: "float", str: "str", bool: "bool", type(None): "None"}


def _stub_type(tp: Any) -> str:
    """A stub annotation for a schema type; anything it cannot spell is `Any`."""
    if tp in _SIMPLE:
        return _SIMPLE[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(a) for a in args) + "]" if all(
            isinstance(a, (int, str, float, bool)) for a in args) else "Any"
    if origin is typing.Annotated:
        return _stub_type(args[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(dict.fromkeys(_stub_type(a) for a in args))
    if origin in (list, tuple, typing.Sequence, __import__("collections.abc").abc.Sequence):
        inner = [a for a in args if a is not Ellipsis]
        return f"Sequence[{_stub_type(inner[0]) if inner and len(set(map(str, inner))) == 1 else 'Any'}]"
    return "Any"


def write_stub(path: str | Path | None = None) -> Path:
    path = Path(path) if path is not None else Path(__file__).with_name("op.pyi")
    path.write_text(op_stub(), encoding="utf-8")
    return path


if __name__ == "__main__":   # python -m augflow.builder: regenerate augflow/op.pyi
    print(write_stub())


__all__ = ["OpCall", "OpCallError", "op_call", "control", "views_item", "pipeline_data", "op_stub", "write_stub"]
