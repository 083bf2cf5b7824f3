"""augflow: declarative, fast, reproducible data augmentation for PyTorch data loading.

    pipe = augflow.Pipeline.from_yaml("pipelines/imagenet_train.yaml")
    out = pipe({"image": img, "label": 3}, seed=1234)
    out.provenance                     # the ops and sampled params actually applied
    pipe.replay(sample, out.provenance)   # bit-identical

`import augflow` loads nothing heavy: every name below is imported on first use (module
`__getattr__`), and op families register the first time an op is looked up.
"""

import importlib
import importlib.util
import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augflow.errors import AugflowError  # noqa: E402

__version__ = "0.1.0"

# Public name -> module that defines it; imported on first access.
_LAZY = {
    "Pipeline": "augflow.pipeline",
    "Sample": "augflow.sample", "Provenance": "augflow.sample", "ProvenanceEntry": "augflow.sample",
    "FieldSpec": "augflow.sample",
    "Op": "augflow.ops.base", "Schema": "augflow.ops.base",
    "register": "augflow.registry",
    "TTA": "augflow.tta",
    # errors: every one subclasses AugflowError
    "PipelineConfigError": "augflow.config.errors", "SampleError": "augflow.config.errors",
    "UnknownOpError": "augflow.registry",
    "BackendError": "augflow.compile.backends",
    "SourceError": "augflow.io.sources", "ReaderError": "augflow.io.readers",
    "MissingImageError": "augflow.io.decode", "ImageDecodeError": "augflow.io.decode",
    "UnsafePathError": "augflow.io.writers", "MaterializeError": "augflow.io.materialize",
    "LoaderFormatError": "augflow.io.loader_shards",
    "ModelError": "augflow.generative.models", "VocabularyError": "augflow.latent.vocab",
    "BadSampleError": "augflow.errors", "OpCallError": "augflow.errors",
    "AlbumentationsConversionError": "augflow.errors",
}

ERRORS = ("AugflowError", "PipelineConfigError", "SampleError", "UnknownOpError", "BackendError", "SourceError",
          "ReaderError", "MissingImageError", "ImageDecodeError", "UnsafePathError", "MaterializeError",
          "ModelError", "VocabularyError", "BadSampleError", "OpCallError", "AlbumentationsConversionError",
          "LoaderFormatError")


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")   # a subpackage, e.g. augflow.ops, augflow.compile
    raise AttributeError(f"module 'augflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def list_ops(family: str | None = None) -> list[dict]:
    """The op catalogue: name, family, backends, targets, doc and parameters of every op."""
    from augflow.registry import ops

    return ops(family)


def json_schema() -> dict:
    """JSON Schema of the pipeline format, generated from the op registry (for editors)."""
    from augflow.config.jsonschema import pipeline_json_schema

    return pipeline_json_schema()


__all__ = ["TTA", "Pipeline", "Sample", "Provenance", "ProvenanceEntry", "FieldSpec", "Op", "Schema", "register",
           "list_ops", "json_schema", *ERRORS, "__version__"]
