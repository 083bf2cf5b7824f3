"""Bring an albumentations pipeline to augflow, keep it as YAML, or write a new one in Python.

    python examples/migrate_albumentations.py
"""

import albumentations as A
import numpy as np
from skimage import data

import augflow

# The pipeline you already have: YOLO-style detection training on COCO boxes.
compose = A.Compose([
    A.LongestMaxSize(max_size=256),
    A.PadIfNeeded(256, 256, border_mode=0, fill=114),
    A.Affine(scale=(0.75, 1.25), translate_percent=(-0.1, 0.1), border_mode=0, fill=114, p=0.5),
    A.HorizontalFlip(p=0.5),
    A.OneOf([A.Blur(blur_limit=3), A.MedianBlur(blur_limit=3)], p=0.1),
    A.HueSaturationValue(10, 30, 20, p=0.3),
], bbox_params=A.BboxParams(format="coco", label_fields=["labels"]))

pipe = augflow.Pipeline.from_albumentations(compose, name="detection_from_albumentations")
print(pipe.to_yaml())                         # keep this file: augflow.Pipeline.from_yaml reads it back

image = data.astronaut()
sample = {"image": image, "bboxes": [[120, 40, 210, 260], [20, 350, 180, 150]], "labels": [1, 2]}
out = pipe(sample, index=0)                   # seeded by (pipeline seed, epoch, index): any worker, same result
print("applied:", [e.op for e in out.provenance])
again = pipe.replay(sample, out.provenance)
print("replay is bit-identical:", np.array_equal(out["image"], again["image"])
      and np.array_equal(out["bboxes"], again["bboxes"]))

# Every op has an albumentations counterpart, so the way back exists too.
print("back to albumentations:", [type(t).__name__ for t in pipe.to_albumentations().transforms])

# A new pipeline in Python: the same checks as YAML, errors that name the call.
op = augflow.op
train = augflow.Pipeline.build(
    sample=[op.random_resized_crop(size=(224, 224), scale=(0.08, 1.0)), op.horizontal_flip(p=0.5),
            op.one_of([op.color_jitter(brightness=0.4, contrast=0.4), op.to_gray(p=1.0)], p=0.8)],
    batch=[op.mixup(alpha=0.2)], name="imagenet_train_py", seed=1)
assert augflow.Pipeline.from_yaml_text(train.to_yaml()).to_yaml() == train.to_yaml()
try:
    op.random_resized_crop(size=(224, 224), scale=(0.08, 1.5))
except augflow.op.OpCallError as exc:
    print("caught:", exc)
