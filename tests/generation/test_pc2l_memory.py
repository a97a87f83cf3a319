"""PC2L's GPT-2 decoder runs its "gelu_new" activation as PyTorch's one tanh-GELU kernel (`_fuse_tanh_gelu`), which
keeps less for backward than transformers' seven-op `NewGELUActivation` (issue 18's memory accounting).

Oracle: the same model with transformers' `NewGELUActivation` put back in every MLP: losses agree to 1e-5 and
every parameter's gradient to 1e-5 of its largest entry (the kernel rounds differently: about 1e-6 here), and it
saves more for backward.
"""

import pytest
import torch
from pc2l_fixtures import FEATURE_DIM, build_tokenizer, tiny_config
from transformers.activations import GELUTanh, NewGELUActivation

from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.generation.losses import total_loss

LENGTH = 12


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def _model_and_batch(tokenizer):
    config = tiny_config(tokenizer, image_contrastive="ccl", review_contrastive="pcl")
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(config).train()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(2, len(tokenizer), (4, LENGTH), generator=generator)
    negatives = ids.clone()
    negatives[:, 3] = (ids[:, 3] + 1) % len(tokenizer)
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": ids,
        "negative_input_ids": negatives,
        "negative_attention_mask": torch.ones_like(ids),
        "image_features": torch.randn(4, 3, FEATURE_DIM, generator=generator),
        "image_mask": torch.ones(4, 3, dtype=torch.bool),
        "review_features": torch.randn(4, 2, FEATURE_DIM, generator=generator),
        "review_mask": torch.ones(4, 2, dtype=torch.bool),
    }
    return model, batch


def _step(model, batch):
    """Loss parts, every parameter's gradient and the bytes saved for backward (distinct storages, parameters'
    own not counted) of one forward + backward."""
    model.zero_grad(set_to_none=True)
    parameter_storages = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameter_storages:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss, parts = total_loss(model.config, model(**batch), batch)
    loss.backward()
    gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters()
                 if parameter.grad is not None}  # fmt: skip
    return {name: part.detach() for name, part in parts.items()}, gradients, sum(saved.values())


def _mlp_activations(model):
    return [block.mlp.act for block in model.decoder.transformer.h]


def test_gpt2_decoder_runs_the_fused_tanh_gelu(tokenizer):
    model, _ = _model_and_batch(tokenizer)
    assert model.config.decoder.activation_function == "gelu_new"  # the config (and checkpoints) unchanged
    assert all(type(act) is GELUTanh for act in _mlp_activations(model))
    assert not any(isinstance(module, NewGELUActivation) for module in model.modules())


def test_fused_gelu_keeps_losses_and_gradients_and_saves_less(tokenizer):
    model, batch = _model_and_batch(tokenizer)
    fused_parts, fused_gradients, fused_saved = _step(model, batch)
    for block in model.decoder.transformer.h:
        block.mlp.act = NewGELUActivation()
    parts, gradients, saved = _step(model, batch)

    assert fused_parts.keys() == parts.keys() == {"loss_ce", "loss_ccl", "loss_pcl"}
    for name in parts:
        torch.testing.assert_close(fused_parts[name], parts[name], rtol=1e-5, atol=1e-5)
    assert fused_gradients.keys() == gradients.keys()
    for name, gradient in gradients.items():
        # To 1e-5 of the tensor's largest entry: the kernel rounds differently (bias gradients sum many tokens).
        scale = gradient.abs().max().item()
        torch.testing.assert_close(fused_gradients[name], gradient, rtol=1e-5, atol=1e-5 * scale, msg=name)
    # NewGELU keeps 0.5 * x, tanh(...) and 1 + tanh(...) of every MLP's [2B, L, 4D] besides x: 3 x 2 layers.
    mlp_tensor_bytes = 2 * 4 * LENGTH * 4 * model.config.decoder.n_embd * 4  # [2B, L, 4D] float32
    assert saved - fused_saved == 3 * model.config.decoder.n_layer * mlp_tensor_bytes
