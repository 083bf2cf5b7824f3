"""`augflow ops [NAME] [--json-schema]`: the op catalogue, one op's parameters, or JSON Schemas."""

from __future__ import annotations

import json
import re
from typing import Annotated, Optional

import typer

from augflow.cli.console import fail, print_table


def ops(
    name: Annotated[Optional[str], typer.Argument(help="An op name (or alias) to describe in full.")] = None,
    json_schema: Annotated[bool, typer.Option("--json-schema", help=(
        "Print a JSON Schema: of the whole pipeline format (for editors), or of NAME's parameters."))] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue (or NAME) as JSON.")] = False,
    family: Annotated[Optional[str], typer.Option(help="Only ops of this family (e.g. albumentations.geometric).")] = None,
) -> None:
    """List the registered ops with their backends and targets, or describe one op's parameters."""
    import augflow
    from augflow import registry

    if json_schema:
        if name is None:
            schema = augflow.json_schema()
        else:
            from augflow.config.jsonschema import op_params_schema
            schema = _or_unknown(lambda: op_params_schema(name))
        typer.echo(json.dumps(schema, indent=2, default=str))
        return
    if name is not None:
        spec = _or_unknown(lambda: registry.get(name))
        info = next(row for row in registry.ops() if row["name"] == spec.name)
        if as_json:
            typer.echo(json.dumps(info, indent=2, default=str))
            return
        typer.echo(f"{spec.name}  (family {spec.family}; backends {', '.join(spec.backends)}; "
                   f"targets {', '.join(sorted(spec.targets))})")
        if spec.aliases:
            typer.echo(f"aliases: {', '.join(spec.aliases)}")
        if spec.doc:
            typer.echo("\n" + spec.doc.split("\n\n")[0].strip() + "\n")
        print_table(["parameter", "type", "default", "allowed", "description"],
                    [[p["name"], p["type"], "(required)" if p["required"] else json.dumps(p["default"], default=str),
                      _constraints(p["constraints"]), p["description"]] for p in spec.params_info()],
                    title=f"parameters of {spec.name}")
        return
    rows = augflow.list_ops(family or None)
    if not rows:
        raise fail(f"no ops in family {family!r}; families: "
                   f"{', '.join(sorted({s.family for s in registry.specs()}))}")
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    print_table(["op", "family", "backends", "targets", "summary"],
                [[r["name"] + (f" ({', '.join(r['aliases'])})" if r["aliases"] else ""), r["family"],
                  ",".join(r["backends"]), ",".join(r["targets"]), _first_line(r["doc"])] for r in rows],
                title=f"{len(rows)} ops (`augflow ops NAME` for parameters)")


_BOUNDS = {"Ge": ">=", "Gt": ">", "Le": "<=", "Lt": "<", "MinLen": "length >=", "MaxLen": "length <=",
           "MultipleOf": "multiple of"}


def _constraints(items: list[str]) -> str:
    """`Ge(ge=0.0)` -> `>= 0.0`; validator functions (no readable form) are left out."""
    out = []
    for text in items:
        match = re.fullmatch(r"(\w+)\(\w+=(.+)\)", text)
        if match and match.group(1) in _BOUNDS:
            out.append(f"{_BOUNDS[match.group(1)]} {match.group(2)}")
        elif "<function" not in text and "Validator(" not in text:
            out.append(text)
    return ", ".join(out)


def _first_line(doc: str) -> str:
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    return line if len(line) <= 90 else line[:87] + "..."


def _or_unknown(fn):
    from augflow.registry import UnknownOpError
    try:
        return fn()
    except UnknownOpError as exc:
        raise fail(str(exc)) from None
