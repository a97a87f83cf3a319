"""Calls a transformers user types on the showcase pipeline and its models (session 24's review): the checkpoint's
own decoding, a bf16 model on fp32 features, `resize_token_embeddings`, and clear errors for what cannot work."""

from __future__ import annotations

import pytest
import torch

from gest_showcases.errors import InputError
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.pipeline import ShowcasePipeline
from gest_showcases.selection import DPPImageSelector


def _request(photos):
    return {"candidates": [str(photos[f"pic{i}"]) for i in range(6)], "history_texts": ["Great ramen."]}


@pytest.fixture(scope="module")
def pipeline(checkpoints):
    return ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", k=2)


def test_the_generators_own_decoding_is_used_unless_one_is_given(pipeline, photos, monkeypatch):
    seen = []
    generate = pipeline.generator.generate

    def spy(**kwargs):
        seen.append({key: kwargs.get(key) for key in ("num_beams", "max_new_tokens")})
        return generate(**kwargs)

    monkeypatch.setattr(pipeline.generator, "generate", spy)
    monkeypatch.setattr(pipeline.generator.generation_config, "max_new_tokens", 3)
    pipeline(_request(photos))
    assert seen[-1] == {"num_beams": None, "max_new_tokens": None}  # generate reads its generation_config
    pipeline(_request(photos), num_beams=1, max_new_tokens=2)
    assert seen[-1] == {"num_beams": 1, "max_new_tokens": 2}
    monkeypatch.setattr(pipeline.generator.generation_config, "max_new_tokens", None)
    pipeline(_request(photos))
    assert seen[-1]["max_new_tokens"] == 64  # never generate's default max_length of 20


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"k": 0}, r"k .* must be a whole number in \[1, 1000\], got 0"),
        ({"k": 2.5}, "got 2.5"),
        ({"num_return_sequences": 2, "num_beams": 2}, "num_return_sequences must be 1"),
        # Session 26's audit: a KeyError inside the tokenizer's batch_decode.
        ({"return_dict_in_generate": True}, "leave out return_dict_in_generate"),
        ({"max_new_tokens": 65}, r"max_new_tokens 65: .* 64 positions \(config.decoder.n_positions\); give at most 64"),
    ],
)
def test_what_a_showcase_cannot_be_is_one_clear_error(pipeline, photos, call, message):
    with pytest.raises(InputError, match=message):
        pipeline(_request(photos), **call)


def test_a_bf16_generator_and_selector_read_fp32_features(checkpoints):
    generator = PC2LForConditionalGeneration.from_pretrained(checkpoints["generator"], dtype=torch.bfloat16)
    config = generator.config
    features = {"image_features": torch.randn(2, 3, config.image_feature_dim),
                "review_features": torch.randn(2, 2, config.review_feature_dim)}  # fmt: skip
    ids = generator.generate(**features, num_beams=1, max_new_tokens=3)
    assert ids.shape[0] == 2
    selector = DPPImageSelector.from_pretrained(checkpoints["selector"], dtype=torch.bfloat16)
    selected = selector.select(
        torch.randn(2, selector.config.text_dim), torch.randn(2, selector.config.image_dim),
        torch.randn(2, 5, selector.config.image_dim), k=2,
    )  # fmt: skip
    assert len(selected[0]) == 2


def test_a_generation_config_asking_for_generate_outputs_is_one_clear_error(pipeline, photos, monkeypatch):
    """Session 26's review: a saved generation_config (or the call's) with return_dict_in_generate was a KeyError."""
    from transformers import GenerationConfig

    with pytest.raises(InputError, match="leave out return_dict_in_generate"):
        pipeline(_request(photos), generation_config=GenerationConfig(return_dict_in_generate=True, max_new_tokens=2))
    monkeypatch.setattr(pipeline.generator.generation_config, "return_dict_in_generate", True)
    with pytest.raises(InputError, match="leave out return_dict_in_generate"):
        pipeline(_request(photos))


def test_the_transformers_pipeline_factory_casts_the_selector_with_the_generator(checkpoints, photos, tmp_path):
    """Session 26's audit: `pipeline("personalized-showcase", model=saved, dtype=torch.bfloat16)` loaded the generator
    in bf16 and left the selector in fp32 (`ShowcasePipeline.from_pretrained(dtype=)` casts both)."""
    from transformers import pipeline as hf_pipeline

    saved = ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", k=2).save_pretrained(tmp_path / "saved")
    pipe = hf_pipeline("personalized-showcase", model=str(saved), device="cpu", dtype=torch.bfloat16)
    assert pipe.model.dtype == pipe.showcase.selector.dtype == torch.bfloat16
    assert len(pipe(_request(photos), num_beams=1, max_new_tokens=3).photos) == 2


def test_the_transformers_pipeline_takes_generate_kwargs_as_text_pipelines_do(checkpoints, photos, tmp_path, monkeypatch):
    """Session 28's audit: `generate_kwargs={...}`, the usual way to give a transformers pipeline its decoding, reached
    `generate` as a keyword named `generate_kwargs` (a ValueError)."""
    from transformers import pipeline as hf_pipeline

    saved = ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", k=2).save_pretrained(tmp_path / "saved")
    pipe = hf_pipeline("personalized-showcase", model=str(saved), device="cpu", generate_kwargs={"num_beams": 1})
    seen = []
    generate = pipe.showcase.generator.generate

    def spy(**kwargs):
        seen.append({key: kwargs.get(key) for key in ("num_beams", "max_new_tokens")})
        return generate(**kwargs)

    monkeypatch.setattr(pipe.showcase.generator, "generate", spy)
    pipe(_request(photos), generate_kwargs={"max_new_tokens": 2})
    assert seen[-1] == {"num_beams": 1, "max_new_tokens": 2}
    pipe(_request(photos), max_new_tokens=3)  # loose keywords still work
    assert seen[-1] == {"num_beams": 1, "max_new_tokens": 3}


@pytest.mark.parametrize("dtype", [torch.bfloat16, "bfloat16"])
def test_from_pretrained_takes_a_dtype_as_transformers_does(checkpoints, photos, dtype):
    """`ShowcasePipeline.from_pretrained(..., dtype=torch.bfloat16)` was a TypeError from the constructor."""
    pipeline = ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", k=2, dtype=dtype)
    assert pipeline.generator.dtype == pipeline.selector.dtype == torch.bfloat16
    showcase = pipeline(_request(photos), num_beams=1, max_new_tokens=3)
    assert len(showcase.photos) == 2 and isinstance(showcase.explanation, str)


@pytest.mark.parametrize("dtype", ["int8", "bogus", torch.int64])
def test_from_pretrained_refuses_a_dtype_that_is_not_floating(checkpoints, dtype):
    with pytest.raises(InputError, match="give a floating torch dtype"):
        ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", dtype=dtype)


def test_generate_max_length_counts_over_the_saved_max_new_tokens(checkpoints):
    """A trained generator's generation_config sets max_new_tokens=64, which transformers let win over a call's
    `max_length` (with a warning only)."""
    generator = PC2LForConditionalGeneration.from_pretrained(checkpoints["generator"])
    generator.generation_config.max_new_tokens = 64
    config = generator.config
    features = {"image_features": torch.randn(2, 3, config.image_feature_dim),
                "review_features": torch.randn(2, 2, config.review_feature_dim)}  # fmt: skip
    assert generator.generate(**features, max_length=4, min_length=4, num_beams=1).shape == (2, 4)


def test_wrong_feature_shapes_name_the_config_field(checkpoints):
    generator = PC2LForConditionalGeneration.from_pretrained(checkpoints["generator"])
    width = generator.config.image_feature_dim
    reviews = torch.randn(2, 2, generator.config.review_feature_dim)
    with pytest.raises(ValueError, match=rf"image_features must be \[batch, items, {width}\] \(config.image_feature_dim\)"):
        generator.generate(image_features=torch.randn(2, 3, width + 1), review_features=reviews, max_new_tokens=2)
    with pytest.raises(ValueError, match="got shape \\(2, 16\\)"):
        generator.generate(image_features=torch.randn(2, 16), review_features=reviews, max_new_tokens=2)
    with pytest.raises(ValueError, match="image_features hold 3 examples and review_features 2"):
        generator.generate(image_features=torch.randn(3, 3, width), review_features=reviews, max_new_tokens=2)


def test_resize_token_embeddings_after_adding_a_pad_token(checkpoints):
    generator = PC2LForConditionalGeneration.from_pretrained(checkpoints["generator"])
    size = generator.get_input_embeddings().weight.shape[0]
    generator.resize_token_embeddings(size + 1)
    assert generator.get_output_embeddings().weight.shape[0] == size + 1
    assert generator.get_output_embeddings().weight is generator.get_input_embeddings().weight  # still tied


def test_as_many_new_tokens_as_the_decoder_has_positions_work(pipeline, photos):
    """The bound is exact: 64 new tokens on a 64-position GPT-2 (the start token and 63 new ones are read)."""
    assert pipeline.generator.config.decoder.n_positions == 64
    pipeline(_request(photos), max_new_tokens=64, num_beams=1, min_new_tokens=64)


@pytest.mark.parametrize(
    ("part", "change"),
    [
        ("selector", {"top_k": "3"}),  # huggingface_hub's strict dataclass check
        ("selector", {"input_mode": "foo"}),
        ("selector", {"image_dim": 7}),  # weights of another size
        ("generator", {"encoder_attention_heads": 3}),
        ("generator", {"image_feature_dim": 7}),
    ],
)
def test_a_model_folder_with_a_damaged_config_is_one_line(checkpoints, tmp_path, part, change):
    """Session 24's audit: these were tracebacks from `from_pretrained` in showcase, serve and push."""
    import json
    import shutil

    from gest_showcases.pipeline import load_generator, load_selector

    folder = tmp_path / part
    shutil.copytree(checkpoints[part], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | change))
    load = load_selector if part == "selector" else load_generator
    with pytest.raises(InputError, match=f"^{part} {folder}: cannot be loaded"):
        load(folder)
