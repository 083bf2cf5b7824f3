"""The package's import graph, read statically with `ast`: layers only look down, no import loops.

Layers (STYLE.md): the core (sample, seeding, registry, the Op shape) at the bottom, then steps and
config, the pipeline, op families, the model families, io, compile, tta/train, and the CLI on top.
A module may import its own layer or lower ones. Function-level imports are checked too (they run
later, but they are still arrows), reported apart from top-level ones.
"""

from __future__ import annotations

import ast
import pathlib

import augflow

ROOT = pathlib.Path(augflow.__file__).parent

# Top-level part of augflow -> layer; lower numbers are lower layers.
LAYERS = {
    "errors": 0, "_builtins": 0, "sample": 0, "seeding": 0, "params_codec": 0, "registry": 0, "ops.base": 0,
    "op_backends": 0,        # which compile backend runs which op: the table the registry copies into OpSpec
    "steps": 1, "config": 1,
    "decision": 1, "builder": 1, "op": 1,     # policy decisions, the Python pipeline builder (other branches)
    "io.decode": 1,          # decode kernels (bytes/PIL -> arrays): the pipeline's input check uses them
    "pipeline": 2,
    "ops": 3, "text": 3,
    "generative": 4,
    "latent": 5, "io": 5,
    "negatives": 6,
    "compile": 7,
    "tta": 8, "train": 8, "adaptive": 8,
    "integrations": 9,
    "cli": 10, "__main__": 10,
}

# The compiler loop (pipeline.compile() -> compile/ -> pipeline) is the subject of the fast-path
# issue; it is the one loop allowed. Pipeline's facade methods that hand off to a higher layer
# (compile(), hf_transform(), to_ray_map(), from_/to_albumentations()) are the upward arrows allowed: each is a function-level
# import inside one method, so a user finds the entry point on the object they hold.
COMPILER_LOOP = {"augflow.pipeline"}
FACADE_TARGETS = ("augflow.compile", "augflow.integrations", "augflow.ops.adapters.albumentations_compose")


def _allowed_upward(module: str, target: str) -> bool:
    return module in COMPILER_LOOP and target.startswith(FACADE_TARGETS)


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = ["augflow", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: pathlib.Path) -> list[tuple[str, bool]]:
    """(imported augflow module, imported inside a function) for every import in `module`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, bool]] = []

    def targets(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        names = []
        for alias in node.names:
            full = f"{base}.{alias.name}"
            if full in MODULES:
                names.append(full)
            elif base == "augflow" and alias.name in augflow._LAZY:    # `from augflow import Pipeline`
                names.append(augflow._LAZY[alias.name])
            else:
                names.append(base)
        return names

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in targets(child):
                    resolved = _resolve(target) if target.startswith("augflow") else None
                    if resolved and resolved != module:
                        out.append((resolved, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer_key(module: str) -> str | None:
    parts = module.split(".")[1:]
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return key
    return None


def _cycles(function_level: bool) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    edges = {m: {t for t, lazy in GRAPH[m] if function_level or not lazy} for m in GRAPH}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    return found


def _outside_compiler(cycle: list[str]) -> bool:
    return any(not (m.startswith(FACADE_TARGETS) or m in COMPILER_LOOP) for m in cycle)


def test_every_part_of_the_package_has_a_layer():
    unplaced = sorted(m for m in MODULES if m != "augflow" and _layer_key(m) is None)
    assert unplaced == [], f"add these to LAYERS in {__file__}: {unplaced}"


def test_no_import_loop_at_top_level():
    assert [c for c in _cycles(function_level=False) if _outside_compiler(c)] == []


def test_no_import_loop_counting_function_level_imports():
    assert [c for c in _cycles(function_level=True) if _outside_compiler(c)] == []


def _upward(function_level: bool) -> list[str]:
    bad = []
    for module, imports in GRAPH.items():
        if module == "augflow":      # the root only re-exports, lazily
            continue
        for target, lazy in imports:
            if lazy != function_level or target == "augflow":
                continue
            src, dst = _layer_key(module), _layer_key(target)
            if LAYERS[dst] > LAYERS[src] and not _allowed_upward(module, target):
                bad.append(f"{module} (layer {LAYERS[src]}) imports {target} (layer {LAYERS[dst]})")
    return sorted(set(bad))


def test_top_level_imports_only_look_down():
    assert _upward(function_level=False) == []


def test_function_level_imports_only_look_down():
    assert _upward(function_level=True) == []


def test_the_check_sees_a_real_upward_import():
    # guard against a graph builder that finds nothing: the compiler loop it allows is really there
    assert ("augflow.compile", True) in GRAPH["augflow.pipeline"]
    assert ("augflow.pipeline", True) in GRAPH["augflow.compile.sample_stage"]
    assert any(c for c in _cycles(function_level=True) if "augflow.pipeline" in c)
