"""The training loop of docs/adaptive.md runs as written (on a small dataset instead of data/train)."""

import re
from pathlib import Path

import numpy as np
import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "adaptive.md"


def test_docs_training_loop_runs_and_feeds_the_policy(astronaut, chelsea):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    records = [{"image": img, "label": k % 2} for k, img in enumerate([astronaut, chelsea] * 4)]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    env = {"model": model, "opt": opt, "epochs": 2, "records": records}
    exec(compile(code.replace('"data/train"', "records").replace("num_workers=2", "num_workers=0")
                 .replace("batch_size=64", "batch_size=4"), str(DOC), "exec"), env)
    policy = env["loader"].policy
    assert policy.has_feedback and len(policy.pending) == 8   # epoch 1 feedback, queued for epoch 2
    assert len(policy.ema) == 8 and policy.reference is not None       # epoch 0's, folded when epoch 1 began
    assert not np.isnan(list(policy.ema.values())).any()
