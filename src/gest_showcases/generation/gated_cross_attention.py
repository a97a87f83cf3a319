"""Gated cross-attention (Flamingo, Alayrac et al. 2022) that lets a causal LM without cross-attention attend to
PC2L's multimodal encoder.

GPT-2 has cross-attention of its own (`add_cross_attention`); the decoders of the Llama layout (Llama, SmolLM2,
Mistral, Qwen, Gemma, ...) have none. Before chosen decoder layers a [`PC2LGatedCrossAttentionBlock`] runs on the
layer's input: cross-attention to the encoder states, then a feed-forward, each added to the residual stream
through `tanh(gate)` with the gate starting at 0. At initialisation every block adds exactly 0, so the model's
logits are the pretrained LM's, and training opens the gates. With `gate="none"` (`PC2LConfig.cross_attention_gate`)
the outputs are added as they are, as the paper inserts cross-attention into GPT-2: a fresh block then changes the
LM's outputs from the start.

How the blocks are inserted: each block becomes a child module `cross_attention` of its decoder layer, and a
forward pre-hook registered on that layer instance runs it on the layer's input. Neither transformers' classes nor
the decoder's module tree are replaced, so
- the decoder keeps its own class and parameter names: a pretrained LM's state dict loads into it as is (the
  blocks are the only extra keys), and LoRA targets the decoder's usual names (`layers.3.self_attn.q_proj`);
- activation checkpointing keeps working: transformers checkpoints a layer's `forward`, hooks stay outside it,
  and the block, a `GradientCheckpointingLayer` called with positional tensors, is checkpointed on its own.
  (transformers 5.17 checkpoints a layer's `__call__`, hooks included, so the encoder states reach the
  checkpoint as keyword arguments: there the default non-reentrant checkpointing works, `use_reentrant=True`
  does not);
- the hooks are plain functions of the module they are called with, so `copy.deepcopy` and pickling keep them
  pointing at the right (copied) block.
A wrapper module around each layer (block, layer) would have renamed every parameter of the wrapped layers.

The encoder states reach the layers as keyword arguments of the decoder's forward (`cross_key_values`,
`cross_attention_mask`), which the Llama-layout models pass on to every layer; the hook takes them out before the
layer runs. The keys and values of every block are one linear map of the encoder states, computed by the caller
(`PC2LForConditionalGeneration`) once per forward, and once per `generate` call rather than at every step:
GPT-2's cross-attention cache does the same.

This file imports only torch and transformers, so `save_pretrained` can ship it with `modeling_pc2l.py`.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

# Width of each block's feed-forward, as a multiple of the hidden size (Flamingo's `ff_mult`).
FEED_FORWARD_MULTIPLE = 4
# The decoder keyword arguments that carry the encoder states to the layers.
CROSS_KEY_VALUES, CROSS_ATTENTION_MASK = "cross_key_values", "cross_attention_mask"


class PC2LTanhGate(nn.Module):
    """`tanh(weight) * x`, `weight` a learned scalar that starts at 0: the gated path adds nothing until trained.

    A module rather than a bare parameter of the block, so that peft can train the gates fully
    (`modules_to_save`) while the block's projections get LoRA.
    """

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.weight.tanh() * hidden_states


class PC2LGatedCrossAttentionBlock(GradientCheckpointingLayer):
    """Tanh-gated cross-attention to the encoder states, then a tanh-gated feed-forward (pre-LayerNorm); with
    `gate="none"` both are added ungated.

    The keys and values come precomputed (see the module docstring): block `index` reads its slice
    `[index * 2 * D, (index + 1) * 2 * D)` of the last axis of `cross_key_values`.

    Args:
        hidden_size (`int`): the decoder's hidden size `D`.
        num_heads (`int`): attention heads; `D / num_heads` per head.
        index (`int`): which slice of `cross_key_values` this block reads.
        gate (`str`, *optional*, defaults to `"tanh"`): `"tanh"` ([`PC2LTanhGate`]s that start closed) or `"none"`.
    """

    def __init__(self, hidden_size: int, num_heads: int, index: int, gate: str = "tanh"):
        super().__init__()
        if gate not in ("tanh", "none"):  # `PC2LConfig.cross_attention_gate`'s values (the config checks them too)
            raise ValueError(f"gate must be 'tanh' or 'none', got {gate!r}")
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.index = index
        self.attention_layer_norm = nn.LayerNorm(hidden_size)
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        # Built in the same order either way, so one seed draws the same projections with and without gates.
        self.attention_gate = PC2LTanhGate() if gate == "tanh" else nn.Identity()
        self.mlp_layer_norm = nn.LayerNorm(hidden_size)
        self.fc1 = nn.Linear(hidden_size, FEED_FORWARD_MULTIPLE * hidden_size, bias=False)
        self.fc2 = nn.Linear(FEED_FORWARD_MULTIPLE * hidden_size, hidden_size, bias=False)
        self.mlp_gate = PC2LTanhGate() if gate == "tanh" else nn.Identity()

    def forward(
        self, hidden_states: torch.Tensor, cross_key_values: torch.Tensor, cross_attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """`hidden_states` [B, L, D]; `cross_key_values` [B, N, blocks * 2 * D] (every block's keys and values);
        `cross_attention_mask` [B, 1, 1, N] additive (0 for an input, the dtype's minimum for padding) or None."""
        batch, length, width = hidden_states.shape
        # [B, L, D] -> [B, heads, L, D / heads]
        query = self.q_proj(self.attention_layer_norm(hidden_states))
        query = query.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        # [B, N, blocks * 2 * D] -> [B, N, blocks, 2, heads, D / heads] -> 2 x [B, heads, N, D / heads]
        key_values = cross_key_values.unflatten(-1, (-1, 2, self.num_heads, self.head_dim))[:, :, self.index]
        key, value = key_values.permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=cross_attention_mask)
        # [B, heads, L, D / heads] -> [B, L, D]
        attended = attended.transpose(1, 2).reshape(batch, length, width)
        hidden_states = hidden_states + self.attention_gate(self.o_proj(attended))
        feed_forward = self.fc2(F.gelu(self.fc1(self.mlp_layer_norm(hidden_states))))
        return hidden_states + self.mlp_gate(feed_forward)


def _cross_inputs(kwargs: dict) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Take the encoder inputs out of a decoder layer's keyword arguments, so the layer itself never sees them."""
    if CROSS_KEY_VALUES not in kwargs:
        # A decoder that does not pass its keyword arguments on to its layers would silently skip the blocks.
        raise TypeError(
            f"a decoder layer with gated cross-attention was called without `{CROSS_KEY_VALUES}`: run the decoder "
            f"through PC2LForConditionalGeneration (its forward passes them, None to skip the blocks)"
        )
    return kwargs.pop(CROSS_KEY_VALUES), kwargs.pop(CROSS_ATTENTION_MASK, None)


def _cross_attend_before_layer(layer: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of a decoder layer with a block: the block runs on the layer's input hidden states."""
    cross_key_values, cross_attention_mask = _cross_inputs(kwargs)
    if cross_key_values is None:  # decoding without encoder states (e.g. the text-only contrastive pass)
        return args, kwargs
    hidden_states = layer.cross_attention(args[0], cross_key_values, cross_attention_mask)
    return (hidden_states, *args[1:]), kwargs


def _drop_cross_inputs(layer: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of a decoder layer without a block: it only removes the encoder inputs."""
    _cross_inputs(kwargs)
    return args, kwargs


def decoder_layers(decoder: nn.Module) -> nn.ModuleList:
    """The decoder layers of a causal LM of the Llama layout (`<base model>.layers`); a `ValueError` otherwise."""
    layers = decoder.base_model._modules.get("layers")
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(
            f"PC2L inserts gated cross-attention before the decoder layers kept at `<base model>.layers` (the Llama "
            f"layout); {type(decoder).__name__} ({decoder.config.model_type}) keeps none there"
        )
    return layers


def add_gated_cross_attention(
    decoder: nn.Module, block_layers: tuple[int, ...], num_heads: int, gate: str = "tanh"
) -> None:
    """Insert a [`PC2LGatedCrossAttentionBlock`] (with `gate`) before each decoder layer in `block_layers`, in place.

    Every layer gets a pre-hook (layers without a block one that only drops the encoder inputs). Block `k` (the
    `k`-th of `block_layers`) reads slice `k` of the `cross_key_values` passed to the decoder's forward.
    """
    hidden_size = decoder.config.hidden_size
    block_of_layer = {layer_index: block for block, layer_index in enumerate(block_layers)}
    for index, layer in enumerate(decoder_layers(decoder)):
        if index in block_of_layer:
            layer.cross_attention = PC2LGatedCrossAttentionBlock(
                hidden_size, num_heads, block_of_layer[index], gate
            )
            layer.register_forward_pre_hook(_cross_attend_before_layer, with_kwargs=True)
        else:
            layer.register_forward_pre_hook(_drop_cross_inputs, with_kwargs=True)


def cross_attention_bias(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """An input mask [B, N] (true for real inputs) as the blocks' additive attention mask [B, 1, 1, N].

    Padding gets the dtype's minimum rather than -inf, as GPT-2's cross-attention does, so an example without any
    input attends uniformly instead of producing NaN.
    """
    if mask is None:
        return None
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask.bool(), torch.finfo(dtype).min)
    return bias[:, None, None, :]


__all__ = [
    "PC2LGatedCrossAttentionBlock",
    "PC2LTanhGate",
    "add_gated_cross_attention",
    "cross_attention_bias",
    "decoder_layers",
]
