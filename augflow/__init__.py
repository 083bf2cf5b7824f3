"""augflow: declarative, fast, reproducible data augmentation for PyTorch data loading.

    pipe = augflow.Pipeline.from_yaml("pipelines/imagenet_train.yaml")
    out = pipe({"image": img, "label": 3}, seed=1234)
    out.provenance                     # the ops and sampled params actually applied
    pipe.replay(sample, out.provenance)   # bit-identical
"""

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augflow.config.errors import PipelineConfigError, SampleError  # noqa: E402
from augflow.ops.base import Op, Schema  # noqa: E402
from augflow.pipeline import Pipeline  # noqa: E402
from augflow import ops  # noqa: E402  (callable package: augflow.ops() lists every op)
from augflow.registry import UnknownOpError, register  # noqa: E402
from augflow.sample import FieldSpec, Provenance, ProvenanceEntry, Sample  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name: str):
    # Heavier entry points load on first use, so `import augflow` stays light.
    if name == "TTA":
        from augflow.tta import TTA

        return TTA
    if name == "op":   # augflow.op.<name>(...): the Python builder, made lazily
        import augflow.op as op

        return op
    raise AttributeError(f"module 'augflow' has no attribute {name!r}")


def json_schema() -> dict:
    """JSON Schema of the pipeline format, generated from the op registry (for editors)."""
    from augflow.config.jsonschema import pipeline_json_schema

    return pipeline_json_schema()


__all__ = ["TTA", "Pipeline", "Sample", "Provenance", "ProvenanceEntry", "FieldSpec", "Op", "Schema", "register", "ops",
           "json_schema", "PipelineConfigError", "SampleError", "UnknownOpError", "__version__"]
