"""Tiny random-weight diffusers models, built from configs, for tests, examples and smoke runs.

`save_tiny_stable_diffusion(dir)` writes a complete Stable Diffusion pipeline directory (UNet,
VAE, CLIP text model and tokenizer, DDIM scheduler; ~130k parameters) and
`save_tiny_image_variation(dir)` an image-variation pipeline (CLIP vision encoder), and
`save_tiny_controlnet(dir)` a matching ControlNet (its zero-initialised output convs randomised, so
the condition changes the output). Nothing is downloaded. The outputs are
noise-like pictures, but every code path — loading from a directory, prompts, seeds, batching,
caching — runs exactly as with real weights, at 64 px in a few hundredths of a second.

Two traps these builders avoid: in transformers 5, `CLIPTokenizer(vocab_file=..., merges_file=...)`
silently ignores both files, so the tokenizer gets `vocab=`/`merges=` directly (a character-level
vocabulary: every word tokenizes without merges); and modules built from configs start in train
mode, so they are switched to eval before saving.
"""

from __future__ import annotations

import string
from pathlib import Path

_TEXT_DIM = 16


def _vocab() -> dict[str, int]:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in string.ascii_lowercase + string.digits + "'.,-!?":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    return vocab


def _tiny_unet_and_vae():
    """The denoiser and autoencoder every tiny pipeline shares (drawn from torch's current seed)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=_TEXT_DIM, norm_num_groups=4, attention_head_dim=2)
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, sample_size=32)
    return unet, vae


def save_tiny_stable_diffusion(directory: str | Path, seed: int = 0) -> Path:
    """Write a tiny Stable Diffusion pipeline to `directory`; returns the directory."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from augflow.generative.models import quiet_loading

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet, vae = _tiny_unet_and_vae()
        vocab = _vocab()
        text_encoder = CLIPTextModel(CLIPTextConfig(
            bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=_TEXT_DIM, intermediate_size=32,
            num_attention_heads=2, num_hidden_layers=2, vocab_size=len(vocab), max_position_embeddings=32,
            projection_dim=_TEXT_DIM, layer_norm_eps=1e-5))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=32)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet.eval(), vae=vae.eval(), text_encoder=text_encoder.eval(),
                                   tokenizer=tokenizer, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    with quiet_loading():
        pipe.save_pretrained(directory)
    return Path(directory)


def save_tiny_image_variation(directory: str | Path, seed: int = 2) -> Path:
    """Write a tiny image-variation pipeline (CLIP vision encoder instead of a text encoder)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionImageVariationPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from augflow.generative.models import quiet_loading

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet, vae = _tiny_unet_and_vae()
        encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=_TEXT_DIM, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2, image_size=32,
            patch_size=8, projection_dim=_TEXT_DIM, layer_norm_eps=1e-5))
    processor = CLIPImageProcessor(crop_size=32, size={"shortest_edge": 32})
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionImageVariationPipeline(vae=vae.eval(), image_encoder=encoder.eval(), unet=unet.eval(),
                                                 scheduler=scheduler, safety_checker=None,
                                                 feature_extractor=processor, requires_safety_checker=False)
    with quiet_loading():
        pipe.save_pretrained(directory)
    return Path(directory)


def save_tiny_controlnet(directory: str | Path, seed: int = 1) -> Path:
    """Write a tiny ControlNet matching `save_tiny_stable_diffusion` (2x VAE: one conditioning downsample)."""
    import torch
    from diffusers import ControlNetModel

    from augflow.generative.models import quiet_loading

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # Built from a config, not ControlNetModel.from_unet: that assumes an 8x VAE (4 blocks).
        net = ControlNetModel(block_out_channels=(8, 16), layers_per_block=1, in_channels=4,
                              down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), cross_attention_dim=_TEXT_DIM,
                              norm_num_groups=4, attention_head_dim=2, conditioning_embedding_out_channels=(4, 8))
        # A fresh ControlNet's output convs are zero (it starts as a no-op); random ones make the
        # condition visible in the output, which is what tests of the wiring need.
        for module in (net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out):
            for p in module.parameters():
                torch.nn.init.normal_(p, std=0.2)
    with quiet_loading():
        net.eval().save_pretrained(directory)
    return Path(directory)


__all__ = ["save_tiny_stable_diffusion", "save_tiny_image_variation", "save_tiny_controlnet"]
