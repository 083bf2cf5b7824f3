"""The package's outer shape: a light `import augflow`, lazy names, one family of errors."""

import json
import subprocess
import sys

import pytest

import augflow

HEAVY = ("torch", "cv2", "albumentations", "kornia", "diffusers", "transformers", "scipy", "PIL")


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def test_import_augflow_loads_no_heavy_library():
    loaded = json.loads(_run(
        f"import sys, json, augflow; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"))
    assert loaded == []


def test_exported_errors_load_no_heavy_library():
    # every error class is reachable from the root without pulling in torch, OpenCV or albumentations
    loaded = json.loads(_run(
        "import sys, json, augflow\n"
        "[getattr(augflow, name) for name in augflow.ERRORS]\n"
        "print(json.dumps([m for m in ('torch', 'cv2', 'albumentations', 'kornia', 'diffusers') if m in sys.modules]))"))
    assert loaded == []


def test_op_lookup_after_plain_import_loads_the_families():
    # nothing registers at import time; the first lookup imports the families in augflow/_builtins.py
    out = _run("import augflow, augflow.registry as r\n"
               "print(r.get('horizontal_flip').name, r.get('mixup').family)")
    assert out.split() == ["albumentations.HorizontalFlip", "batch"]


def test_lookup_loads_families_only_up_to_the_one_that_has_the_op():
    out = _run("import sys, augflow.registry as r\n"
               "r.get('to_tensor')\n"
               "print('augflow.ops.tensor' in sys.modules, 'augflow.ops.batch.mixing' in sys.modules)")
    assert out.split() == ["True", "False"]


def test_an_ops_own_name_beats_an_earlier_familys_alias():
    # albumentations' Mosaic has the alias `mosaic`, augflow's batch op is named `mosaic`: the name wins
    # even though the albumentations family loads first
    out = _run("import augflow.registry as r\n"
               "print(r.get('mosaic').family, r.get('horizontal_flip').name)")
    assert out.split() == ["batch", "albumentations.HorizontalFlip"]


def test_unknown_op_suggests_names_from_every_family():
    with pytest.raises(augflow.UnknownOpError, match="mixup"):
        augflow.registry.get("mixupp")


def test_list_ops_is_the_catalogue_and_ops_call_is_deprecated():
    rows = augflow.list_ops()
    assert {r["name"] for r in rows} == set(augflow.registry.names())
    assert {r["family"] for r in augflow.list_ops("batch")} == {"batch"}
    with pytest.warns(DeprecationWarning, match="list_ops"):
        old = augflow.ops()
    assert old == rows


@pytest.mark.parametrize("name", augflow.ERRORS)
def test_every_exported_error_is_an_augflow_error(name):
    cls = getattr(augflow, name)
    assert issubclass(cls, augflow.AugflowError)
    assert name in augflow.__all__


def test_errors_keep_their_builtin_bases():
    # existing `except ValueError` / `except KeyError` clauses keep working
    assert issubclass(augflow.PipelineConfigError, ValueError)
    assert issubclass(augflow.UnknownOpError, KeyError)
    assert issubclass(augflow.MissingImageError, FileNotFoundError)
    assert issubclass(augflow.MaterializeError, RuntimeError)


def test_one_except_catches_a_config_error():
    with pytest.raises(augflow.AugflowError, match="unknown op"):
        augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"no_such_op": {}}]})


def test_every_error_class_in_the_package_is_exported():
    # a new error class defined anywhere in augflow must be added to augflow.ERRORS
    import ast
    import pathlib

    root = pathlib.Path(augflow.__file__).parent
    defined = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and any(
                    ast.unparse(b).endswith(("Error", "Exception")) for b in node.bases):
                defined.add(node.name)
    assert defined <= set(augflow.ERRORS)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        augflow.no_such_thing
