"""`augflow preview`: a PNG grid of the original and augmented tiles, with masks and boxes drawn."""

import json

import numpy as np
from PIL import Image

from augflow import Pipeline
from augflow.cli.preview import PAD, render_tile
from cli_helpers import PIPELINES, run_cli


def _tiles(png: Image.Image) -> list[dict]:
    return json.loads(png.text["augflow:tiles"])


def test_preview_grid_has_the_original_and_n_augmented_tiles_that_differ(photos, tmp_path):
    out = tmp_path / "grid.png"
    run_cli("preview", "pipelines/imagenet_train.yaml", photos / "cat" / "chelsea.jpg",
            photos / "space" / "astronaut.png", "-n", "3", "--tile", "96", "--cols", "4", "-o", out, check=True)
    png = Image.open(out)
    tiles = _tiles(png)
    assert png.width == 4 * (96 + PAD) + PAD
    assert len(tiles) == 2 * (1 + 3)
    assert png.height > 2 * 96 and all(t["box"][3] <= png.height for t in tiles)
    grid = np.asarray(png.convert("RGB")).astype(np.int16)
    for block in (0, 1):
        crops = [grid[y0:y1, x0:x1] for t in tiles if t["block"] == block for x0, y0, x1, y1 in [t["box"]]]
        original, augmented = crops[0], crops[1:]
        for tile in augmented:
            assert tile.std() > 10                                  # a picture, not a blank tile
            assert np.abs(tile - original).mean() > 5               # and not the original
    captions = [t["caption"] for t in tiles]
    assert captions[0] == "original: chelsea.jpg"
    assert all("random_resized_crop" in c and "normalize" in c for c in captions[1:4])


def test_preview_draws_boxes_from_a_manifest(photos, tmp_path):
    manifest = tmp_path / "boxes.jsonl"
    manifest.write_text(json.dumps({"image": str(photos / "space" / "astronaut.png"),
                                    "bboxes": [[10, 10, 50, 60]], "labels": [1]}) + "\n")
    out = tmp_path / "det.png"
    run_cli("preview", PIPELINES / "detection.yaml", manifest, "-n", "2", "--tile", "80", "-o", out, check=True)
    png = Image.open(out)
    assert len(_tiles(png)) == 3
    assert "affine" in _tiles(png)[1]["caption"]


def test_tile_draws_mask_overlay_and_box_outline(astronaut):
    pipe = Pipeline.from_dict({"augflow": 1, "fields": {"bboxes": {"kind": "bboxes", "format": "coco"}},
                               "sample": []})
    mask = np.zeros(astronaut.shape[:2], np.uint8)
    mask[:, :64] = 1
    sample, _ = pipe.prepare({"image": astronaut, "mask": mask, "bboxes": [[70, 70, 40, 30]]})
    plain, _ = pipe.prepare({"image": astronaut})
    drawn = np.asarray(render_tile(sample, [], {}, 128)).astype(int)
    base = np.asarray(render_tile(plain, [], {}, 128)).astype(int)
    assert np.abs(drawn[:, :60] - base[:, :60]).mean() > 10      # the masked half is tinted
    assert np.abs(drawn[80:95, 90:105] - base[80:95, 90:105]).mean() < 1   # inside the box: untouched
    assert np.abs(drawn[70, 75:105] - base[70, 75:105]).mean() > 10        # its top edge: drawn
