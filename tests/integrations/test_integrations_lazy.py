"""`import augflow` loads no integration and none of the frameworks they wrap."""

import subprocess
import sys

CHECK = """
import sys
import augflow
pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"horizontal_flip": {}}]})
pipe.hf_transform(), pipe.to_ray_map()          # building the callables needs no framework either
print(sorted({m.split(".")[0] for m in sys.modules} & {"lightning", "pytorch_lightning", "ray", "datasets"}))
print(sorted(m for m in sys.modules if m == "augflow.integrations.lightning"))
"""


def test_import_augflow_loads_no_framework():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "[]"]
