"""The built-in op families, in lookup order: the one list the registry loads on first use.

Nothing is imported here; `registry` imports a family module the first time an op it does not
know yet is looked up (in this order, stopping at the family that has it), and all of them when
the catalogue is listed. That keeps `import augflow` free of torch, OpenCV and albumentations.
A new family module is added here and nowhere else.
"""

BUILTIN_FAMILIES = (
    "augflow.ops.adapters.albumentations",
    "augflow.ops.tensor",
    "augflow.ops.auto",
    "augflow.ops.random_field",
    "augflow.ops.corruptions",
    "augflow.latent.op",
    "augflow.generative.conditioning",
    "augflow.generative.mask_conditioned",
    "augflow.generative.day_to_night",
    "augflow.generative.night",
    "augflow.ops.batch.kernels",
    "augflow.ops.batch.mixing",
    "augflow.ops.batch.resizemix",
    "augflow.ops.batch.mosaic",
    "augflow.ops.batch.copy_paste",
    "augflow.negatives.noise",
    "augflow.negatives.text",
    "augflow.negatives.image",
)
