"""The HistAug vocabulary: tokens read from a pipeline's ops and the provenance of its draws."""

import math

import numpy as np
import pytest

import augflow
from augflow.latent.vocab import Vocabulary, VocabularyError
from augflow.sample import Provenance, ProvenanceEntry

PIPELINE = {"augflow": 1, "sample": [
    {"horizontal_flip": {"p": 0.5}},
    {"random_rotate90": {}},
    {"color_jitter": {"p": 0.7}},
    {"gaussian_blur": {"p": 0.5}},
]}


@pytest.fixture(scope="module")
def drawn(astronaut):
    pipe = augflow.Pipeline.from_dict(PIPELINE)
    provs = [pipe({"image": astronaut[:48, :48]}, index=i).provenance for i in range(60)]
    return pipe, provs, Vocabulary.build(pipe, provs)


def leaf(vocab, op, name):
    hits = [lf for lf in vocab.leaves if vocab.steps[lf.step]["op"] == op and lf.name == name]
    assert len(hits) == 1, [(vocab.steps[lf.step]["op"], lf.name) for lf in vocab.leaves]
    return hits[0]


def test_every_op_is_a_step_with_an_applied_token(drawn):
    _, _, vocab = drawn
    assert [s["op"] for s in vocab.steps] == ["horizontal_flip", "random_rotate90", "color_jitter", "gaussian_blur"]
    for i in range(4):
        applied = [lf for lf in vocab.leaves if lf.step == i and lf.name == "applied"]
        assert len(applied) == 1 and applied[0].kind == "discrete" and applied[0].source == "control"


def test_schema_types_decide_where_a_field_has_the_leaf_name(drawn):
    _, _, vocab = drawn
    brightness = leaf(vocab, "color_jitter", "brightness")
    assert (brightness.kind, brightness.source) == ("continuous", "schema")


def test_observed_values_decide_otherwise(drawn):
    _, _, vocab = drawn
    factor = leaf(vocab, "random_rotate90", "factor")
    assert factor.kind == "discrete" and sorted(factor.values) == [0, 1, 2, 3]
    order0 = leaf(vocab, "color_jitter", "order[0]")          # a fixed-length list: one token per element
    assert order0.kind == "discrete"
    size = leaf(vocab, "gaussian_blur", "kernel#size")         # a variable-length kernel: summary tokens
    assert size.kind == "discrete"


def test_constant_and_seed_leaves_are_dropped(drawn):
    pipe, provs, vocab = drawn
    names = {lf.name for lf in vocab.leaves}
    assert not any(n.startswith("shape") for n in names)     # the image shape never varies here
    seeded = [Provenance([ProvenanceEntry("horizontal_flip", "sample[0]", {"seed": s})]) for s in (1, 2, 3)]
    again = Vocabulary.build(pipe, list(provs) + seeded)
    assert not any(lf.key == "seed" for lf in again.leaves)
    assert any("sample[0].seed" in note for note in again.ignored)


def test_encode_marks_skipped_ops_absent_and_records_the_order(drawn):
    pipe, provs, vocab = drawn
    prov = next(p for p in provs if "horizontal_flip" not in p.ops() and "color_jitter" in p.ops())
    codes, order = vocab.encode(prov)
    flip, jitter = 0, 2
    assert order[flip] == vocab.n_steps                       # skipped: the tail position
    assert order[jitter] == prov.ops().index("color_jitter")
    assert codes[vocab.leaves.index(leaf(vocab, "horizontal_flip", "applied"))] == 0
    assert codes[vocab.leaves.index(leaf(vocab, "color_jitter", "applied"))] == 1
    idle = next(p for p in provs if "color_jitter" not in p.ops())
    assert math.isnan(vocab.encode(idle)[0][vocab.leaves.index(leaf(vocab, "color_jitter", "brightness"))])


def test_decode_gives_back_the_sampled_values(drawn):
    _, provs, vocab = drawn
    prov = next(p for p in provs if "color_jitter" in p.ops())
    entry = next(e for e in prov if e.op == "color_jitter")
    decoded = vocab.decode(*vocab.encode(prov))
    assert decoded[entry.path]["brightness"] == pytest.approx(entry.params["brightness"], rel=1e-5)
    rot = next(e for e in prov if e.op == "random_rotate90")
    assert decoded[rot.path]["factor"] == rot.params["factor"]


def test_round_trip_through_json(drawn):
    _, provs, vocab = drawn
    again = Vocabulary.from_dict(vocab.to_dict())
    np.testing.assert_array_equal(again.encode(provs[3])[0], vocab.encode(provs[3])[0])


def test_provenance_of_another_pipeline_is_refused(drawn, astronaut):
    _, _, vocab = drawn
    other = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"vertical_flip": {"p": 1.0}}] * 6})
    prov = other({"image": astronaut}, seed=0).provenance
    with pytest.raises(VocabularyError, match="same pipeline"):
        vocab.encode(prov)


def test_multi_view_pipelines_are_refused(astronaut):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"horizontal_flip": {}}, {"views": 2}]})
    with pytest.raises(VocabularyError, match="views"):
        Vocabulary.build(pipe, [])
