"""The ResNet generator loads public CycleGAN/pix2pix/gandtr state dicts unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augflow.generative.networks import HED, infer_config, load_generator, load_hed

NGF, BLOCKS = 4, 9


def public_layout(ngf: int, n_blocks: int, norm: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of `ResnetGenerator(3, 3, ngf, norm_layer, n_blocks)` in junyanz/pytorch-CycleGAN-and-pix2pix
    (`models/networks.py`), written out from that file's layer order: model.0 pad, 1 conv7, 2 norm, 3 relu,
    4/7 stride-2 convs (norms 5/8), 10.. resnet blocks (conv_block.1/.5 convs, .2/.6 norms), two
    ConvTranspose2d with norms, pad, conv7, tanh."""
    bias = norm == "instance"
    keys: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cout: int, cin: int, k: int, with_bias: bool) -> None:
        keys[f"{name}.weight"] = (cout, cin, k, k)
        if with_bias:
            keys[f"{name}.bias"] = (cout,)

    def bn(name: str, c: int) -> None:
        if norm == "batch":
            keys.update({f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
                         f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()})

    conv("model.1", ngf, 3, 7, bias), bn("model.2", ngf)
    conv("model.4", 2 * ngf, ngf, 3, bias), bn("model.5", 2 * ngf)
    conv("model.7", 4 * ngf, 2 * ngf, 3, bias), bn("model.8", 4 * ngf)
    for b in range(n_blocks):
        for conv_i, norm_i in ((1, 2), (5, 6)):
            conv(f"model.{10 + b}.conv_block.{conv_i}", 4 * ngf, 4 * ngf, 3, bias)
            bn(f"model.{10 + b}.conv_block.{norm_i}", 4 * ngf)
    t = 10 + n_blocks
    keys[f"model.{t}.weight"] = (4 * ngf, 2 * ngf, 3, 3)       # ConvTranspose2d: (in, out, k, k)
    if bias:
        keys[f"model.{t}.bias"] = (2 * ngf,)
    bn(f"model.{t + 1}", 2 * ngf)
    keys[f"model.{t + 3}.weight"] = (2 * ngf, ngf, 3, 3)
    if bias:
        keys[f"model.{t + 3}.bias"] = (ngf,)
    bn(f"model.{t + 4}", ngf)
    conv(f"model.{t + 7}", 3, ngf, 7, True)
    return keys


def random_state(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in layout.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g) * 0.1
    return out


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, norm: str, n_blocks: int) -> torch.Tensor:
    """The generator written with torch.nn.functional straight from the key layout (eval mode)."""
    def nrm(h, name):
        if norm == "batch":
            return F.batch_norm(h, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                                sd[f"{name}.bias"], training=False, eps=1e-5)
        return F.instance_norm(h, eps=1e-5)

    def conv(h, name, stride=1, padding=0):
        return F.conv2d(h, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride=stride, padding=padding)

    h = F.relu(nrm(conv(F.pad(x, (3,) * 4, mode="reflect"), "model.1"), "model.2"))
    h = F.relu(nrm(conv(h, "model.4", 2, 1), "model.5"))
    h = F.relu(nrm(conv(h, "model.7", 2, 1), "model.8"))
    for b in range(n_blocks):
        p = f"model.{10 + b}.conv_block"
        r = F.relu(nrm(conv(F.pad(h, (1,) * 4, mode="reflect"), f"{p}.1"), f"{p}.2"))
        h = h + nrm(conv(F.pad(r, (1,) * 4, mode="reflect"), f"{p}.5"), f"{p}.6")
    t = 10 + n_blocks
    for up, n in ((t, t + 1), (t + 3, t + 4)):
        h = F.conv_transpose2d(h, sd[f"model.{up}.weight"], sd.get(f"model.{up}.bias"), stride=2, padding=1,
                               output_padding=1)
        h = F.relu(nrm(h, f"model.{n}"))
    return torch.tanh(conv(F.pad(h, (3,) * 4, mode="reflect"), f"model.{t + 7}"))


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_public_key_layout_loads_and_computes_the_reference_network(tmp_path, norm):
    layout = public_layout(NGF, BLOCKS, norm)
    sd = random_state(layout)
    torch.save(sd, tmp_path / "latest_net_G_A.pth")
    net = load_generator(tmp_path)                           # a CycleGAN checkpoints folder
    assert set(net.state_dict()) == set(layout)
    assert net.config == {"in_channels": 3, "out_channels": 3, "ngf": NGF, "n_blocks": BLOCKS, "norm": norm,
                          "dropout": False}
    x = torch.rand(1, 3, 32, 24) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference_forward(sd, x, norm, BLOCKS), atol=1e-5, rtol=1e-4)


def test_gandtr_checkpoint_with_dataparallel_prefix_loads(tmp_path):
    sd = random_state(public_layout(NGF, 6, "batch"), seed=1)
    checkpoint = {"net": {"type": "SingleNetwork", "frozen": False,
                          "network_params": {"model": {"architecture": "official_resnet_generator", "n_blocks": 6,
                                                       "norm_layer": "batch"}, "runtime": {}},
                          "model_state": {f"module.{k}": v for k, v in sd.items()}}}
    torch.save(checkpoint, tmp_path / "hedngan_generator_X.pth")
    net = load_generator(tmp_path / "hedngan_generator_X.pth")
    assert net.config["n_blocks"] == 6 and net.config["norm"] == "batch"
    torch.testing.assert_close(net.state_dict()["model.16.weight"], sd["model.16.weight"])


def test_old_instance_norm_running_stats_are_dropped(tmp_path):
    sd = random_state(public_layout(NGF, 2, "instance"))
    sd["model.2.running_mean"], sd["model.2.running_var"] = torch.zeros(NGF), torch.ones(NGF)   # PyTorch < 0.4
    torch.save(sd, tmp_path / "g.pth")
    assert load_generator(tmp_path / "g.pth").config["norm"] == "instance"


def test_dropout_layout_is_detected():
    layout = public_layout(NGF, 3, "instance")
    sd = {}
    for k, v in random_state(layout).items():   # with dropout, the second conv of a block is conv_block.6
        sd[k.replace("conv_block.5", "conv_block.6")] = v
    assert infer_config(sd)["dropout"] is True


def test_a_state_dict_of_another_network_is_refused_with_its_keys(tmp_path):
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "vgg.pth")
    with pytest.raises(ValueError, match="no ResNet-generator weights.*features"):
        load_generator(tmp_path / "vgg.pth")
    with pytest.raises(FileNotFoundError, match="latest_net_G_A.pth"):
        load_generator(tmp_path)


def test_hed_loads_pytorch_hed_key_names(tmp_path):
    state = {k: torch.randn(v.shape) * 0.01 for k, v in HED().state_dict().items()}
    old_names = {k.replace("net", "module", 1): v for k, v in state.items()}       # pytorch-hed before 2020
    torch.save(old_names, tmp_path / "hed.pth")
    hed = load_hed(tmp_path / "hed.pth")
    torch.testing.assert_close(hed.state_dict()["netCombine.0.weight"], state["netCombine.0.weight"])
    with torch.no_grad():
        edges = hed(torch.rand(1, 3, 32, 32))
    assert edges.shape == (1, 1, 32, 32) and 0 <= float(edges.min()) and float(edges.max()) <= 1
    assert np.isfinite(edges.numpy()).all()
