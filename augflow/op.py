"""`augflow.op.<name>(**params)`: one pipeline item written in Python, checked as it is written.

    augflow.op.random_resized_crop(size=(224, 224))          # an op, by name or alias
    augflow.op.albumentations.RandomResizedCrop(size=(224, 224))
    augflow.op.one_of([augflow.op.blur(), augflow.op.gauss_noise()], p=0.3)
    augflow.op.views(2)                                      # ops after it run once per view

Builders are made on first access from the op registry (nothing is imported before), so
`import augflow` stays light. Editors complete names and keyword arguments from `op.pyi`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from augflow.builder import OpCall, OpCallError, control, op_call, views_item


def one_of(ops: Iterable[OpCall], **params: Any) -> OpCall:
    """Apply one of `ops` (chosen by `weights`, uniformly by default), with probability `p`."""
    return control("one_of", ops, **params)


def some_of(ops: Iterable[OpCall], **params: Any) -> OpCall:
    """Apply `n` of `ops` (or a number drawn from [low, high]), in the order drawn."""
    return control("some_of", ops, **params)


def sequential(ops: Iterable[OpCall], **params: Any) -> OpCall:
    """Apply all of `ops` in order, together, with probability `p`."""
    return control("sequential", ops, **params)


def views(k: int) -> OpCall:
    """The `- views: k` item in `sample`: ops before it run once, ops after it once per view."""
    return views_item(k)


class _Namespace:
    """`augflow.op.albumentations.X`: op names with a dot, reached attribute by attribute."""

    def __init__(self, prefix: str):
        self._prefix = prefix

    def __getattr__(self, name: str) -> Callable[..., OpCall]:
        if name.startswith("__"):
            raise AttributeError(name)
        return _builder(f"{self._prefix}.{name}")

    def __repr__(self) -> str:
        return f"<augflow.op.{self._prefix}>"


def _builder(name: str) -> Callable[..., OpCall]:
    from augflow import registry

    try:
        spec = registry.get(name)
    except registry.UnknownOpError as exc:
        if any(n.startswith(name + ".") for n in registry.names()):
            return _Namespace(name)  # type: ignore[return-value]
        raise AttributeError(f"augflow.op.{name}: {exc}") from None

    def build(**params: Any) -> OpCall:
        return op_call(name, params)

    build.__name__ = build.__qualname__ = name.rsplit(".", 1)[-1]
    build.__doc__ = spec.doc
    return build


def __getattr__(name: str) -> Callable[..., OpCall]:
    if name.startswith("__"):
        raise AttributeError(name)
    fn = _builder(name)
    globals()[name] = fn   # made once
    return fn


__all__ = ["one_of", "some_of", "sequential", "views", "OpCall", "OpCallError"]
