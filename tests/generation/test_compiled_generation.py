"""Static-cache generation of PC2L (`generate(..., cache_implementation="static")`, issue 18).

Oracle: plain `generate` of the same model with the same settings; the static cache (eager or compiled) must give
the very same tokens. The tiny model's weights are scaled up so its next-token scores are far apart: a float
rounding difference of a fused kernel must not decide a near-tie (the test is about the cache, not about ties).
"""

import copy
import pickle

import pytest
import torch
from pc2l_fixtures import FEATURE_DIM, tiny_config
from transformers import CompileConfig, LlamaConfig

from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration, compiled_generation
from gest_showcases.generation.compiled_generation import StaticDecodingCache


@pytest.fixture(scope="module")
def model(tokenizer) -> PC2LForConditionalGeneration:
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(tiny_config(tokenizer)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(10.0)
    return model


def features(batch_size: int, num_images: int = 3, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    image_mask = torch.ones(batch_size, num_images, dtype=torch.bool)
    image_mask[-1, 1:] = False  # padded inputs in the last example
    return {
        "image_features": torch.randn(batch_size, num_images, FEATURE_DIM, generator=generator),
        "image_mask": image_mask,
        "review_features": torch.randn(batch_size, 2, FEATURE_DIM, generator=generator),
    }


SCALED_DOT_PRODUCT_ATTENTION = torch.nn.functional.scaled_dot_product_attention


def strict_attention(query, key, value, attn_mask=None, **kwargs):
    """`scaled_dot_product_attention` that refuses a mask of fewer than four dimensions, as CUDA's kernels do (CPU's
    broadcast it; the H200 run of the GPU suite failed on a 1-d mask)."""
    if attn_mask is not None and attn_mask.dim() != 4:
        raise IndexError(f"Dimension out of range: a {attn_mask.dim()}-d attention mask")
    return SCALED_DOT_PRODUCT_ATTENTION(query, key, value, attn_mask=attn_mask, **kwargs)


@pytest.mark.parametrize("fixed_length", [False, True], ids=["cpu-layout", "cuda-layout"])
@pytest.mark.parametrize(
    "batch_size,num_beams,no_repeat_ngram_size",
    [(1, 2, 0), (3, 2, 0), (3, 2, 3), (4, 2, 3), (3, 1, 0)],  # 3: padded to the bucket of 4; 1 beam: greedy
)
def test_static_cache_gives_the_tokens_of_plain_generate(model, monkeypatch, batch_size, num_beams,
                                                         no_repeat_ngram_size, fixed_length):  # fmt: skip
    """Both cache layouts on CPU: CUDA's (a fixed-length buffer read under a mask) and CPU's (growing views)."""
    settings = {"num_beams": num_beams, "max_new_tokens": 24, "no_repeat_ngram_size": no_repeat_ngram_size}
    monkeypatch.setattr(compiled_generation, "uses_fixed_length_cache", lambda device: fixed_length)
    monkeypatch.setattr(compiled_generation.F, "scaled_dot_product_attention", strict_attention)
    steps = []
    decode = StaticDecodingCache.decode
    monkeypatch.setattr(
        StaticDecodingCache, "decode", lambda self, ids: steps.append(ids.shape) or decode(self, ids)
    )
    plain = model.generate(**features(batch_size), **settings)
    static = model.generate(
        **features(batch_size), **settings, cache_implementation="static", disable_compile=True
    )
    assert steps[0] == (batch_size * num_beams, 1) and len(steps) == 24  # the static cache ran every step
    assert plain.shape == (batch_size, 25)
    assert torch.equal(static, plain)


def count_prepacked_products(monkeypatch) -> list:
    """Spy on the step's prepacked products: one list entry per product."""
    calls = []
    product = compiled_generation.prepacked_linear
    monkeypatch.setattr(
        compiled_generation, "prepacked_linear", lambda *args: calls.append(1) or product(*args)
    )
    return calls


def test_the_eager_cpu_step_multiplies_by_prepacked_weights(model, monkeypatch):
    """Every projection of every step (6 a block and the LM head) uses the prepacked copies, same tokens."""
    calls = count_prepacked_products(monkeypatch)
    settings = {"num_beams": 2, "max_new_tokens": 20, "no_repeat_ngram_size": 3}
    plain = model.generate(**features(3), **settings)
    assert not calls  # plain `generate` keeps the model's own products
    static = model.generate(**features(3), **settings, cache_implementation="static", disable_compile=True)
    assert torch.equal(static, plain)
    assert len(calls) == 20 * (6 * model.config.decoder.n_layer + 1)


def test_without_onednn_the_step_uses_the_plain_weights(model, monkeypatch):
    """A build or dtype without prepacking (bf16, CUDA, no oneDNN) decodes with the modules' own products."""
    device = torch.device("cpu")
    assert compiled_generation.prepacks_weights(device, torch.float32) == torch.backends.mkldnn.is_available()
    assert not compiled_generation.prepacks_weights(device, torch.bfloat16)
    assert not compiled_generation.prepacks_weights(torch.device("cuda"), torch.float32)
    calls = count_prepacked_products(monkeypatch)
    monkeypatch.setattr(compiled_generation, "prepacks_weights", lambda device, dtype: False)
    static = model.generate(**features(3), max_new_tokens=12, cache_implementation="static", disable_compile=True)
    assert not calls
    assert torch.equal(static, model.generate(**features(3), max_new_tokens=12))


def test_prepacked_weights_follow_the_models_weights(model):
    """The copies are kept between calls and made again when a weight changes in place (a training step, a load)
    or the step's row count changes. Oracle: plain `generate` of the changed model. A copy of a model that has
    decoded (oneDNN's packed tensors cannot be copied) and a pickle of it leave them behind."""
    model.generate(**features(3), cache_implementation="static", disable_compile=True, max_new_tokens=4)
    model = copy.deepcopy(model)
    pickle.loads(pickle.dumps(model))
    static = {"cache_implementation": "static", "disable_compile": True, "max_new_tokens": 16}
    model.generate(**features(3), **static)
    decoder = model.__dict__["_static_decoders"][(2, None)]  # 2 beams, not compiled
    packed = decoder.packed
    assert packed.rows == 4 * 2  # 3 examples padded to the bucket of 4, 2 beams
    model.generate(**features(4, seed=1), **static)
    assert decoder.packed is packed  # same weights, same bucket: not packed again
    with torch.no_grad():
        model.decoder.lm_head.weight.mul_(-1.0)  # tied to the input embedding: a training step's in-place update
        model.decoder.transformer.h[0].mlp.c_fc.weight.mul_(0.5)
    changed = model.generate(**features(3), **static)
    assert decoder.packed is not packed
    assert torch.equal(changed, model.generate(**features(3), max_new_tokens=16))
    model.generate(**features(5), **static)
    assert decoder.packed.rows == 8 * 2
    model.double()  # a dtype the step does not prepack: the float32 copies are let go
    model.generate(**{key: value.double() if value.is_floating_point() else value
                      for key, value in features(5).items()}, **static)  # fmt: skip
    assert decoder.packed is None


def test_static_cache_is_an_option_of_the_generation_config(model, monkeypatch):
    steps = []
    decode = StaticDecodingCache.decode
    monkeypatch.setattr(
        StaticDecodingCache, "decode", lambda self, ids: steps.append(ids.shape) or decode(self, ids)
    )
    plain = model.generate(**features(2), max_new_tokens=12)
    assert not steps  # the default stays plain `generate`
    monkeypatch.setattr(model.generation_config, "cache_implementation", "static")
    monkeypatch.setattr(model.generation_config, "disable_compile", True)
    assert torch.equal(model.generate(**features(2), max_new_tokens=12), plain)
    assert len(steps) == 12


def test_a_generation_config_asking_for_the_static_cache_decodes_without_a_deprecation_warning(model, monkeypatch):
    """Session 26's audit: the static path added `cache_implementation=None` to a call that gave a generation_config,
    which transformers deprecates with a warning on every call. Oracle: the same config's plain decoding."""
    import io
    import logging

    from transformers.utils import logging as hf_logging
    from transformers.utils.logging import warning_once

    config = model.generation_config.__class__.from_dict(model.generation_config.to_dict())
    config.update(max_new_tokens=12, cache_implementation="static", disable_compile=True)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    hf_logging.get_logger("transformers").addHandler(handler)
    try:
        warning_once.cache_clear()  # transformers says it once per process: here, whatever ran before
        static = model.generate(**features(2), generation_config=config)
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    assert "deprecated" not in stream.getvalue()
    assert config.cache_implementation == "static"  # the caller's config is left as given
    config.cache_implementation = None
    assert torch.equal(static, model.generate(**features(2), generation_config=config))


def test_static_cache_with_generation_config_none_is_plain_generate_with_a_static_cache(model):
    """Session 26's review: `generate(generation_config=None, cache_implementation="static")` failed on None."""
    plain = model.generate(**features(2), max_new_tokens=6)
    static = model.generate(
        **features(2), generation_config=None, max_new_tokens=6, cache_implementation="static", disable_compile=True
    )
    assert torch.equal(static, plain)


def test_static_cache_refuses_padded_prompts_and_gated_decoders(model, tokenizer):
    prompt = torch.tensor([[tokenizer.eos_token_id, 5], [tokenizer.eos_token_id, 6]])
    with pytest.raises(ValueError, match="unpadded prompts"):
        model.generate(**features(2), input_ids=prompt, attention_mask=torch.tensor([[0, 1], [1, 1]]),
                       max_new_tokens=4, cache_implementation="static")  # fmt: skip
    special = tokenizer.eos_token_id
    llama = LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                        intermediate_size=64, vocab_size=len(tokenizer), bos_token_id=special,
                        eos_token_id=special, pad_token_id=special)  # fmt: skip
    gated = PC2LForConditionalGeneration(
        PC2LConfig(
            decoder=llama.to_dict(),
            image_feature_dim=FEATURE_DIM,
            review_feature_dim=FEATURE_DIM,
            encoder_layers=1,
            encoder_attention_heads=2,
            encoder_ffn_dim=64,
        )  # fmt: skip
    ).eval()
    with pytest.raises(ValueError, match="GPT-2 decoder"):
        gated.generate(**features(2), max_new_tokens=4, cache_implementation="static")


@pytest.mark.slow
@pytest.mark.parametrize("no_repeat_ngram_size", [0, 3])
def test_compiled_step_gives_the_tokens_of_plain_generate_and_compiles_once_per_bucket(
    model, no_repeat_ngram_size
):
    settings = {"num_beams": 2, "max_new_tokens": 24, "no_repeat_ngram_size": no_repeat_ngram_size}
    # On CPU the step is compiled only when a compile_config asks for it.
    static = {
        "cache_implementation": "static",
        "compile_config": CompileConfig(fullgraph=True, mode="default"),
    }
    compiled = model.generate(**features(4), **settings, **static)
    assert any(decoder.compiled is not None for decoder in model.__dict__["_static_decoders"].values())
    assert torch.equal(compiled, model.generate(**features(4), **settings))
    # Another batch size, input count and length in the same buckets (4 examples, 8 inputs): no new compilation.
    other = features(3, num_images=5, seed=1)
    with torch.compiler.set_stance("fail_on_recompile"):
        compiled = model.generate(**other, **(settings | {"max_new_tokens": 30}), **static)
    assert torch.equal(compiled, model.generate(**other, **(settings | {"max_new_tokens": 30})))
