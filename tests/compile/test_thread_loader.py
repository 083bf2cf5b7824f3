"""The thread executor: the same batches as worker processes, from threads."""

from __future__ import annotations

import pytest
import torch

import augflow

PIPE = {"augflow": 1, "name": "threads", "seed": 3, "sample": [
    {"random_resized_crop": {"size": [48, 48]}}, {"horizontal_flip": {}},
    {"color_jitter": {"brightness": 0.3, "p": 0.5}}, {"normalize": {}}, {"to_tensor": {}}]}


def test_threads_give_the_batches_of_the_in_process_loader(jpeg_paths):
    pipe = augflow.Pipeline.from_dict(PIPE)
    ref = pipe.compile(jpeg_paths, batch_size=5, shuffle=True)
    threaded = pipe.compile(jpeg_paths, batch_size=5, shuffle=True, num_workers=3, executor="threads")
    for epoch in (0, 1):
        ref.set_epoch(epoch)
        threaded.set_epoch(epoch)
        a, b = list(ref), list(threaded)
        assert len(a) == len(b) == len(threaded) == 3
        for x, y in zip(a, b):
            assert torch.equal(x["_index"], y["_index"])
            torch.testing.assert_close(x["image"], y["image"], atol=0, rtol=0)
    threaded.close()
    assert "loader threads" in threaded.explain()


def test_unknown_executor_is_an_error_naming_the_choices(jpeg_paths):
    with pytest.raises(ValueError, match="processes, threads"):
        augflow.Pipeline.from_dict(PIPE).compile(jpeg_paths, executor="fibres")


# ---- executor="auto" (augflow/compile/passes/executor.py) -------------------------------------------

def _plan(spec=PIPE, **options):
    from augflow.compile import make_plan
    return make_plan(augflow.Pipeline.from_dict(spec), **options)


def test_auto_is_the_default_and_chooses_threads_for_opencv_ops_with_workers(jpeg_paths):
    from augflow.compile.backends.threads import ThreadLoader

    loader = augflow.Pipeline.from_dict(PIPE).compile(jpeg_paths, batch_size=5, num_workers=2)
    assert isinstance(loader, ThreadLoader) and loader.plan.options.executor == "threads"
    text = loader.explain()
    assert "executor: threads (2 threads) — auto: every sample op runs albumentations/OpenCV kernels" in text
    assert "bench/RESULTS.md, Issue 12" in text
    assert len(list(loader)) == 3
    loader.close()


def test_auto_without_workers_runs_in_this_process(jpeg_paths):
    from augflow.compile.backends.threads import ThreadLoader

    loader = augflow.Pipeline.from_dict(PIPE).compile(jpeg_paths, batch_size=5)
    assert not isinstance(loader, ThreadLoader) and loader.plan.options.executor == "processes"
    assert "executor: processes (this process) — auto: num_workers=0" in loader.explain()


@pytest.mark.parametrize("option", [{"persistent_workers": True}, {"multiprocessing_context": "spawn"}])
def test_auto_keeps_processes_when_worker_process_options_are_given(option):
    plan = _plan(num_workers=2, **option)
    assert plan.options.executor == "processes"
    assert f"auto: {next(iter(option))} given" in plan.executor_reason


def test_auto_keeps_processes_for_an_op_that_may_hold_the_gil():
    spec = dict(PIPE, sample=[{"rand_augment": {}}, *PIPE["sample"]])
    plan = _plan(spec, num_workers=2)
    assert plan.options.executor == "processes"
    assert "op 'rand_augment' may hold the GIL" in plan.executor_reason
    from augflow.compile.explainer import explain_plan
    assert "executor: processes (2 worker processes) — auto: op 'rand_augment'" in explain_plan(plan)


def test_auto_looks_at_view_ops_too():
    spec = {"augflow": 1, "name": "views", "seed": 0, "sample": [{"horizontal_flip": {}}],
            "views": {"a": [{"rand_augment": {}}], "b": [{"to_tensor": {}}]}}
    assert _plan(spec, num_workers=2).options.executor == "processes"


def test_an_explicit_executor_is_kept_and_said_to_be_requested():
    spec = dict(PIPE, sample=[{"rand_augment": {}}, *PIPE["sample"]])
    plan = _plan(spec, num_workers=2, executor="threads")
    assert plan.options.executor == "threads" and plan.executor_reason == "requested"
    assert _plan(num_workers=2, executor="processes").options.executor == "processes"


def test_auto_threads_give_the_views_of_the_in_process_loader(jpeg_paths):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "seed": 5, "sample": [
        {"views": 2}, {"random_resized_crop": {"size": [32, 32]}}, {"horizontal_flip": {}}]})
    ref = pipe.compile(jpeg_paths, batch_size=4)
    auto = pipe.compile(jpeg_paths, batch_size=4, num_workers=2)
    assert auto.plan.options.executor == "threads"
    for x, y in zip(ref, auto, strict=True):
        for view in ("view0", "view1"):
            torch.testing.assert_close(x[view]["image"], y[view]["image"], atol=0, rtol=0)
    auto.close()
