"""`augflow ops`: the catalogue, one op's parameters, and JSON Schemas, from the registry."""

import json

import augflow
from cli_helpers import run_cli


def test_catalogue_lists_every_registered_op():
    proc = run_cli("ops", check=True)
    lines = proc.stdout.splitlines()
    assert lines[1].split("\t") == ["op", "family", "backends", "targets", "summary"]
    names = {line.split("\t")[0].split(" ")[0] for line in lines[2:]}
    assert names == {row["name"] for row in augflow.list_ops()}


def test_one_op_shows_parameters_with_types_defaults_and_ranges():
    proc = run_cli("ops", "random_resized_crop", check=True)
    assert proc.stdout.startswith("albumentations.RandomResizedCrop")
    rows = {line.split("\t")[0]: line.split("\t") for line in proc.stdout.splitlines() if "\t" in line}
    assert rows["scale"][2] == "[0.08, 1.0]"          # default
    assert rows["p"][1] == "float"


def test_json_schema_of_the_format_and_of_one_op():
    schema = json.loads(run_cli("ops", "--json-schema", check=True).stdout)
    assert schema == json.loads(json.dumps(augflow.json_schema(), default=str))
    one = json.loads(run_cli("ops", "horizontal_flip", "--json-schema", check=True).stdout)
    assert one["additionalProperties"] is False and "p" in one["properties"]


def test_unknown_op_suggests_the_closest_name():
    proc = run_cli("ops", "horizontal_flp")
    assert proc.returncode == 1
    assert "did you mean 'horizontal_flip'" in proc.stderr
