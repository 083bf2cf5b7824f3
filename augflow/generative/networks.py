"""The day-to-night networks, in the public CycleGAN/pix2pix/gandtr state-dict layout.

`ResnetGenerator` is the CycleGAN/pix2pix ResNet generator (Johnson et al.) that gandtr's
day-to-night models use. Its parameters live in one `nn.Sequential` called `model`, so a state
dict has exactly these keys (n = n_blocks, default 9; norm "batch" adds weight/bias/running
stats at the norm indices, "instance" — CycleGAN's default — has none and gives convs a bias):

    model.1            Conv2d(in, ngf, 7)             after ReflectionPad2d(3) at model.0
    model.2            norm(ngf)                      ReLU at model.3
    model.4, model.7   Conv2d stride 2 (ngf->2ngf->4ngf), norms at model.5, model.8
    model.10 .. 9+n    ResnetBlock: conv_block.1 Conv2d, .2 norm, .5 Conv2d, .6 norm
                       (with dropout: .1, .2, .6, .7)
    model.10+n, 13+n   ConvTranspose2d (4ngf->2ngf->ngf), norms at model.11+n, model.14+n
    model.17+n         Conv2d(ngf, out, 7)            after ReflectionPad2d(3); Tanh last

`load_generator` reads a plain state dict (CycleGAN's `latest_net_G_A.pth`, pix2pix's
`latest_net_G.pth`), a gandtr checkpoint (`{"net": {"model_state": ...}}` or the inner
`{"model_state": ...}`), augflow's trainer output, and DataParallel `module.` prefixes; it infers
ngf, blocks, norm and channels from the tensors, so no architecture flags are needed.
`NLayerDiscriminator` is the 70x70 PatchGAN; `HED` is the holistically-nested edge detector in
sniklaus' pytorch-hed layout (`netVggOne`...`netCombine`), which gandtr fine-tunes as its edge
detector.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"norm must be 'batch' or 'instance', got {kind!r}")


class ResnetBlock(nn.Module):
    """pad-conv-norm-ReLU-(dropout)-pad-conv-norm with a skip connection."""

    def __init__(self, dim: int, norm: str, use_bias: bool, dropout: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), _norm(norm, dim),
                                   nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), _norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN/pix2pix ResNet generator: [-1, 1] images in, [-1, 1] images out (sides divisible by 4)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "batch", dropout: bool = False):
        super().__init__()
        self.config = {"in_channels": in_channels, "out_channels": out_channels, "ngf": ngf, "n_blocks": n_blocks,
                       "norm": norm, "dropout": dropout}
        use_bias = norm == "instance"    # a conv before a batch norm needs no bias
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=use_bias),
                                   _norm(norm, ngf), nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2 ** i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=use_bias), _norm(norm, 2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm, use_bias, dropout) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 4 // 2 ** i
            layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias),
                       _norm(norm, c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: a map of real/fake scores, one per overlapping patch (70x70 for n_layers=3)."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        use_bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=use_bias),
                       _norm(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """CycleGAN's init: conv weights N(0, 0.02), biases 0, batch-norm weights N(1, 0.02)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


# ---- loading public checkpoints -------------------------------------------------------------
def extract_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The generator's state dict from any of the supported checkpoint shapes."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: expected a state dict or a checkpoint dict, got {type(obj).__name__}")
    for path in (("net", "model_state"), ("model_state",), ("generator",), ("G",), ("netG_A",), ("netG",),
                 ("state_dict",)):
        node: Any = obj
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and any(isinstance(v, torch.Tensor) for v in node.values()):
            obj = node
            break
    state = {re.sub(r"^(module\.)+", "", k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not any(k.startswith("model.") for k in state):
        raise ValueError(f"{source}: no ResNet-generator weights (keys 'model.N...') found; keys start with "
                         f"{sorted({k.split('.')[0] for k in state})[:5]}")
    return state


def infer_config(state: dict[str, torch.Tensor], source: str = "checkpoint") -> dict[str, Any]:
    """ngf, n_blocks, norm, dropout and channels of a ResnetGenerator state dict."""
    if any(k.endswith(".filt") for k in state):
        raise ValueError(f"{source}: an anti-aliased (CUT-style) generator; only the standard CycleGAN/pix2pix "
                         "layout (no_antialias) is supported")
    first = state.get("model.1.weight")
    if first is None or first.ndim != 4 or first.shape[-1] != 7:
        raise ValueError(f"{source}: 'model.1.weight' must be the 7x7 input conv of a ResNet generator")
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    if blocks != list(range(10, 10 + len(blocks))):
        raise ValueError(f"{source}: residual blocks must be model.10 .. model.N, found {blocks}")
    n = len(blocks)
    dropout = "model.10.conv_block.6.weight" in state and state["model.10.conv_block.6.weight"].ndim == 4
    norm = "batch" if "model.2.weight" in state else "instance"
    last = state.get(f"model.{17 + n}.weight")
    if last is None:
        raise ValueError(f"{source}: missing the output conv 'model.{17 + n}.weight' for {n} residual blocks")
    return {"in_channels": int(first.shape[1]), "out_channels": int(last.shape[0]), "ngf": int(first.shape[0]),
            "n_blocks": n, "norm": norm, "dropout": bool(dropout)}


def generator_from_state_dict(state: dict[str, torch.Tensor], source: str = "checkpoint") -> ResnetGenerator:
    """A ResnetGenerator with exactly these weights (strict: every key must match)."""
    config = infer_config(state, source)
    net = ResnetGenerator(**config)
    own = set(net.state_dict())
    # Checkpoints from PyTorch < 0.4 carry instance-norm running stats that modern InstanceNorm
    # (track_running_stats=False) lacks; CycleGAN's own loader drops them the same way.
    state = {k: v for k, v in state.items() if k in own or not re.search(r"running_(mean|var)$|num_batches_tracked$", k)}
    missing, unexpected = own - set(state), set(state) - own
    if missing or unexpected:
        raise ValueError(f"{source}: state dict does not match a ResNet generator {config}: "
                         f"missing {sorted(missing)[:6]}, unexpected {sorted(unexpected)[:6]}")
    net.load_state_dict(state, strict=True)
    return net


GENERATOR_FILES = ("generator.pth", "latest_net_G_A.pth", "latest_net_G.pth", "net_generator_X_last.pth")


def resolve_checkpoint(path: str | Path) -> Path:
    """A generator file: the path itself, or the known file names inside a directory."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in GENERATOR_FILES:
            if (p / name).exists():
                return p / name
        epochs = p / "epochs" / "generator_X_last.pth"       # gandtr's checkpoint folder
        if epochs.exists():
            return epochs
        raise FileNotFoundError(f"directory {str(p)!r} holds no generator checkpoint (looked for "
                                f"{', '.join(GENERATOR_FILES)}); give the .pth file itself")
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    return p


def load_generator(path: str | Path, map_location: str = "cpu") -> ResnetGenerator:
    """A ResnetGenerator in eval mode from a CycleGAN, pix2pix, gandtr or augflow checkpoint."""
    p = resolve_checkpoint(path)
    try:
        obj = torch.load(p, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - gandtr checkpoints pickle plain Python config beside the tensors
        obj = torch.load(p, map_location=map_location, weights_only=False)
    net = generator_from_state_dict(extract_state_dict(obj, str(p)), str(p))
    meta = p.with_suffix(".json")
    if meta.exists():
        net.meta = json.loads(meta.read_text(encoding="utf-8"))
    return net.eval()


# ---- HED edge detector ----------------------------------------------------------------------
class HED(nn.Module):
    """Holistically-nested edge detection (VGG16 side outputs fused), sniklaus' pytorch-hed layout.

    Input: RGB in [0, 1]; it is converted to BGR 0-255 minus the Caffe means, as those weights
    expect. Output: edge logits (or probabilities) at the input size.
    """

    _MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)

    def __init__(self):
        super().__init__()

        def vgg(cin: int, widths: list[int], pool: bool) -> nn.Sequential:
            layers: list[nn.Module] = [nn.MaxPool2d(2, 2)] if pool else []
            for w in widths:
                layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU(False)]
                cin = w
            return nn.Sequential(*layers)

        self.netVggOne = vgg(3, [64, 64], False)
        self.netVggTwo = vgg(64, [128, 128], True)
        self.netVggThr = vgg(128, [256, 256, 256], True)
        self.netVggFou = vgg(256, [512, 512, 512], True)
        self.netVggFiv = vgg(512, [512, 512, 512], True)
        self.netScoreOne, self.netScoreTwo = nn.Conv2d(64, 1, 1), nn.Conv2d(128, 1, 1)
        self.netScoreThr, self.netScoreFou, self.netScoreFiv = nn.Conv2d(256, 1, 1), nn.Conv2d(512, 1, 1), nn.Conv2d(512, 1, 1)
        self.netCombine = nn.Sequential(nn.Conv2d(5, 1, 1))
        self.register_buffer("mean", torch.tensor(self._MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb01: torch.Tensor, logits: bool = False) -> torch.Tensor:
        x = rgb01.flip(1) * 255.0 - self.mean
        feats, outs = x, []
        for vgg, score in ((self.netVggOne, self.netScoreOne), (self.netVggTwo, self.netScoreTwo),
                           (self.netVggThr, self.netScoreThr), (self.netVggFou, self.netScoreFou),
                           (self.netVggFiv, self.netScoreFiv)):
            feats = vgg(feats)
            outs.append(nn.functional.interpolate(score(feats), size=x.shape[2:], mode="bilinear", align_corners=False))
        fused = self.netCombine(torch.cat(outs, 1))
        return fused if logits else torch.sigmoid(fused)


_HED_RENAMES = {"moduleVggOne": "netVggOne", "moduleVggTwo": "netVggTwo", "moduleVggThr": "netVggThr",
                "moduleVggFou": "netVggFou", "moduleVggFiv": "netVggFiv", "moduleScoreOne": "netScoreOne",
                "moduleScoreTwo": "netScoreTwo", "moduleScoreThr": "netScoreThr", "moduleScoreFou": "netScoreFou",
                "moduleScoreFiv": "netScoreFiv", "moduleCombine": "netCombine",
                # gandtr's HedInterpolation names
                "vgg1": "netVggOne", "vgg2": "netVggTwo", "vgg3": "netVggThr", "vgg4": "netVggFou", "vgg5": "netVggFiv",
                "score1": "netScoreOne", "score2": "netScoreTwo", "score3": "netScoreThr", "score4": "netScoreFou",
                "score5": "netScoreFiv", "fusion": "netCombine"}


def load_hed(path: str | Path, map_location: str = "cpu") -> HED:
    """HED weights from sniklaus' pytorch-hed (`netVggOne...` or older `moduleVggOne...`) or gandtr."""
    obj = torch.load(Path(path).expanduser(), map_location=map_location, weights_only=False)
    if isinstance(obj, dict) and "net" in obj:
        obj = obj["net"].get("model_state", obj["net"])
    obj = obj.get("model_state", obj) if isinstance(obj, dict) else obj
    state = {}
    for k, v in obj.items():
        head, _, rest = re.sub(r"^(module\.)+", "", k).partition(".")
        state[f"{_HED_RENAMES.get(head, head)}.{rest}"] = v
    net = HED()
    net.load_state_dict(state, strict=True)
    return net


__all__ = ["ResnetGenerator", "ResnetBlock", "NLayerDiscriminator", "HED", "init_weights", "extract_state_dict",
           "infer_config", "generator_from_state_dict", "load_generator", "load_hed", "resolve_checkpoint",
           "GENERATOR_FILES"]
