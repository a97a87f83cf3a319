"""PC2L: a multimodal encoder over image and history-review features and a causal-LM decoder that cross-attends
to it.

Section 4.2 of the paper: image features `V` and history-review features `R` are projected by `W^V`, `W^R`
(eq. 2), encoded together by stacked self-attention layers (eq. 3, the multimodal attention "MMA"), and GPT-2
decodes the explanation with cross-attention to `[H^V; H^R]` (eq. 4). Section 4.3: projection heads `phi_V`,
`phi_R`, `phi_Y` (eq. 6) give the embeddings of the contrastive losses (in `losses.py`).

Beyond the paper, the decoder may be any causal LM of the Llama layout (SmolLM2, Llama, Qwen, ...), which
attends to `[H^V; H^R]` through gated cross-attention blocks (`gated_cross_attention.py`) that leave the LM's
outputs unchanged at initialisation (with the default tanh gates; `cross_attention_gate="none"` adds them ungated).

This file imports only torch, transformers and its sibling files (relatively), so `save_pretrained` can ship them
for `AutoModel.from_pretrained(path, trust_remote_code=True)`.
"""

import copy
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    GenerationMixin,
    GPT2LMHeadModel,
    GPT2Model,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.activations import GELUTanh, NewGELUActivation
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput, logging
from transformers.utils.generic import can_return_tuple

from .compiled_generation import StaticDecodingCache, static_decoding_cache
from .configuration_pc2l import PC2LConfig, PC2LGenerationConfig
from .gated_cross_attention import (
    CROSS_ATTENTION_MASK,
    CROSS_KEY_VALUES,
    PC2LTanhGate,
    add_gated_cross_attention,
    cross_attention_bias,
    decoder_layers,
)

logger = logging.get_logger(__name__)

# Rows of the modality embedding table.
IMAGE_MODALITY, REVIEW_MODALITY = 0, 1

# transformers renamed the key/value cache `past_key_values` -> `cache` after 5.17; `generate` passes and reads the
# installed release's name. Supporting both lets checkpoints (and their shipped code) run on either, e.g. on
# machines pinned to 5.17. GPT-2 gets the cache positionally for the same reason.
CACHE_KEY = "cache" if "cache" in inspect.signature(GPT2Model.forward).parameters else "past_key_values"
# Decoder config entries that describe where a checkpoint came from or what a call returns, not its weights or
# computation: a decoder passed to `PC2LForConditionalGeneration(config, decoder=...)` may differ from
# `config.decoder` in these and nothing else.
DECODER_CONFIG_METADATA = frozenset(
    {
        "_name_or_path",
        "architectures",
        "transformers_version",
        "dtype",
        "torch_dtype",
        "quantization_config",
        "use_cache",
        "output_hidden_states",
        "output_attentions",
        "return_dict",
    }
)


def masked_mean(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of `hidden_states` [B, S, D] over the positions where `mask` [B, S] is true; [B, D].

    A float `mask` of weights summing to 1 per row gives their weighted average (`shown_photo_review_weights`)."""
    weights = mask.to(hidden_states.dtype).unsqueeze(-1)  # [B, S, 1]
    return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def shown_photo_review_weights(
    image_features: torch.Tensor,
    image_mask: torch.Tensor,
    review_features: torch.Tensor,
    review_mask: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Pooling weights [B, R] of the history reviews, `review_pooling="shown_photos"` (H33): a softmax over each
    example's unpadded reviews of `max_i cos(review_r, photo_i) / temperature` over its unpadded photos.

    Each row sums to 1 (uniform over the reviews when the example has no photo; all 0 when it has no review, as
    `masked_mean` of an empty mask). Computed from the input features, so it carries no gradient. The masks are the
    encoder's (true: a real photo or review).
    """
    images = F.normalize(image_features.float(), dim=-1)
    reviews = F.normalize(review_features.float(), dim=-1)
    image_mask, review_mask = image_mask.bool(), review_mask.bool()
    similarity = (reviews @ images.transpose(1, 2)).masked_fill(~image_mask[:, None, :], -torch.inf)  # [B, R, I]
    scores = torch.where(image_mask.any(1, keepdim=True), similarity.amax(-1) / temperature, 0.0)
    weights = scores.masked_fill(~review_mask, -torch.inf).softmax(-1)
    return torch.where(review_mask.any(1, keepdim=True), weights, 0.0).detach()  # (a row of -inf gave NaN)


def sequence_log_likelihood(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`log p(input_ids[1:] | ...)` [B] summed over the positions where `mask[:, 1:]` is true, in float32.

    `logits` [B, L, V] are the decoder's next-token scores over `input_ids` [B, L]; position t predicts t + 1.
    """
    log_probs = logits[:, :-1].float().log_softmax(-1)
    token_log_probs = log_probs.gather(-1, input_ids[:, 1:, None].to(log_probs.device)).squeeze(-1)  # [B, L - 1]
    return (token_log_probs * mask[:, 1:].to(token_log_probs.dtype)).sum(-1)


def add_relative_noise(features: torch.Tensor, scale: float) -> torch.Tensor:
    """`features + scale * |v| * e / sqrt(d)` per vector `v` (last dimension `d`), `e ~ N(0, I)` from torch's RNG.

    The noise's root-mean-square norm is `scale` times the vector's, so it means the same for features of any norm,
    and a zero (padding) vector stays zero; `PC2LConfig.image_feature_noise` documents why it exists.
    """
    norms = features.norm(dim=-1, keepdim=True)
    return features + scale * norms * torch.randn_like(features) / features.shape[-1] ** 0.5


def _pack_rows(selected: torch.Tensor, group_size: int, num_groups: int):
    """The positions `selected` [B, L] packed left-aligned into `num_groups` rows, row r holding examples
    `r * group_size ..` in order. Returns the selected `(example, position)` pairs, each one's `(row, slot)`, and
    the example of every slot [rows, width] (-1 for padding)."""
    example, position = selected.nonzero(as_tuple=True)  # by example, then position
    row = example // group_size
    counts = torch.bincount(row, minlength=num_groups)
    slot = torch.arange(example.numel(), device=selected.device) - (counts.cumsum(0) - counts)[row]
    slot_example = torch.full((num_groups, max(1, int(counts.max()))), -1, device=selected.device)
    slot_example[row, slot] = example
    return example, position, row, slot, slot_example


def _next_example(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """Row `i` becomes row `i + 1`'s (the last row gets the first's): a derangement of the batch for B > 1."""
    return None if tensor is None else tensor.roll(-1, dims=0)


def _fuse_tanh_gelu(decoder: PreTrainedModel) -> None:
    """GPT-2's activation ("gelu_new", the tanh approximation of GELU) as PyTorch's one kernel (`GELUTanh`).

    transformers' `NewGELUActivation` composes it of seven tensor ops and keeps three of their [B, L, 4D] results
    for backward besides its input: a quarter of what a PC2L training step saves at GPT-2-small size (issue 18).
    The kernel computes the same function (to 5e-7, rounding); it has no weights, so checkpoints are unchanged.
    """
    for module in decoder.modules():
        for name, child in module.named_children():
            if type(child) is NewGELUActivation:
                setattr(module, name, GELUTanh())


def _drop_gguf_quantization(decoder: PreTrainedModel) -> None:
    """Mark a decoder loaded from a GGUF file, whose weights transformers dequantised, as the plain float model it
    is: a PC2L checkpoint must claim no GGUF quantisation, and nothing may treat the decoder as quantised."""
    quantizer = getattr(decoder, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(decoder)  # the config's `quantization_config` included
    elif hasattr(decoder.config, "quantization_config"):  # releases that load GGUF files without a quantizer
        del decoder.config.quantization_config


class PC2LEncoderLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm transformer layer: bidirectional self-attention over the input tokens, then a feed-forward.

    A `GradientCheckpointingLayer`: with activation checkpointing on, its activations are recomputed in the backward
    pass (it is called with positional tensors, as that requires).
    """

    def __init__(self, config: PC2LConfig):
        super().__init__()
        width = config.encoder_width
        eps = config.encoder_layer_norm_eps
        self.num_heads = config.encoder_attention_heads
        self.dropout = config.encoder_dropout
        self.self_attn_layer_norm = nn.LayerNorm(width, eps=eps)
        self.qkv_proj = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)
        self.final_layer_norm = nn.LayerNorm(width, eps=eps)
        self.fc1 = nn.Linear(width, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, width)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`hidden_states` [B, S, D]; `attention_mask` [B, 1, 1, S] boolean, true where a key may be attended.

        Returns the new hidden states and, with `output_attentions`, the attention weights [B, heads, S, S]
        (computed in eager mode then: scaled dot-product attention keeps none).
        """
        batch, length, width = hidden_states.shape
        qkv = self.qkv_proj(self.self_attn_layer_norm(hidden_states))
        # [B, S, 3 * D] -> 3 x [B, heads, S, D / heads]
        query, key, value = qkv.view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        attention_weights = None
        if output_attentions:
            scores = (query @ key.transpose(-1, -2)) * query.shape[-1] ** -0.5
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
            attention_weights = F.dropout(scores.softmax(-1), self.dropout, self.training)
            attended = attention_weights @ value
        else:
            attended = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_mask, dropout_p=self.dropout if self.training else 0.0
            )
        # [B, heads, S, D / heads] -> [B, S, D]
        attended = attended.transpose(1, 2).reshape(batch, length, width)
        hidden_states = hidden_states + F.dropout(self.out_proj(attended), self.dropout, self.training)
        feed_forward = self.fc2(F.gelu(self.fc1(self.final_layer_norm(hidden_states))))
        return hidden_states + F.dropout(feed_forward, self.dropout, self.training), attention_weights


@dataclass
class PC2LEncoderOutput(ModelOutput):
    """
    Output of [`PC2LEncoder`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_inputs, hidden_size)`):
            `[H^V; H^R]` in the decoder's width `hidden_size`.
        attention_mask (`torch.BoolTensor` of shape `(batch_size, num_inputs)`):
            True for the real inputs, false for padding.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            `encoder_layers + 1` tensors: the input of every layer (the first is the projected features plus their
            modality embeddings), each of shape `(batch_size, num_inputs, encoder_width)`, then
            `last_hidden_state` (after the final LayerNorm and, when the widths differ, the projection to the
            decoder's), as GPT-2's last hidden state is after its final LayerNorm.
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
            Every layer's attention weights after the softmax, of shape
            `(batch_size, encoder_attention_heads, num_inputs, num_inputs)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    attention_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class PC2LEncoder(nn.Module):
    """`W^V`, `W^R` (eq. 2) and the multimodal self-attention encoder (eq. 3).

    The inputs are sets (a user's photos, a user's other reviews), so there are no position embeddings: only a
    learned modality embedding tells image tokens from review tokens. An encoder narrower or wider than the decoder
    (`config.encoder_hidden_size`) ends with a linear map to the decoder's width.
    """

    def __init__(self, config: PC2LConfig):
        super().__init__()
        self.config = config
        width = config.encoder_width
        if config.uses_images:
            self.image_projection = nn.Linear(config.image_feature_dim, width)
        if config.uses_reviews:
            self.review_projection = nn.Linear(config.review_feature_dim, width)
        self.modality_embeddings = nn.Embedding(2, width)
        self.layers = nn.ModuleList(PC2LEncoderLayer(config) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(width, eps=config.encoder_layer_norm_eps)
        decoder_width = config.decoder.hidden_size
        # An identity (no weights, so checkpoints of equal widths are unchanged) when the widths agree.
        self.output_projection = nn.Linear(width, decoder_width) if width != decoder_width else nn.Identity()

    def _checked_features(self, features: torch.Tensor, name: str, width_field: str) -> torch.Tensor:
        """`features` [B, N, config.<width_field>], cast to the encoder's dtype (a bf16 model reads fp32 features,
        as transformers' vision-language models cast their pixel values); ValueError naming the field otherwise."""
        width = getattr(self.config, width_field)
        if features.dim() != 3 or features.shape[-1] != width:
            raise ValueError(
                f"{name} must be [batch, items, {width}] (config.{width_field}), got shape {tuple(features.shape)}"
            )
        dtype = self.modality_embeddings.weight.dtype
        return features.to(dtype) if features.is_floating_point() and features.dtype != dtype else features

    def forward(
        self,
        image_features: torch.Tensor | None,
        image_mask: torch.Tensor | None,
        review_features: torch.Tensor | None,
        review_mask: torch.Tensor | None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> PC2LEncoderOutput:
        """`[H^V; H^R]` [B, N_img + N_rev, D] (D the decoder's width), its padding mask (bool) and, when asked for,
        every layer's hidden states and attention weights."""
        tokens, masks = [], []
        if self.config.uses_images:
            if image_features is None:
                raise ValueError(f"input_mode={self.config.input_mode!r} needs image_features")
            image_features = self._checked_features(image_features, "image_features", "image_feature_dim")
            if image_mask is None:  # no padding: every image is real
                image_mask = image_features.new_ones(image_features.shape[:2], dtype=torch.bool)
            tokens.append(
                self.image_projection(image_features) + self.modality_embeddings.weight[IMAGE_MODALITY]
            )
            masks.append(image_mask.bool())
        if self.config.uses_reviews:
            if review_features is None:
                raise ValueError(f"input_mode={self.config.input_mode!r} needs review_features")
            review_features = self._checked_features(review_features, "review_features", "review_feature_dim")
            if image_features is not None and self.config.uses_images and len(review_features) != len(image_features):
                raise ValueError(
                    f"image_features hold {len(image_features)} examples and review_features {len(review_features)}"
                )
            if review_mask is None:  # no padding: every review is real
                review_mask = review_features.new_ones(review_features.shape[:2], dtype=torch.bool)
            tokens.append(
                self.review_projection(review_features) + self.modality_embeddings.weight[REVIEW_MODALITY]
            )
            masks.append(review_mask.bool())
        hidden_states = F.dropout(torch.cat(tokens, dim=1), self.config.encoder_dropout, self.training)
        mask = torch.cat(masks, dim=1)
        attention_mask = mask[:, None, None, :]  # [B, 1, 1, S]: every query sees the unpadded keys
        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            hidden_states, attention_weights = layer(
                hidden_states, attention_mask, output_attentions=output_attentions
            )
            if output_attentions:
                all_attentions += (attention_weights,)
        hidden_states = self.output_projection(self.layer_norm(hidden_states))
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        return PC2LEncoderOutput(
            last_hidden_state=hidden_states,
            attention_mask=mask,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


class PC2LProjectionHead(nn.Module):
    """`phi` of eq. 6: average pooling over the unpadded hidden states, then two fully connected layers with ReLU."""

    def __init__(self, width: int, projection_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, projection_dim)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`hidden_states` [B, S, D], `mask` [B, S] -> [B, projection_dim]."""
        return self.fc2(F.relu(self.fc1(masked_mean(hidden_states, mask))))


@dataclass
class PC2LOutput(ModelOutput):
    """
    Output of [`PC2LForConditionalGeneration`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Language-modelling cross-entropy, the mean over the target tokens (`L_CE`, eq. 5).
        logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
            Next-token scores of the targets (never of the hard negatives).
        cache (`Cache`, *optional*, returned when `use_cache=True`):
            The decoder's self- and cross-attention key/value cache.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True` is passed or
        when `config.output_hidden_states=True`):
            The decoder's hidden states over the targets (never the hard negatives'), as the decoder returns them:
            the input of its first layer, then every layer's output, the last one after the decoder's final norm
            (what the LM head reads): `config.decoder.num_hidden_layers + 1` tensors of shape
            `(batch_size, sequence_length, hidden_size)`. Named as in the decoder-only outputs of transformers
            (`CausalLMOutputWithCrossAttentions`), since `generate` runs PC2L on that route and reads these names.
            For a gated decoder the first is the first layer's input after the gated block in front of it (the
            embeddings while its gates are closed); the other entries are layer outputs, before the next block.
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True` is passed or when
        `config.output_attentions=True`):
            The decoder's self-attention weights over the targets, one tensor per layer, of shape
            `(batch_size, num_attention_heads, sequence_length, sequence_length)`. Needs the decoder's `"eager"`
            attention implementation (the others keep no weights): a `ValueError` otherwise.
        cross_attentions (`tuple(torch.FloatTensor)`, *optional*, returned with `attentions`):
            GPT-2 decoders: the weights of every layer's cross-attention to `[H^V; H^R]`, of shape
            `(batch_size, num_attention_heads, sequence_length, num_inputs)`. Not available for a gated decoder,
            whose blocks attend with scaled dot-product attention and keep no weights: `None` there, with a
            warning.
        encoder_last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_inputs, hidden_size)`, *optional*):
            `[H^V; H^R]` when the encoder ran in this call.
        encoder_attention_mask (`torch.BoolTensor` of shape `(batch_size, num_inputs)`, *optional*):
            Its padding mask.
        encoder_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned with `hidden_states` when the encoder
        ran in this call):
            The multimodal encoder's hidden states, `config.encoder_layers + 1` tensors (see [`PC2LEncoderOutput`]).
        encoder_attentions (`tuple(torch.FloatTensor)`, *optional*, returned with `attentions` when the encoder ran in
        this call):
            The multimodal encoder's attention weights, one tensor per layer, of shape
            `(batch_size, encoder_attention_heads, num_inputs, num_inputs)`.
        image_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*):
            `phi_V(H^V)`, returned with `labels` when `config.image_contrastive != "none"`.
        review_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*):
            `phi_R(H^R)`, returned with `labels` when `config.review_contrastive != "none"`.
        target_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*):
            `phi_Y(H^Y)` of the targets, returned with `labels` when a contrastive loss is on.
        negative_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*):
            `phi_Y(H^Y_ent)` of the entity-swapped hard negatives, returned when `negative_input_ids` is given.
        target_log_likelihood (`torch.FloatTensor` of shape `(batch_size,)`, *optional*):
            With `config.contrastive_score="likelihood"` and labels: `log p(Y_i | X_i)`, summed over the target
            tokens. The three fields below are the same sum for the losses' negatives.
        negative_log_likelihood (`torch.FloatTensor` of shape `(batch_size,)`, *optional*):
            `log p(Y_ent_i | X_i)`, the entity-swapped target under the example's own inputs (CCL).
        image_swapped_log_likelihood (`torch.FloatTensor` of shape `(batch_size,)`, *optional*):
            `log p(Y_i | V_{i+1}, R_i)`: the target under the next example's photos (image loss on, and
            `likelihood_image_negatives="all"`).
        review_swapped_log_likelihood (`torch.FloatTensor` of shape `(batch_size,)`, *optional*):
            `log p(Y_i | V_i, R_{i+1})`: the target under the next example's history reviews (review loss on).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_attention_mask: torch.BoolTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    image_embeds: torch.FloatTensor | None = None
    review_embeds: torch.FloatTensor | None = None
    target_embeds: torch.FloatTensor | None = None
    negative_embeds: torch.FloatTensor | None = None
    target_log_likelihood: torch.FloatTensor | None = None
    negative_log_likelihood: torch.FloatTensor | None = None
    image_swapped_log_likelihood: torch.FloatTensor | None = None
    review_swapped_log_likelihood: torch.FloatTensor | None = None


class PC2LPreTrainedModel(PreTrainedModel):
    config: PC2LConfig
    config_class = PC2LConfig
    # As in transformers' `EncoderDecoderModel` ("encoder_decoder") and `VisionEncoderDecoderModel`: the model is its
    # own base model (`base_model` is the model, `get_encoder()` / `get_decoder()` its `encoder` / `decoder`), so the
    # prefix names the architecture, not an attribute. There is no head-less PC2L whose checkpoint keys would carry
    # or lack it, and no key starts with it, so `from_pretrained` loads every checkpoint's keys as they are.
    base_model_prefix = "pc2l"
    main_input_name = "input_ids"
    # A decoder of another kind adds its own layer class (`_no_split_modules` of the nested model); the gated
    # cross-attention blocks live inside those layers.
    _no_split_modules = ["GPT2Block", "PC2LEncoderLayer"]
    _supports_sdpa = True
    # The decoder's layers, the gated cross-attention blocks and `PC2LEncoderLayer` are `GradientCheckpointingLayer`s.
    supports_gradient_checkpointing = True
    # A new model's generation config: the paper's decoding, saved with the model.
    generation_config_class = PC2LGenerationConfig
    # What `register_for_auto_class("AutoModel")` sets (a class attribute here, in this shared file): `save_pretrained`
    # ships the code for `AutoModel.from_pretrained(repo, trust_remote_code=True)`.
    _auto_class = "AutoModel"
    # `forward` returns a per-batch mean LM loss and takes no `num_items_in_batch`: the trainer adds per-batch-mean
    # contrastive losses to it and lets the Trainer divide the sum by the gradient-accumulation steps.
    accepts_loss_kwargs = False

    def initialize_weights(self) -> None:
        super().initialize_weights()
        # transformers initialises the decoder's modules with the decoder's own `_init_weights`, which knows nothing
        # of the gated blocks' tanh gates (a gate missing from a checkpoint would keep uninitialised memory). Closed
        # gates: a new block adds nothing to the decoder. `init` leaves loaded weights alone.
        for module in self.modules():
            if isinstance(module, PC2LTanhGate):
                init.zeros_(module.weight)


class PC2LForConditionalGeneration(PC2LPreTrainedModel, GenerationMixin):
    """
    The PC2L explanation generator: multimodal encoder + decoder with cross-attention + projection heads.

    The decoder is GPT-2 with its native cross-attention (the paper's model), or another causal LM (Llama layout)
    with gated cross-attention blocks before its layers (see `gated_cross_attention.py`), whose keys and values
    are one linear map `cross_attention_kv` of the encoder states.

    Like transformers' encoder-decoder models, it takes an already-built decoder (`decoder=`), e.g. a pretrained
    causal LM; [`~PC2LForConditionalGeneration.from_decoder_pretrained`] loads one and builds the model around it.

    Generation runs on the decoder-only route of `GenerationMixin`: [`~PC2LForConditionalGeneration.generate`]
    encodes the inputs once and passes `encoder_hidden_states` to every decoding step; GPT-2 caches their
    cross-attention keys and values after the first step, and for the gated blocks `generate` computes them once
    (`cross_key_values`) before decoding.

    Example:

    ```python
    >>> import torch
    >>> config = PC2LConfig(decoder={"n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 300,
    ...                              "bos_token_id": 0, "eos_token_id": 1}, encoder_attention_heads=2,
    ...                     image_feature_dim=8, review_feature_dim=8)
    >>> model = PC2LForConditionalGeneration(config).eval()
    >>> ids = model.generate(image_features=torch.randn(2, 5, 8), image_mask=torch.ones(2, 5, dtype=torch.bool),
    ...                      review_features=torch.randn(2, 3, 8), review_mask=torch.ones(2, 3, dtype=torch.bool),
    ...                      num_beams=2, max_new_tokens=8)
    ```
    """

    def __init__(self, config: PC2LConfig, decoder: PreTrainedModel | None = None):
        r"""
        decoder ([`PreTrainedModel`], *optional*):
            An already-built causal LM to decode with, e.g. a pretrained one; its weights are kept. Its config must
            be `config.decoder` up to metadata (`DECODER_CONFIG_METADATA`), a `ValueError` otherwise, and becomes
            that very object, as in transformers' encoder-decoder models. GPT-2: a `GPT2LMHeadModel` built with
            `add_cross_attention=True`. Another causal LM (Llama layout): a bare one, into which the gated
            cross-attention blocks are inserted in place. When omitted, a decoder with random weights is built from
            `config.decoder`.
        """
        super().__init__(config)
        width = config.decoder.hidden_size
        if decoder is not None:
            self._check_decoder(decoder)
        self.encoder = PC2LEncoder(config)
        if config.uses_gated_cross_attention:
            if decoder is None:
                # In the dtype this model is being built in (`from_config` would otherwise take the config's own).
                decoder = AutoModelForCausalLM.from_config(config.decoder, dtype=torch.get_default_dtype())
            self.decoder = decoder
            block_layers = config.gated_cross_attention_layers
            add_gated_cross_attention(
                self.decoder, block_layers, config.decoder.num_attention_heads, config.cross_attention_gate
            )
            # Keys and values of every block in one matmul: [B, N, D] -> [B, N, blocks * 2 * D].
            self.cross_attention_kv = nn.Linear(width, len(block_layers) * 2 * width, bias=False)
        else:
            self.decoder = decoder if decoder is not None else GPT2LMHeadModel(config.decoder)
            _fuse_tanh_gelu(self.decoder)
        if self.decoder.config is not config.decoder:
            # One decoder config, so that what the model saves is what its decoder runs; the attention implementation
            # and the dtype are the ones the decoder was built (or loaded) with.
            config.decoder._attn_implementation = self.decoder.config._attn_implementation
            config.decoder.dtype = self.decoder.config.dtype
            self.decoder.config = config.decoder
        if config.uses_projection_heads:
            if config.image_contrastive != "none":
                self.image_head = PC2LProjectionHead(width, config.projection_dim)
            if config.review_contrastive != "none":
                self.review_head = PC2LProjectionHead(width, config.projection_dim)
            self.target_head = PC2LProjectionHead(width, config.projection_dim)
        self.post_init()

    def _check_decoder(self, decoder: PreTrainedModel) -> None:
        """A `ValueError` unless `decoder` is a model `__init__` can decode with as `config.decoder` describes."""
        expected = self.config.decoder
        if not self.config.uses_gated_cross_attention:
            if not isinstance(decoder, GPT2LMHeadModel):
                raise ValueError(
                    f"config.decoder is GPT-2's: the decoder must be a GPT2LMHeadModel, got {type(decoder).__name__}"
                )
            if not decoder.config.add_cross_attention:
                # Its blocks have no cross-attention layers then; they cannot be added afterwards.
                raise ValueError(
                    "PC2L's GPT-2 attends to the encoder with its own cross-attention: build the decoder with "
                    "add_cross_attention=True (e.g. GPT2LMHeadModel.from_pretrained(name, add_cross_attention=True))"
                )
        elif any(hasattr(layer, "cross_attention") for layer in decoder_layers(decoder)):
            raise ValueError(
                "the decoder already has gated cross-attention blocks (it is another PC2L model's): pass a bare "
                "causal LM"
            )
        given, described = (
            {key: value for key, value in decoder_config.to_dict().items() if key not in DECODER_CONFIG_METADATA}
            for decoder_config in (decoder.config, expected)
        )
        differing = sorted(key for key in given.keys() | described.keys() if given.get(key) != described.get(key))
        if differing:
            details = ", ".join(
                f"{key}={given.get(key)!r} (config.decoder: {described.get(key)!r})" for key in differing
            )
            raise ValueError(f"the decoder's config disagrees with config.decoder: {details}")

    @classmethod
    def from_decoder_pretrained(
        cls, decoder_name_or_path: str, gguf_file: str | None = None, **config_kwargs
    ) -> "PC2LForConditionalGeneration":
        """Build PC2L around a pretrained causal LM: GPT-2 (`"gpt2"`), or any LM of the Llama layout
        (`"HuggingFaceTB/SmolLM2-135M"`), as a Hub name or a local folder.

        The LM is loaded once, in the default dtype, and the model is built around it (`decoder=`). The encoder,
        the projection heads and the cross-attention (GPT-2's own layers, which the checkpoint lacks, or the gated
        blocks) start from random weights; at that point a gated model's logits are the LM's own (unless
        `cross_attention_gate="none"`). `config_kwargs`
        are the other [`PC2LConfig`] fields (e.g. `cross_attention_every_n_layers`).

        Args:
            decoder_name_or_path (`str`): the causal LM, a Hub repo id or a local folder.
            gguf_file (`str`, *optional*): a GGUF file in that folder or repo to load instead (transformers
                dequantises it to float weights; needs the `gguf` package).
        """
        # The config first: it checks `config_kwargs` before the weights load, and GPT-2 must be built with its
        # cross-attention layers (`add_cross_attention`, which PC2LConfig sets).
        decoder_config = AutoConfig.from_pretrained(decoder_name_or_path, gguf_file=gguf_file, trust_remote_code=False)
        config = PC2LConfig(decoder=decoder_config, **config_kwargs)
        decoder, loading_info = AutoModelForCausalLM.from_pretrained(
            decoder_name_or_path,
            config=config.decoder,
            gguf_file=gguf_file,
            dtype=torch.get_default_dtype(),
            output_loading_info=True,
            trust_remote_code=False,
        )
        if loading_info["unexpected_keys"]:
            unexpected = sorted(loading_info["unexpected_keys"])
            raise ValueError(f"{decoder_name_or_path} has weights PC2L's decoder lacks: {unexpected}")
        if gguf_file is not None:
            _drop_gguf_quantization(decoder)
        return cls(config, decoder=decoder)

    def get_input_embeddings(self) -> nn.Module:
        return self.decoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.decoder.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.decoder.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        # `resize_token_embeddings` (after adding a pad token) sets the LM head through here.
        self.decoder.set_output_embeddings(value)

    def encode(
        self,
        image_features: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        review_features: torch.Tensor | None = None,
        review_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the multimodal encoder: `[H^V; H^R]` [B, N_img + N_rev, D] and its mask [B, N_img + N_rev].

        Args:
            image_features (`torch.FloatTensor` of shape `(batch_size, num_images, image_feature_dim)`):
                Image features, padded; needed when `config.input_mode` has `"img"`.
            image_mask (`torch.BoolTensor` of shape `(batch_size, num_images)`, *optional*):
                True for real images; all true when omitted.
            review_features (`torch.FloatTensor` of shape `(batch_size, num_reviews, review_feature_dim)`):
                History-review features, padded; needed when `config.input_mode` has `"text"`.
            review_mask (`torch.BoolTensor` of shape `(batch_size, num_reviews)`, *optional*):
                True for real reviews; all true when omitted.
        """
        encoder_outputs = self.encoder(image_features, image_mask, review_features, review_mask)
        return encoder_outputs.last_hidden_state, encoder_outputs.attention_mask

    @can_return_tuple  # `return_dict=False` (or `config.return_dict=False`): a tuple, as every transformers model
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        image_features: torch.FloatTensor | None = None,
        image_mask: torch.Tensor | None = None,
        review_features: torch.FloatTensor | None = None,
        review_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.FloatTensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cross_key_values: torch.FloatTensor | None = None,
        negative_input_ids: torch.LongTensor | None = None,
        negative_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        contrastive_losses: bool = True,
        **kwargs,
    ) -> PC2LOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Target token ids (BOS, explanation, EOS, right padding).
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for target tokens, 0 for padding.
            image_features, image_mask, review_features, review_mask:
                Encoder inputs, see [`~PC2LForConditionalGeneration.encode`]. Ignored when `encoder_hidden_states`
                is given.
            encoder_hidden_states (`torch.FloatTensor` of shape `(batch_size, num_inputs, hidden_size)`, *optional*):
                Precomputed `[H^V; H^R]` (from `encode`), so decoding steps do not rerun the encoder.
            encoder_attention_mask (`torch.Tensor` of shape `(batch_size, num_inputs)`, *optional*):
                Their padding mask.
            cross_key_values (`torch.FloatTensor` of shape `(batch_size, num_inputs, num_blocks * 2 * hidden_size)`, *optional*):
                Gated decoders only: the keys and values of every gated cross-attention block,
                `cross_attention_kv(encoder_hidden_states)`, which `generate` computes once rather than at every
                step; computed here when omitted.
            negative_input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Entity-swapped hard negatives of the targets (CCL, eq. 8), padded to the targets' length. They go
                through the decoder in the same call as the targets (2B sequences), or with
                `config.hard_negative_gradients="detached"` (or `decoder_contrastive_gradients="none"`) in a call of
                their own without gradients, and get no LM loss.
            negative_attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                Their padding mask.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                LM labels, -100 where ignored; shifted inside the model (`labels = input_ids` works). With labels,
                what the configured contrastive losses read is returned too (unless `contrastive_losses=False`).
            logits_to_keep (`int`, *optional*, defaults to 0):
                Compute logits for the last `logits_to_keep` positions only (0: all).
            output_attentions (`bool`, *optional*):
                Return the attention weights of the decoder (`attentions`; GPT-2 also `cross_attentions`) and, when
                it runs, of the encoder (`encoder_attentions`); needs the decoder's `"eager"` attention. Defaults to
                `config.output_attentions`.
            output_hidden_states (`bool`, *optional*):
                Return the hidden states of the decoder (`hidden_states`) and, when it runs, of the encoder
                (`encoder_hidden_states`). Defaults to `config.output_hidden_states`.
            contrastive_losses (`bool`, *optional*, defaults to `True`):
                False: cross-entropy alone, with nothing the contrastive losses read computed (no projection
                embeddings, likelihoods, swapped copies, text-only pass or hard negatives); [`PC2LTrainer`]'s
                warm-up steps (`config.contrastive_warmup_ratio`).
        """
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        static_cache = kwargs.get("past_key_values", cache)  # the cache's name in older releases, see CACHE_KEY
        if isinstance(static_cache, StaticDecodingCache):
            if output_attentions or output_hidden_states:
                raise ValueError(
                    "the static-cache decoding step returns logits only: generate without "
                    "cache_implementation='static' for hidden states or attentions"
                )
            # `generate(..., cache_implementation="static")`: the cache runs the (compiled) decoding step itself.
            output = PC2LOutput(logits=static_cache.decode(input_ids), cache=static_cache)
            if CACHE_KEY != "cache":
                output[CACHE_KEY] = static_cache
            return output
        contrastive = (
            contrastive_losses
            and labels is not None
            and (self.config.image_contrastive != "none" or self.config.review_contrastive != "none")
        )
        compute_embeddings = contrastive and self.config.contrastive_score == "embedding"
        compute_likelihoods = contrastive and self.config.contrastive_score == "likelihood"
        if output_attentions and self.decoder.config._attn_implementation != "eager":
            raise ValueError(
                f"output_attentions needs the decoder's eager attention; its "
                f"{self.decoder.config._attn_implementation!r} attention keeps no weights: load the model with "
                f"attn_implementation='eager' or call model.set_attn_implementation('eager')"
            )
        encoder_ran = encoder_hidden_states is None
        swapped_states = []  # [(name, encoder states, mask)] of the likelihood losses' swapped inputs
        if encoder_ran:
            if self.training and self.config.image_feature_noise and image_features is not None:
                # Drawn once here, so the target, its hard negative and every swapped copy read the same noisy photos.
                image_features = add_relative_noise(image_features, self.config.image_feature_noise)
            encoder_inputs = (image_features, image_mask, review_features, review_mask)
            asked = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
            if compute_likelihoods:
                encoder_outputs, swapped_states = self._encode_with_swaps(*encoder_inputs, **asked)
            else:
                encoder_outputs = self.encoder(*encoder_inputs, **asked)
            encoder_hidden_states = encoder_outputs.last_hidden_state
            encoder_attention_mask = encoder_outputs.attention_mask
        elif contrastive:
            raise ValueError("the contrastive losses need the raw features, not encoder_hidden_states")

        cache = kwargs.pop("past_key_values", cache)  # the cache's name in older releases, see CACHE_KEY
        if use_cache is None and labels is not None:
            use_cache = False  # a loss computation never continues decoding
        batch_size = input_ids.shape[0]
        target_mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        text_target = compute_embeddings and self.config.contrastive_target == "text"
        # One decoder call over segments of B sequences: the targets, then (CCL) their hard negatives and
        # (likelihood score) the targets under swapped inputs, each segment cross-attending to its own states.
        segments = [(input_ids, target_mask, encoder_hidden_states, encoder_attention_mask)]
        hard_negatives = negative_input_ids is not None and (compute_likelihoods or compute_embeddings)
        # `hard_negative_gradients="detached"` (embedding score only, the config checks): the negatives get a decoder
        # call of their own without gradients (`_own_call_negative_states`), outside the batched one. So do they under
        # `decoder_contrastive_gradients="none"` (H23), whose decoder states get no contrastive gradient anyway: in
        # the batched call their backward pass would run on zeros.
        detached_negatives = hard_negatives and (
            self.config.hard_negative_gradients == "detached" or self.config.decoder_contrastive_gradients == "none"
        )
        # The options that take eq. 11's gradient apart (`generation/gradients.py`) run cross-entropy's backward pass
        # on its own: in the batched call it would run through the negatives' rows too, to a zero gradient (107 GFLOP
        # at GPT-2-small size, batch 4: half a CE-only step's). So their negatives get a decoder call of their own,
        # with gradients.
        negatives_apart = (
            hard_negatives
            and compute_embeddings
            and not text_target
            and not detached_negatives
            and self.config.takes_gradients_apart
        )
        negatives_own_call = detached_negatives or negatives_apart
        negatives_in_pass = hard_negatives and not negatives_own_call and (compute_likelihoods or not text_target)
        # GPT-2 computes each hard negative only from its first swapped token on (see `_negative_suffix_states`).
        share_negative_prefix = negatives_in_pass and self._shares_negative_prefix(cache, use_cache)
        if negatives_in_pass or negatives_own_call:
            if negative_input_ids.shape != input_ids.shape:
                raise ValueError(
                    f"negative_input_ids {tuple(negative_input_ids.shape)} must be padded like input_ids "
                    f"{tuple(input_ids.shape)}"
                )
            if negative_attention_mask is None:
                negative_attention_mask = torch.ones_like(negative_input_ids)
        if negatives_in_pass and not share_negative_prefix:
            segments.append(
                (negative_input_ids, negative_attention_mask, encoder_hidden_states, encoder_attention_mask)
            )
        segments += [(input_ids, target_mask, states, mask) for _, states, mask in swapped_states]
        if len(segments) == 1:
            decoder_input_ids, decoder_attention_mask = input_ids, attention_mask
            cross_states, cross_mask = encoder_hidden_states, encoder_attention_mask
        else:
            decoder_input_ids, decoder_attention_mask, cross_states, cross_mask = (
                torch.cat(parts) for parts in zip(*segments, strict=True)
            )
            if position_ids is not None:
                position_ids = position_ids.repeat(len(segments), 1)

        if self.config.uses_gated_cross_attention:
            if cross_key_values is None:
                cross_key_values = self.cross_attention_kv(cross_states)  # [B x segments, N, blocks * 2 * D]
            elif len(segments) > 1 or negatives_own_call:
                raise ValueError("cross_key_values serve decoding; the contrastive passes compute their own")
            # The LM's own forward, so the logits are exactly what it computes (some families post-process them),
            # for every segment's rows (the negatives' logits of the embedding score go unused).
            needs_last_states = compute_embeddings and not text_target
            decoder_outputs = self.decoder(
                decoder_input_ids,
                attention_mask=decoder_attention_mask,
                position_ids=position_ids,
                use_cache=use_cache,
                logits_to_keep=logits_to_keep,
                output_hidden_states=output_hidden_states or needs_last_states,
                output_attentions=output_attentions,
                **{CACHE_KEY: cache, CROSS_KEY_VALUES: cross_key_values},
                **{CROSS_ATTENTION_MASK: cross_attention_bias(cross_mask, cross_key_values.dtype)},
                **kwargs,
            )
            # The last layer's states after the final norm, what GPT-2's `last_hidden_state` is.
            hidden_states = decoder_outputs.hidden_states[-1] if needs_last_states else None
            logits, *rest_logits = decoder_outputs.logits.split(batch_size)  # [B, L, V] per segment
            if output_attentions:
                logger.warning_once(
                    "PC2L returns no cross_attentions for a gated decoder: its gated cross-attention blocks attend "
                    "with scaled dot-product attention and keep no weights (attentions are the LM's self-attention)"
                )
        else:
            if cross_key_values is not None:
                raise ValueError("cross_key_values are the gated blocks'; GPT-2 reads encoder_hidden_states")
            decoder_outputs = self.decoder.transformer(
                decoder_input_ids,
                cache,
                attention_mask=decoder_attention_mask,
                position_ids=position_ids,
                encoder_hidden_states=cross_states,
                encoder_attention_mask=cross_mask,
                # the negatives' suffixes attend to the targets' cached keys and values
                use_cache=True if share_negative_prefix else use_cache,
                output_hidden_states=output_hidden_states,
                output_attentions=output_attentions,
                **kwargs,
            )
            hidden_states = decoder_outputs.last_hidden_state  # [B x segments, L, D]
            if share_negative_prefix:
                negative_states = self._negative_suffix_states(
                    hidden_states[:batch_size],
                    decoder_outputs.get(CACHE_KEY).self_attention_cache,
                    input_ids,
                    target_mask,
                    negative_input_ids,
                    negative_attention_mask,
                    position_ids[:batch_size] if position_ids is not None else None,
                    encoder_hidden_states,
                    encoder_attention_mask,
                    **kwargs,
                )
                # The negatives' segment where the batched call would have put it, for the code below.
                hidden_states = torch.cat([hidden_states[:batch_size], negative_states, hidden_states[batch_size:]])
                decoder_outputs[CACHE_KEY] = None  # the targets' keys served the negatives; nobody asked for them
            target_states = hidden_states[:batch_size]
            logits = self.decoder.lm_head(target_states[:, -logits_to_keep:] if logits_to_keep else target_states)
            # (None after the targets, e.g. a loss call without hard negatives: split would give one empty segment.)
            has_rest = compute_likelihoods and hidden_states.shape[0] > batch_size
            rest_states = hidden_states[batch_size:].split(batch_size) if has_rest else ()
            rest_logits = [self.decoder.lm_head(states) for states in rest_states]

        loss = None
        if labels is not None:
            # Position t predicts token t + 1; mean over the unmasked target tokens.
            loss = F.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(),
                labels[:, 1:].flatten().to(logits.device),
                ignore_index=-100,
            )

        output = PC2LOutput(loss=loss, logits=logits, cache=decoder_outputs.get(CACHE_KEY))
        if CACHE_KEY != "cache" and output.cache is not None:
            output[CACHE_KEY] = output.cache  # where `generate` of older releases looks for it
        # The targets' rows of what the caller asked for (the decoder call may hold other segments after them).
        if output_hidden_states:
            output.hidden_states = tuple(states[:batch_size] for states in decoder_outputs.hidden_states)
        if output_attentions:
            output.attentions = tuple(weights[:batch_size] for weights in decoder_outputs.attentions)
            if not self.config.uses_gated_cross_attention:
                output.cross_attentions = tuple(
                    weights[:batch_size] for weights in decoder_outputs.cross_attentions
                )
        if encoder_ran:
            output.encoder_last_hidden_state = encoder_hidden_states
            output.encoder_attention_mask = encoder_attention_mask
            output.encoder_hidden_states = encoder_outputs.hidden_states
            output.encoder_attentions = encoder_outputs.attentions
        if compute_likelihoods:
            self._add_likelihoods(
                output, logits, rest_logits, input_ids, labels, negative_input_ids if negatives_in_pass else None,
                negative_attention_mask, swapped_states,
            )  # fmt: skip
        if compute_embeddings:
            # (A call of the negatives' own runs after the text-target pass, the order of their dropout draws.)
            self._add_embeddings(
                output, hidden_states, input_ids, target_mask, image_features, review_features, encoder_hidden_states,
                encoder_attention_mask, None if negatives_own_call else negative_input_ids, negative_attention_mask,
                text_target,
            )  # fmt: skip
            if negatives_own_call:
                negative_states = self._own_call_negative_states(
                    negative_input_ids, negative_attention_mask,
                    position_ids[:batch_size] if position_ids is not None else None, encoder_hidden_states,
                    encoder_attention_mask, cross_key_values, text_target, gradients=negatives_apart, **kwargs,
                )  # fmt: skip
                # H23 trains phi_Y on the negatives' (detached) states; "detached" negatives train nothing.
                with torch.set_grad_enabled(self.config.hard_negative_gradients == "full" and torch.is_grad_enabled()):
                    output.negative_embeds = self.target_head(negative_states, negative_attention_mask)
        return output

    def _add_likelihoods(
        self,
        output: PC2LOutput,
        logits: torch.Tensor,
        rest_logits: list[torch.Tensor],
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        negative_input_ids: torch.Tensor | None,
        negative_attention_mask: torch.Tensor | None,
        swapped_states: list,
    ) -> None:
        """The likelihood score's fields of `output` (`contrastive_score="likelihood"`): the targets' sequence
        log-likelihood, the hard negatives' (`negative_input_ids` given when they were in the decoder call: the
        first of `rest_logits`), and the targets' under each swapped input (the rest, in `swapped_states`' order)."""
        labels_mask = labels != -100
        output.target_log_likelihood = sequence_log_likelihood(logits, input_ids, labels_mask)
        if negative_input_ids is not None:
            output.negative_log_likelihood = sequence_log_likelihood(
                rest_logits[0], negative_input_ids, negative_attention_mask.bool()
            )
            rest_logits = rest_logits[1:]
        for (name, _, _), segment_logits in zip(swapped_states, rest_logits, strict=True):
            output[f"{name}_swapped_log_likelihood"] = sequence_log_likelihood(segment_logits, input_ids, labels_mask)

    def _add_embeddings(
        self,
        output: PC2LOutput,
        hidden_states: torch.Tensor,
        input_ids: torch.Tensor,
        target_mask: torch.Tensor,
        image_features: torch.Tensor | None,
        review_features: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        negative_input_ids: torch.Tensor | None,
        negative_attention_mask: torch.Tensor | None,
        text_target: bool,
    ) -> None:
        """The embedding score's fields of `output` (eqs. 7-9): `target_embeds` (phi_Y of the decoder's states over
        the targets, `hidden_states`' first B rows, or of the text-only pass), `image_embeds` / `review_embeds`
        (phi_V, phi_R of the encoder's states) and, when `negative_input_ids` is given (the hard negatives were in
        the decoder call: the next B rows), `negative_embeds`; `forward` sets detached negatives' itself.
        `image_features`, `review_features`: the encoder's inputs (their padding is in `encoder_attention_mask`)."""
        batch_size = input_ids.shape[0]
        num_image_tokens = image_features.shape[1] if self.config.uses_images else 0
        if text_target:
            # H^Y of the text alone: the targets (and hard negatives) through the decoder without the encoder.
            text_ids, text_mask = input_ids, target_mask
            if negative_input_ids is not None:
                text_ids = torch.cat([input_ids, negative_input_ids])
                text_mask = torch.cat([target_mask, negative_attention_mask])
            # (Under H23's option this pass feeds phi_Y alone, detached below: no graph to keep.)
            with torch.set_grad_enabled(self.config.decoder_contrastive_gradients == "full" and torch.is_grad_enabled()):
                hidden_states = self._decoder_states(text_ids, text_mask)
        if self.config.decoder_contrastive_gradients == "none":
            # H23's option: the same H^Y, but eqs. 7-9 train phi_Y and the encoder only; the decoder learns from
            # cross-entropy alone (the logits keep their own graph).
            hidden_states = hidden_states.detach()
        output.target_embeds = self.target_head(hidden_states[:batch_size], target_mask)
        # The encoder states phi_V and phi_R pool; H24's option: the same values, without moving the encoder.
        head_states = encoder_hidden_states
        if self.config.encoder_contrastive_gradients == "none":
            head_states = head_states.detach()
        if self.config.image_contrastive != "none":
            output.image_embeds = self.image_head(
                head_states[:, :num_image_tokens], encoder_attention_mask[:, :num_image_tokens]
            )
        if self.config.review_contrastive != "none":
            review_weights = encoder_attention_mask[:, num_image_tokens:]
            if self.config.review_pooling == "shown_photos":
                review_weights = shown_photo_review_weights(
                    image_features, encoder_attention_mask[:, :num_image_tokens], review_features, review_weights,
                    self.config.review_pooling_temperature,
                )  # fmt: skip
            output.review_embeds = self.review_head(head_states[:, num_image_tokens:], review_weights)
        if negative_input_ids is not None:
            output.negative_embeds = self.target_head(hidden_states[batch_size : 2 * batch_size], negative_attention_mask)

    def _own_call_negative_states(
        self,
        negative_input_ids: torch.Tensor,
        negative_attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        cross_key_values: torch.Tensor | None,
        text_target: bool,
        gradients: bool,
        **kwargs,
    ) -> torch.Tensor:
        """`H^Y_ent` [B, L, D], the decoder's last states over the hard negatives, in a decoder call of their own.

        The same states the batched call computes for the negatives' rows; every row of a decoder call is computed
        independently of the others, so the values are those of the batched call (to rounding; under dropout, other
        draws). Without `gradients` (`config.hard_negative_gradients="detached"`, or
        `decoder_contrastive_gradients="none"`) under `torch.no_grad`: autograd keeps none of its activations and the
        backward pass skips it. With them (the options that take eq. 11's gradient apart), cross-entropy's backward
        pass does not run through these rows.

        Args:
            position_ids: the targets' position ids [B, L] (the negatives' in the batched call), None for `0..L-1`.
            cross_key_values: gated decoders: the targets' cross-attention keys and values (the same encoder states).
            text_target: `contrastive_target="text"`: the text-only pass, without the encoder.
        """
        with torch.set_grad_enabled(gradients and torch.is_grad_enabled()):
            if text_target:
                return self._decoder_states(negative_input_ids, negative_attention_mask)
            return self._decoder_states(
                negative_input_ids,
                negative_attention_mask,
                position_ids,
                encoder_hidden_states,
                encoder_attention_mask,
                cross_key_values,
                **kwargs,
            )

    def _decoder_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cross_key_values: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """The decoder's last hidden states [B, L, D] (after its final norm), no cache; over text alone (no
        cross-attention) when the encoder inputs are None (GPT-2: `encoder_hidden_states`, gated decoders:
        `cross_key_values`)."""
        if self.config.uses_gated_cross_attention:
            cross_mask = (
                None if cross_key_values is None else cross_attention_bias(encoder_attention_mask, cross_key_values.dtype)
            )
            # One logit row is the least the LM's forward computes; its states are what is wanted here.
            return self.decoder(
                input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=False,
                logits_to_keep=1,
                output_hidden_states=True,
                **{CROSS_KEY_VALUES: cross_key_values, CROSS_ATTENTION_MASK: cross_mask},
                **kwargs,
            ).hidden_states[-1]
        return self.decoder.transformer(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            use_cache=False,
            **kwargs,
        ).last_hidden_state

    def _shares_negative_prefix(self, cache: Cache | None, use_cache: bool | None) -> bool:
        """Whether this training call computes the hard negatives' suffixes only (`_negative_suffix_states`).

        GPT-2 only: the gated decoders' LMs run the full negative pass. Also off under activation checkpointing
        (GPT-2 then keeps no cache), for attention kernels that take no 4D mask, and when the caller decodes on.
        """
        return (
            self._negative_prefix_sharing
            and not self.config.uses_gated_cross_attention
            and cache is None
            and not use_cache
            and not (self.decoder.transformer.gradient_checkpointing and self.training)
            and self.decoder.config._attn_implementation in ("sdpa", "eager")
        )

    # True computes GPT-2's hard negatives from their first swapped token on (`_negative_suffix_states`): same losses
    # and gradients, 10% fewer FLOPs per step with realistic swaps, but a step is slower (two decoder calls with
    # smaller matmuls, two dense embedding gradients, 4-D masks): on CPU at batch 4 1.50-1.66x CE-only against the
    # batched call's 1.44-1.61x (session 40), on a GPU 2.14x against 1.17x at batch 32 (session 17), so it is off
    # (issue 18; benchmarks/bench_pc2l.py times both). Not read with `hard_negative_gradients="detached"`,
    # whose no-grad pass over the full negatives costs less than a suffix pass with gradients.
    _negative_prefix_sharing = False
    # Most tokens of cached target keys a packed row of negative suffixes attends to (bounds its attention cost).
    _negative_pack_tokens = 1024

    def _negative_suffix_states(
        self,
        target_states: torch.Tensor,
        target_cache: DynamicCache,
        input_ids: torch.Tensor,
        target_mask: torch.Tensor,
        negative_input_ids: torch.Tensor,
        negative_attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        **kwargs,
    ) -> torch.Tensor:
        """The decoder's last hidden states [B, L, D] over the hard negatives, computed from their first swapped
        token on.

        A negative equals its target up to its first swapped token `s_i` (ids and mask), and a causal decoder's
        states there depend on those tokens and the example's encoder states only, so they are the target's
        (`target_states`). Only each negative's suffix `[s_i, L)` runs through GPT-2: the suffixes of up to
        `_negative_pack_tokens // L` examples packed left-aligned into one row (no padding between examples),
        position ids `s_i + j`, attending to those examples' cached target keys before their `s_i` (packed the
        same way) and to their own suffixes, a 4D mask letting suffix token `j` of example `i` see example `i`'s
        prefix keys and its own suffix up to `j`, and cross-attention to example `i`'s encoder states.
        Gradients flow into the targets' keys and values as the full pass's would into the negatives' own prefix,
        so losses and gradients are those of the full pass (to rounding); under dropout the prefix shares the
        target's dropout draw.

        Args:
            target_states: the targets' last hidden states [B, L, D].
            target_cache: the self-attention cache of the call that computed them (its first B rows are theirs).
            position_ids: the targets' position ids [B, L], None for `0..L-1`.
        """
        batch_size, length = input_ids.shape
        device = input_ids.device
        positions = torch.arange(length, device=device)
        negative_mask = negative_attention_mask.bool()
        differs = (negative_input_ids != input_ids) | (negative_mask != target_mask.bool())
        prefix = torch.where(differs.any(1), differs.int().argmax(1), length)  # [B] first swapped token s_i
        suffix = (positions >= prefix[:, None]) & negative_mask  # [B, L] the tokens computed here
        if not suffix.any():  # every negative equals its target
            return target_states
        group_size = max(1, min(batch_size, self._negative_pack_tokens // length))
        num_groups = -(-batch_size // group_size)
        example, token, group, slot, packed_example = _pack_rows(suffix, group_size, num_groups)  # queries
        key_example_ids, key_token, key_group, key_slot, key_example = _pack_rows(
            (positions < prefix[:, None]) & negative_mask, group_size, num_groups
        )  # the target keys the suffixes read
        width = packed_example.shape[1]
        source_positions = positions.expand(batch_size, length) if position_ids is None else position_ids
        packed_ids = input_ids.new_zeros(num_groups, width)
        packed_ids[group, slot] = negative_input_ids[example, token]
        packed_positions = source_positions.new_zeros(num_groups, width)
        packed_positions[group, slot] = source_positions[example, token]
        key_index = torch.zeros_like(key_example)  # into the targets' B * L keys; padding reads key 0, masked
        key_index[key_group, key_slot] = key_example_ids * length + key_token

        padding_query = (packed_example < 0)[:, :, None]  # padding slots see everything: finite, never read
        cached = (packed_example[:, :, None] == key_example[:, None, :]) & (key_example >= 0)[:, None, :]
        causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
        own = (packed_example[:, :, None] == packed_example[:, None, :]) & causal & (packed_example >= 0)[:, None, :]
        self_mask = torch.cat([cached, own], dim=-1) | padding_query  # [R, W, W_keys + W]
        # Cross-attention: row r reads the encoder states of examples r * G .. r * G + G - 1 (clamped, masked).
        member = torch.arange(num_groups * group_size, device=device).view(num_groups, group_size)
        same_example = (packed_example[:, :, None] == member[:, None, :]) & (member < batch_size)[:, None, :]
        member = member.clamp(max=batch_size - 1)
        cross_mask = (same_example[..., None] & encoder_attention_mask.bool()[member][:, None]).flatten(2)
        cross_mask = cross_mask | padding_query  # [R, W, G * N]
        packed_encoder = encoder_hidden_states[member].flatten(1, 2)  # [R, G * N, D]

        cache = DynamicCache()
        for layer_idx, layer in enumerate(target_cache.layers):
            # [B, H, L, d] -> [B * L, H, d] -> [R, H, W_keys, d]: the rows' prefix keys side by side
            keys, values = (
                states[:batch_size].transpose(1, 2).flatten(0, 1)[key_index].transpose(1, 2)
                for states in (layer.keys, layer.values)
            )
            cache.update(keys, values, layer_idx)
        if self.decoder.config._attn_implementation == "eager":  # additive masks
            dtype = target_states.dtype
            self_mask, cross_mask = (
                torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, torch.finfo(dtype).min)
                for mask in (self_mask, cross_mask)
            )
        suffix_states = self.decoder.transformer(
            packed_ids,
            EncoderDecoderCache(cache, DynamicCache()),
            attention_mask=self_mask[:, None],
            position_ids=packed_positions,
            encoder_hidden_states=packed_encoder,
            encoder_attention_mask=cross_mask[:, None],
            use_cache=True,
            **kwargs,
        ).last_hidden_state  # [R, W, D]

        # Prefix positions (and padding) read the target's state, suffix tokens their packed slot.
        index = torch.arange(batch_size, device=device)[:, None] * length + positions
        index[example, token] = batch_size * length + group * width + slot
        states = torch.cat([target_states.flatten(0, 1), suffix_states.flatten(0, 1)])
        return states[index]

    def _encode_with_swaps(
        self,
        image_features,
        image_mask,
        review_features,
        review_mask,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[PC2LEncoderOutput, list]:
        """Encode the batch and, for the likelihood losses, copies of it with one input swapped.

        Example `i` of a swapped copy reads example `i + 1`'s photos (or history reviews), a fixed derangement
        of the batch (for a batch of one it is the example itself: that loss is then constant). One encoder call
        over the stacked copies; returns the batch's encoder output (hidden states and attentions: the batch's
        rows) and `[(name, states, mask)]` per copy.
        """
        own = (image_features, image_mask, review_features, review_mask)
        copies = {}
        if self.config.image_contrastive != "none" and self.config.likelihood_image_negatives == "all":
            copies["image"] = (_next_example(image_features), _next_example(image_mask), *own[2:])
        if self.config.review_contrastive != "none":
            copies["review"] = (*own[:2], _next_example(review_features), _next_example(review_mask))
        # [own; copy 1; copy 2] on the batch axis, input by input (None where the mode has no such input)
        stacked = [
            None if parts[0] is None else torch.cat(parts) for parts in zip(own, *copies.values(), strict=True)
        ]
        batch_size = next(tensor.shape[0] for tensor in own if tensor is not None)
        encoder_outputs = self.encoder(
            *stacked, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        states = encoder_outputs.last_hidden_state.split(batch_size)
        mask = encoder_outputs.attention_mask.split(batch_size)
        swapped = [(name, states[k + 1], mask[k + 1]) for k, name in enumerate(copies)]
        own_rows = PC2LEncoderOutput(last_hidden_state=states[0], attention_mask=mask[0])
        if output_hidden_states:
            own_rows.hidden_states = tuple(states[:batch_size] for states in encoder_outputs.hidden_states)
        if output_attentions:
            own_rows.attentions = tuple(weights[:batch_size] for weights in encoder_outputs.attentions)
        return own_rows, swapped

    @torch.no_grad()
    def generate(
        self,
        inputs: torch.LongTensor | None = None,
        image_features: torch.FloatTensor | None = None,
        image_mask: torch.Tensor | None = None,
        review_features: torch.FloatTensor | None = None,
        review_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.FloatTensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        **kwargs,
    ):
        """Generate explanations; the encoder runs once per input, before the beams are expanded.

        Takes either the raw features (see [`~PC2LForConditionalGeneration.encode`]; without masks every image and
        review is real) or precomputed `encoder_hidden_states` + `encoder_attention_mask`, and any
        [`~GenerationMixin.generate`] argument; the defaults are the model's `generation_config` (a new model's:
        the paper's 2 beams, at most 64 new tokens). The decoder prompt comes as `inputs` or `input_ids` (without
        `attention_mask`: unpadded); with neither, decoding starts from BOS. A gated decoder's cross-attention keys
        and values are computed once here, before the beams are expanded, as the encoder states are.

        `cache_implementation="static"` (an argument or the generation config's; GPT-2 decoders, unpadded prompts)
        decodes over a preallocated cache with a step `torch.compile`d on CUDA (on CPU only given a `compile_config`),
        buckets of batch size and input count sharing one compilation: the same tokens, faster
        (`compiled_generation.py`); `disable_compile=True` keeps the step eager. On CPU in float32 the eager step
        multiplies by weights prepacked by oneDNN, kept with the model between calls (about 2x plain `generate` at
        GPT-2-small size, batch 8 x 2 beams).
        """
        input_ids = kwargs.pop("input_ids", None)
        if inputs is not None and input_ids is not None:
            raise ValueError("pass the decoder prompt as `inputs` or as `input_ids`, not both")
        inputs = input_ids if inputs is None else inputs
        if encoder_hidden_states is None:
            encoder_hidden_states, encoder_attention_mask = self.encode(
                image_features, image_mask, review_features, review_mask
            )
        if self.config.uses_gated_cross_attention:
            # The gated blocks' keys and values, once for the whole decoding (GPT-2 caches its own after step 1).
            kwargs["cross_key_values"] = self.cross_attention_kv(encoder_hidden_states)
        if inputs is None:
            bos = self.generation_config.bos_token_id
            inputs = torch.full((encoder_hidden_states.shape[0], 1), bos, device=encoder_hidden_states.device)
        # An explicit mask: GPT-2's BOS is also its EOS and pad token, which `generate` would take for padding.
        kwargs.setdefault("attention_mask", torch.ones_like(inputs))
        if "max_length" in kwargs and "max_new_tokens" not in kwargs:
            # The call's length over the generation_config's max_new_tokens (saved runs set 64), which transformers
            # would let win with only a warning.
            kwargs["max_new_tokens"] = None
        generation_config = kwargs.get("generation_config") or self.generation_config
        if kwargs.get("cache_implementation", generation_config.cache_implementation) == "static":
            # Same search, same tokens; the cache holds the encoder side and runs a compiled step (see its module).
            cache = static_decoding_cache(self, inputs, encoder_hidden_states, encoder_attention_mask, kwargs)
            # transformers must not build a static cache of its own; set on a copy of a given generation_config,
            # since a call giving both a config and settings is deprecated (a warning on every call).
            if kwargs.get("generation_config") is not None:
                kwargs["generation_config"] = copy.deepcopy(kwargs["generation_config"])
                kwargs["generation_config"].cache_implementation = None
                kwargs.pop("cache_implementation", None)
            else:
                kwargs["cache_implementation"] = None
            return super().generate(inputs, **(kwargs | {CACHE_KEY: cache}))
        return super().generate(
            inputs,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            **kwargs,
        )

__all__ = [
    "PC2LEncoderOutput",
    "PC2LForConditionalGeneration",
    "PC2LOutput",
    "PC2LPreTrainedModel",
    "masked_mean",
    "sequence_log_likelihood",
    "shown_photo_review_weights",
]
