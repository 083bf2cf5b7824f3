"""HistAug: trained briefly on skimage photographs cut into patches, with a small CNN encoder.

One model is trained per module (a few seconds on one CPU thread) and shared by the tests.
"""

import numpy as np
import pytest
import torch
from skimage import data
from torch import nn

import augflow
from augflow.config.errors import PipelineConfigError, SampleError
from augflow.latent import HistAug, train_histaug
from augflow.train.histaug import encode, images_to_tensor

PIPELINE = """\
augflow: 1
name: histaug_patch
seed: 5
sample:
  - horizontal_flip: {p: 0.5}
  - random_rotate90: {}
  - random_brightness_contrast: {p: 0.8}
  - hue_saturation_value: {p: 0.5}
  - gaussian_blur: {p: 0.3}
"""
SIZE = 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny models on a shared 2-core machine: intra-op threads only add contention
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cut(img: np.ndarray, size: int = SIZE) -> list[np.ndarray]:
    h, w = img.shape[:2]
    return [np.ascontiguousarray(img[y:y + size, x:x + size]) for y in range(0, h - size + 1, size)
            for x in range(0, w - size + 1, size)]


@pytest.fixture(scope="module")
def patches() -> list[np.ndarray]:
    out = []
    for name in ("immunohistochemistry", "astronaut", "chelsea", "coffee"):
        out.extend(cut(getattr(data, name)()))
    return out


@pytest.fixture(scope="module")
def encoder() -> nn.Module:
    """A frozen random-weight CNN: embeddings that move with colour, blur and orientation."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return net.eval()


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("histaug") / "histaug_patch.yaml"
    path.write_text(PIPELINE)
    return str(path)


@pytest.fixture(scope="module")
def trained(patches, encoder, pipeline_yaml, tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("histaug_run")
    model = train_histaug(patches[::4], encoder, pipeline_yaml, epochs=12, device="cpu", views=4, chunks=8, depth=2,
                          heads=2, batch_size=128, lr=3e-3, checkpoint_dir=ckpt, progress=False)
    return model, ckpt


def held_out_pairs(patches, encoder, model, pipeline_yaml):
    """Patches the model never saw, augmented with seeds training never used, and their codes."""
    pipe = augflow.Pipeline.from_yaml(pipeline_yaml)
    images = patches[1::4]
    outs = [pipe({"image": p}, index=i, epoch=1000) for i, p in enumerate(images)]
    x = encode(encoder, images, images_to_tensor, 256, "cpu")
    y = encode(encoder, [o["image"] for o in outs], images_to_tensor, 256, "cpu")
    codes, order = zip(*(model.vocab.encode(o.provenance) for o in outs))
    return x, y, torch.as_tensor(np.stack(codes)), torch.as_tensor(np.stack(order))


def test_prediction_beats_identity_and_matched_noise_on_held_out_patches(trained, patches, encoder, pipeline_yaml):
    model, _ = trained
    x, y, codes, order = held_out_pairs(patches, encoder, model, pipeline_yaml)
    with torch.no_grad():
        pred = model(x, codes, order)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    noisy = x + nn.functional.normalize(noise, dim=1) * (y - x).norm(dim=1, keepdim=True)
    mse = {name: float(((g - y) ** 2).mean()) for name, g in (("histaug", pred), ("identity", x), ("noise", noisy))}
    cos = {name: float(nn.functional.cosine_similarity(g, y).mean())
           for name, g in (("histaug", pred), ("identity", x), ("noise", noisy))}
    assert mse["histaug"] < mse["identity"] < mse["noise"], mse
    assert cos["histaug"] > cos["identity"] > cos["noise"], cos


def test_validation_score_is_reported_per_epoch(trained):
    model, _ = trained
    assert [h["epoch"] for h in model.history] == list(range(1, 13))
    assert model.validation["mse"] < model.validation["identity_mse"]
    assert model.history[-1]["train_loss"] < model.history[0]["train_loss"]


def test_vocabulary_is_read_from_the_pipeline(trained):
    model, _ = trained
    steps = [s["op"] for s in model.vocab.steps]
    assert steps == ["horizontal_flip", "random_rotate90", "random_brightness_contrast", "hue_saturation_value",
                     "gaussian_blur"]
    names = {(model.vocab.steps[leaf.step]["op"], leaf.name): leaf.kind for leaf in model.vocab.leaves}
    assert names[("random_rotate90", "factor")] == "discrete"
    assert names[("random_brightness_contrast", "alpha")] == "continuous"
    assert names[("horizontal_flip", "applied")] == "discrete"


def test_bag_mode_applies_one_transformation_to_every_row(trained, patches, encoder):
    _, ckpt = trained
    model = HistAug.load(ckpt / "final")
    bag = encode(encoder, patches[:40], images_to_tensor, 64, "cpu").numpy()
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"histaug": {"checkpoint": str(ckpt / "final"),
                                                                             "mode": "bag", "device": "cpu"}}]})
    out = pipe({"embedding": bag}, seed=11)
    index = out.provenance[0].params["index"]
    assert isinstance(index, int)
    assert out.provenance[0].params["transform"] == model.describe_index(index)
    with torch.no_grad():
        codes = model.bank_codes[index].expand(len(bag), -1)
        order = model.bank_order[index].expand(len(bag), -1)
        expected = model(torch.from_numpy(bag), codes, order).numpy()
    np.testing.assert_allclose(out["embedding"], expected, rtol=1e-5, atol=1e-6)
    assert out["embedding"].shape == bag.shape and out["embedding"].dtype == bag.dtype


def test_instance_mode_draws_one_transformation_per_row(trained, patches, encoder):
    _, ckpt = trained
    model = HistAug.load(ckpt / "final")
    bag = encode(encoder, patches[:40], images_to_tensor, 64, "cpu")
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"histaug": {"checkpoint": str(ckpt / "final"),
                                                                             "mode": "instance"}}]})
    out = pipe({"embedding": bag}, seed=11)
    seed = out.provenance[0].params["seed"]
    idx = np.random.Generator(np.random.Philox(seed)).integers(model.bank_size, size=len(bag))
    assert len(set(idx.tolist())) > 1
    torch.testing.assert_close(out["embedding"], model.augment(bag, idx))
    assert isinstance(out["embedding"], torch.Tensor)


def test_reloaded_checkpoint_gives_identical_outputs_for_the_same_seed(trained, patches, encoder, tmp_path):
    model, _ = trained
    model.save(tmp_path / "copy")
    bag = encode(encoder, patches[:64], images_to_tensor, 64, "cpu").numpy()
    outs = []
    for _ in range(2):   # the second run goes through a fresh load of the saved directory
        step = {"histaug": {"checkpoint": str(tmp_path / "copy")}}
        pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [step]})
        outs.append(pipe({"embedding": bag}, seed=3)["embedding"])
        from augflow.latent import op as histaug_op
        histaug_op._MODELS.clear()
    np.testing.assert_array_equal(outs[0], outs[1])
    reloaded = HistAug.load(tmp_path / "copy")
    assert reloaded.vocab.to_dict() == model.vocab.to_dict() and reloaded.hparams == model.hparams
    np.testing.assert_array_equal(reloaded.augment(torch.from_numpy(bag), 7).numpy(),
                                  model.augment(torch.from_numpy(bag), 7).numpy())


def test_replay_from_provenance_is_identical(trained, patches, encoder):
    _, ckpt = trained
    bag = encode(encoder, patches[:16], images_to_tensor, 64, "cpu").numpy()
    for mode in ("bag", "instance"):
        pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"histaug": {"checkpoint": str(ckpt / "final"),
                                                                                 "mode": mode}}]})
        out = pipe({"embedding": bag}, seed=21)
        again = pipe.replay({"embedding": bag}, out.provenance.to_json())
        np.testing.assert_array_equal(out["embedding"], again["embedding"])


def test_batched_bags_get_one_transformation_each(trained, patches, encoder):
    _, ckpt = trained
    model = HistAug.load(ckpt / "final")
    bags = encode(encoder, patches[:60], images_to_tensor, 64, "cpu").view(3, 20, -1)
    op = augflow.registry.get("histaug").build({"checkpoint": str(ckpt / "final")})
    rng = np.random.default_rng(0)
    # the batch stage draws each element's params from a stand-in sample (an image stub only)
    stand_in = augflow.Sample({"image": np.zeros((8, 8, 3), np.uint8)})
    params = [op.sample_params(rng, stand_in) for _ in range(3)]
    params[1] = None     # element 1 skipped (its p failed)
    out = op.apply_batch({"embedding": bags}, params)["embedding"]
    assert out.shape == bags.shape
    torch.testing.assert_close(out[1], bags[1])
    for i in (0, 2):
        torch.testing.assert_close(out[i], model.augment(bags[i], params[i]["index"]))
    # a B x N x D field through the per-sample op: one index per bag
    whole = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"histaug": {"checkpoint": str(ckpt / "final")}}]})
    res = whole({"embedding": bags}, seed=2)
    index = np.asarray(res.provenance[0].params["index"]["__ndarray__"])
    assert index.shape == (3,)
    for i in range(3):
        torch.testing.assert_close(res["embedding"][i], model.augment(bags[i], index[i]))


def test_resume_continues_where_the_run_stopped(patches, encoder, pipeline_yaml, tmp_path):
    small = dict(device="cpu", views=2, chunks=4, depth=1, heads=1, batch_size=64, progress=False, seed=1)
    straight = train_histaug(patches[:48], encoder, pipeline_yaml, epochs=3, checkpoint_dir=tmp_path / "a", **small)
    train_histaug(patches[:48], encoder, pipeline_yaml, epochs=2, checkpoint_dir=tmp_path / "b", **small)
    resumed = train_histaug(patches[:48], encoder, pipeline_yaml, epochs=3, checkpoint_dir=tmp_path / "b", **small)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, equal_nan=True, msg=name)
    with pytest.raises(ValueError, match="other settings"):
        train_histaug(patches[:40], encoder, pipeline_yaml, epochs=3, checkpoint_dir=tmp_path / "b", **small)


def test_missing_checkpoint_is_a_load_time_error(tmp_path):
    with pytest.raises(PipelineConfigError, match="config.json"):
        augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"histaug": {"checkpoint": str(tmp_path / "nope")}}]})


def test_sample_without_embedding_field_names_the_fix(trained, astronaut):
    _, ckpt = trained
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"histaug": {"checkpoint": str(ckpt / "final")}}]})
    with pytest.raises(SampleError, match="fields: {feats: embedding}"):
        pipe({"image": astronaut}, seed=0)


def test_paper_head_and_sinusoidal_positions_round_trip(trained, tmp_path):
    model, _ = trained
    plain = HistAug(64, model.vocab, chunks=4, depth=1, heads=2, residual=False, positions="sinusoidal", bank_size=0)
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    codes, order = (torch.as_tensor(a)[None] for a in model.vocab.identity())
    with torch.no_grad():
        y = plain(x, codes, order)
    assert y.shape == x.shape and not torch.allclose(y, x)      # the paper's head: no built-in identity
    plain.save(tmp_path / "plain")
    again = HistAug.load(tmp_path / "plain")
    assert again.hparams["residual"] is False and again.hparams["positions"] == "sinusoidal"
    with torch.no_grad():
        torch.testing.assert_close(again(x, codes, order), y)
