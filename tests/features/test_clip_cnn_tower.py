"""The stand-in CLIP's CNN image tower (`train-clip --image_tower cnn`): a registered transformers model inside a
`VisionTextDualEncoderModel`, loaded by every CLIP loader of the package (`load_clip`, `load_vision_backbone`,
CLIP-Align's `load_clip_checkpoint`, the pipeline's saving). Oracle: the in-memory model's own forward."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoModel,
    CLIPImageProcessor,
    VisionTextDualEncoderModel,
)

from gest_showcases.commands.train_clip import main as train_clip_main
from gest_showcases.errors import InputError
from gest_showcases.features.clip import load_clip, load_clip_model, load_vision_backbone
from gest_showcases.features.clip_standin import build_clip, train_clip_tokenizer
from gest_showcases.features.configuration_conv_tower import ConvImageTowerConfig
from gest_showcases.features.loading import ImagePreprocessing
from gest_showcases.features.modeling_conv_tower import ConvImageTower
from gest_showcases.metrics.grounding import embed_images, embed_texts, load_clip_checkpoint

TEXTS = ["The margherita pizza was great.", "Lovely ramen and a rich broth.", "Slow service, nice tiramisu."]


def test_tower_shapes_pooling_and_hidden_states():
    config = ConvImageTowerConfig(widths=[4, 8, 8], image_size=32)
    assert config.hidden_size == 8
    torch.manual_seed(0)
    tower = ConvImageTower(config).eval()
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        output = tower(pixel_values=pixels, output_hidden_states=True)
    assert output.last_hidden_state.shape == (2, 8, 4, 4)  # three 2x2 max-pools: 32 -> 4
    assert [h.shape[1:] for h in output.hidden_states] == [(4, 16, 16), (8, 8, 8), (8, 4, 4)]
    # Oracle: the global average of the last feature map, and the stages run by hand.
    torch.testing.assert_close(output.pooler_output, output.last_hidden_state.mean(dim=(2, 3)))
    with torch.no_grad():
        by_hand = tower.stages(pixels)
    torch.testing.assert_close(output.last_hidden_state, by_hand)
    assert tower(pixel_values=pixels, return_dict=False)[1].shape == (2, 8)


@pytest.mark.parametrize("widths", [[], [8, 0], [8, -2]])
def test_bad_widths_are_refused(widths):
    with pytest.raises(ValueError, match="widths"):
        ConvImageTowerConfig(widths=widths)


def test_auto_classes_know_the_tower(tmp_path):
    config = AutoConfig.for_model("gest_conv_image_tower", widths=[4, 8])
    assert isinstance(config, ConvImageTowerConfig) and config.widths == [4, 8]
    model = AutoModel.from_config(config)
    assert isinstance(model, ConvImageTower)
    model.save_pretrained(tmp_path)
    assert isinstance(AutoModel.from_pretrained(tmp_path), ConvImageTower)


def test_the_tower_loads_as_remote_code_without_the_package(tmp_path):
    """Session 28's audit: the folder shipped the config's code but not the model's (no `AutoModel` in auto_map)."""
    import os
    import subprocess
    import sys
    import textwrap

    torch.manual_seed(0)
    tower = ConvImageTower(ConvImageTowerConfig(widths=[4, 8], image_size=16)).eval()
    tower.save_pretrained(tmp_path / "tower")
    pixels = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.save({"pixels": pixels, "pooled": tower(pixel_values=pixels).pooler_output}, tmp_path / "inputs.pt")
    script = textwrap.dedent(
        """
        import sys
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
        saved = torch.load(sys.argv[2])
        with torch.no_grad():
            torch.testing.assert_close(model(pixel_values=saved["pixels"]).pooler_output, saved["pooled"])
        assert not any(name.startswith("gest_showcases") for name in sys.modules), "our package was imported"
        """
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "tower"), str(tmp_path / "inputs.pt")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_bf16_tower_reads_fp32_pixels_as_transformers_vision_models_do(tmp_path):
    torch.manual_seed(0)
    ConvImageTower(ConvImageTowerConfig(widths=[4, 8], image_size=16)).save_pretrained(tmp_path)
    tower = AutoModel.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    with torch.no_grad():
        pooled = tower(pixel_values=torch.randn(2, 3, 16, 16)).pooler_output
    assert pooled.dtype == torch.bfloat16 and pooled.shape == (2, 8)


def trained_looking_cnn_clip(folder, projection_dim=8):
    """A CNN stand-in CLIP saved like `train-clip` saves it, with batch-norm statistics and weights moved off their
    initial values (so a loader that re-initialised anything would give other features)."""
    tokenizer = train_clip_tokenizer(TEXTS * 5, vocab_size=300)
    torch.manual_seed(0)
    model = build_clip(tokenizer, 16, 16, 16, 1, 2, projection_dim, image_tower="cnn")
    assert isinstance(model, VisionTextDualEncoderModel) and isinstance(model.vision_model, ConvImageTower)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # batch norm's running statistics move in train mode
            model.get_image_features(pixel_values=torch.randn(6, 3, 16, 16) * 2 + 0.5)
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    processor.save_pretrained(folder)
    return model, tokenizer, ImagePreprocessing.from_image_processor(processor)


def test_every_clip_loader_reads_the_cnn_stand_in(tmp_path):
    model, tokenizer, preprocessing = trained_looking_cnn_clip(tmp_path / "clip")
    images = [Image.new("RGB", (20, 24), color) for color in ((200, 30, 30), (20, 180, 60), (240, 240, 10))]
    pixels = torch.stack([preprocessing.pil_to_uint8(image) for image in images])
    tokens = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        image_embeds = torch.nn.functional.normalize(
            model.get_image_features(pixel_values=preprocessing.normalize(pixels)).pooler_output, dim=-1
        )
        text_embeds = torch.nn.functional.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)
        pooled = model.vision_model(pixel_values=preprocessing.normalize(pixels)).pooler_output

    loaded = load_clip_model(tmp_path / "clip")
    assert isinstance(loaded, VisionTextDualEncoderModel) and isinstance(loaded.vision_model, ConvImageTower)
    torch.testing.assert_close(loaded.vision_model.stages[1].running_var, model.vision_model.stages[1].running_var)

    image_model, text_model = load_clip(str(tmp_path / "clip"))
    torch.testing.assert_close(image_model.encode(pixels), image_embeds)
    torch.testing.assert_close(text_model.encode(TEXTS), text_embeds)
    backbone = load_vision_backbone(str(tmp_path / "clip"))
    torch.testing.assert_close(backbone.encode(pixels), pooled)
    assert backbone.fingerprint != image_model.fingerprint  # the tower alone vs the whole checkpoint

    clip, processor = load_clip_checkpoint(str(tmp_path / "clip"))
    torch.testing.assert_close(embed_texts(TEXTS, clip, processor), text_embeds)
    # The processor resizes with PIL (not ImagePreprocessing's tensor path): same model, close features.
    torch.testing.assert_close(embed_images(images, clip, processor), image_embeds, atol=0.05, rtol=0)


def test_a_checkpoint_that_is_no_clip_is_one_clear_error(tmp_path):
    ConvImageTower(ConvImageTowerConfig(widths=[4])).save_pretrained(tmp_path / "tower")
    with pytest.raises(InputError, match="ConvImageTowerConfig checkpoint, not a CLIP"):
        load_clip_model(tmp_path / "tower")
    # The metrics' loader names its option before the loader's own reason (`model_folders.loading`).
    with pytest.raises(InputError, match="^clip_model .*tower: .*ConvImageTowerConfig checkpoint, not a CLIP"):
        load_clip_checkpoint(str(tmp_path / "tower"))


def test_train_clip_with_the_cnn_tower(tmp_path, synth_dataset):
    photos = synth_dataset.parent / "synth" / "images"
    out = tmp_path / "clip"
    assert train_clip_main([
        "--dataset", str(synth_dataset), "--images", str(photos), "--output_dir", str(out), "--image_tower", "cnn",
        "--pair_with", "sentences", "--image_size", "16", "--hidden_size", "16", "--num_layers", "1",
        "--num_heads", "2", "--projection_dim", "8", "--num_train_epochs", "2", "--batch_size", "16",
        "--num_threads", "1", "--synth_truth", str(synth_dataset.parent / "synth" / "ground_truth.json"),
    ]) == 0  # fmt: skip
    metrics = json.loads((out / "train_clip_metrics.json").read_text())
    assert metrics["arguments"]["image_tower"] == "cnn"
    assert all(torch.isfinite(torch.tensor(metrics["epoch_losses"])))
    assert 0.0 <= metrics["clip_quality"]["dish_probe"]["nearest_centroid"] <= 1.0
    assert json.loads((out / "config.json").read_text())["vision_config"]["model_type"] == "gest_conv_image_tower"
    model = load_clip_model(out)
    assert isinstance(model.vision_model, ConvImageTower) and model.config.projection_dim == 8
    # Trained: the weights are not a fresh model's of the same config and seed.
    torch.manual_seed(0)
    fresh = VisionTextDualEncoderModel(model.config)
    assert not torch.equal(model.vision_model.stages[0].weight, fresh.vision_model.stages[0].weight)


def test_an_unknown_image_tower_is_refused_before_training(tmp_path, synth_dataset, capsys):
    with pytest.raises(SystemExit):
        train_clip_main(["--dataset", str(synth_dataset), "--output_dir", str(tmp_path), "--image_tower", "resnet"])
    assert "invalid choice: 'resnet'" in capsys.readouterr().err
