"""R2Gen: a transformer over the user's photos and a memory-driven transformer decoder that writes the explanation.

Chen, Song, Chang, Wan, "Generating Radiology Reports via Memory-driven Transformer", EMNLP 2020; the "R2Gen" row of
the paper's Table 2 ([6] there). The architecture follows the authors' code, `cuhksz-nlp/R2Gen`:
`modules/encoder_decoder.py` (`EncoderDecoder.make_model`, `RelationalMemory`, `ConditionalLayerNorm`,
`DecoderLayer`), `modules/att_model.py` (`att_embed`) and `main.py` (the defaults):

- the patch features go through `att_embed` (linear, ReLU, dropout 0.5), then an encoder of pre-norm transformer
  layers without position encodings and a final layer norm;
- tokens are embedded, scaled by `sqrt(d_model)`, plus sinusoidal positions, each use with its own dropout;
- a relational memory (`RelationalMemory`) of `rm_num_slots` rows starts as the identity (zero-padded to the width)
  and reads the embedded tokens one step at a time: multi-head attention of the memory over `[memory; token]`
  plus a residual, a two-layer ReLU MLP plus a residual, then the gated update
  `M_t = sigmoid(W x_t + U tanh(M_{t-1}))_input * tanh(M~_t) + sigmoid(W x_t + U tanh(M_{t-1}))_forget * M_{t-1}`;
- every decoder layer (masked self-attention, attention over the encoder states, feed-forward) normalises each
  sublayer's input with a memory-driven conditional layer norm (MCLN): `gamma + MLP_gamma(M_t)` and
  `beta + MLP_beta(M_t)` with `M_t` the memory after token t, flattened; a final plain layer norm;
- layer norms divide by the unbiased standard deviation plus `eps = 1e-6` (the Annotated Transformer's);
- every weight matrix (embedding included) starts Xavier-uniform, the MCLN MLPs' biases at 0.1;
- loss: token-mean cross-entropy of the next token (`LanguageModelCriterion`).

Deviations, and why:

- CLIP ViT-B/32 image embeddings of the user's photos (one 512-d vector per photo, at most `max_images`, padded
  photos masked out of the encoder and of the decoder's attention) instead of a ResNet-101 grid of 2048-d patch
  features per image (`VisualExtractor`, 49 patches per image, two images concatenated for IU X-ray): the paper's
  Table 2 fed CLIP features to every image model, and the package caches them once for all rows. The photos play
  the patches' part; like R2Gen's patches they get no position encoding (the photos are a set).
- GPT-2's BPE vocabulary instead of R2Gen's word vocabulary (train-split words seen at least 3 times): every row
  of Table 2 then reads and writes the same tokens, so BLEU and Distinct compare like for like.
- Widths 256 instead of 512 (see [`R2GenConfig`]); the memory's width is the model's, as R2Gen's code requires (its
  `ConditionalLayerNorm.mlp_gamma` ends in `Linear(rm_d_model, rm_d_model)` after a `Linear(..., d_model)`); biases
  other than the MCLN MLPs' start at zero instead of torch's default uniform, and the output layer Xavier-uniform
  too (R2Gen leaves it at torch's default); the training recipe (Adam with amsgrad at 5e-5/1e-4, step decay,
  BLEU-4 early stopping) is the package's shared trainer's.
- Decoding is the package's (beam 2, at most 64 new tokens) through transformers' `GenerationMixin` instead of
  R2Gen's beam 3 with trigram blocking.
- No key/value cache: like R2Gen's own `core`, every decoding step re-runs the decoder and the relational memory over
  the whole prefix (the encoder runs once per `generate`).
- A key padding mask on the decoder's self-attention is unnecessary and left out: targets are right-padded
  (checked), so the causal mask already keeps padding out of every real position; R2Gen also masks pad keys.

This file imports only torch, transformers and its package neighbours (relatively), so `save_pretrained` can ship it
for `AutoModel.from_pretrained(path, trust_remote_code=True)`.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutput
from transformers.utils.generic import can_return_tuple

from .configuration_r2gen import R2GenConfig
from .generation_utils import (
    BaselineGenerationConfig,
    check_logits_only,
    check_right_padded,
    generation_prompt,
    shifted_cross_entropy,
)
from .positions import sinusoidal_positions

# Bias of the MCLN MLPs' layers at initialisation (R2Gen's `ConditionalLayerNorm.__init__`).
MCLN_BIAS_INIT = 0.1


class R2GenLayerNorm(nn.Module):
    """`weight * (x - mean) / (std + eps) + bias`, with the unbiased standard deviation (R2Gen's `LayerNorm`)."""

    def __init__(self, width: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))
        self.eps = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        mean = hidden_states.mean(-1, keepdim=True)
        std = hidden_states.std(-1, keepdim=True)
        return self.weight * (hidden_states - mean) / (std + self.eps) + self.bias


class R2GenConditionalLayerNorm(nn.Module):
    """Memory-driven conditional layer norm (MCLN): the layer norm's scale and shift plus MLPs of the memory.

    `gamma_t = weight + MLP_gamma(M_t)`, `beta_t = bias + MLP_beta(M_t)`, each MLP `Linear(slots * D, D), ReLU,
    Linear(D, D)`, so every position is normalised with its own memory state.
    """

    def __init__(self, width: int, memory_slots: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))
        self.eps = eps
        self.mlp_gamma = nn.Sequential(
            nn.Linear(memory_slots * width, width), nn.ReLU(), nn.Linear(width, width)
        )
        self.mlp_beta = nn.Sequential(
            nn.Linear(memory_slots * width, width), nn.ReLU(), nn.Linear(width, width)
        )

    def forward(self, hidden_states: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """`hidden_states` [B, T, D] and `memory` [B, T, slots * D] (the memory after each token) -> [B, T, D]."""
        mean = hidden_states.mean(-1, keepdim=True)
        std = hidden_states.std(-1, keepdim=True)
        gamma = self.weight + self.mlp_gamma(memory)  # [B, T, D]
        beta = self.bias + self.mlp_beta(memory)  # [B, T, D]
        return gamma * (hidden_states - mean) / (std + self.eps) + beta


class R2GenAttention(nn.Module):
    """Multi-head scaled dot-product attention with query, key, value and output projections."""

    def __init__(self, width: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`query` [B, Lq, D], `key`/`value` [B, Lk, D]; `mask` boolean, broadcastable to [B, 1, Lq, Lk], true where a
        key may be attended. A query with no key to attend averages all keys (R2Gen's `masked_fill(-1e9)`), no NaN."""
        batch, query_length, width = query.shape

        def heads(states: torch.Tensor) -> torch.Tensor:  # [B, L, D] -> [B, heads, L, D / heads]
            return states.view(batch, -1, self.num_heads, width // self.num_heads).transpose(1, 2)

        queries = heads(self.q_proj(query))
        bias = None
        if mask is not None:
            # In the queries' dtype, the one the attention runs in (the autocast dtype under autocast): float32's
            # lowest value cast to bf16 would become -inf, and a query with no key would then not average all keys.
            bias = torch.zeros(mask.shape, dtype=queries.dtype, device=query.device)
            bias = bias.masked_fill(~mask, torch.finfo(queries.dtype).min)
        attended = F.scaled_dot_product_attention(
            queries,
            heads(self.k_proj(key)),
            heads(self.v_proj(value)),
            attn_mask=bias,
            dropout_p=self.dropout if self.training else 0.0,
        )  # [B, heads, Lq, D / heads]
        return self.out_proj(attended.transpose(1, 2).reshape(batch, query_length, width))


class R2GenFeedForward(nn.Module):
    """`Linear(D, ffn), ReLU, dropout, Linear(ffn, D)`."""

    def __init__(self, width: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(width, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, width)
        self.dropout = dropout

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.dropout(F.relu(self.fc1(hidden_states)), self.dropout, self.training))


class R2GenRelationalMemory(nn.Module):
    """The relational memory: `slots` rows of width D updated by each token through attention and gates."""

    def __init__(self, config: R2GenConfig):
        super().__init__()
        width = config.hidden_size
        self.num_slots = config.memory_slots
        self.attention = R2GenAttention(width, config.memory_attention_heads, config.dropout)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        # One matrix each for the input and forget gates' token part (W) and memory part (U).
        self.W = nn.Linear(width, 2 * width)
        self.U = nn.Linear(width, 2 * width)

    def initial_memory(self, batch_size: int, reference: torch.Tensor) -> torch.Tensor:
        """`M_0`: the slots x slots identity, zero-padded (or cut) to the width; [B, slots, D]."""
        identity = torch.eye(
            self.num_slots, reference.shape[-1], dtype=reference.dtype, device=reference.device
        )
        return identity.expand(batch_size, -1, -1)

    def step(self, token: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """One update: `token` [B, D] (the embedded token x_t) and `memory` [B, slots, D] (M_{t-1}) -> M_t."""
        slots_and_token = torch.cat([memory, token.unsqueeze(1)], dim=1)  # [B, slots + 1, D]
        candidate = memory + self.attention(memory, slots_and_token, slots_and_token)
        candidate = candidate + self.mlp(candidate)  # M~_t
        gates = self.W(token).unsqueeze(1) + self.U(torch.tanh(memory))  # [B, slots, 2D]
        input_gate, forget_gate = torch.sigmoid(gates).chunk(2, dim=-1)
        return input_gate * torch.tanh(candidate) + forget_gate * memory

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """`tokens` [B, T, D] -> the memory after each token, flattened: [B, T, slots * D]."""
        memory = self.initial_memory(tokens.shape[0], tokens)
        states = []
        # A recurrence: each step needs the previous memory.
        for position in range(tokens.shape[1]):
            memory = self.step(tokens[:, position], memory)
            states.append(memory)
        return torch.stack(states, dim=1).flatten(2)  # [B, T, slots, D] -> [B, T, slots * D]


class R2GenEncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer: self-attention over the photos, then a feed-forward."""

    def __init__(self, config: R2GenConfig):
        super().__init__()
        width = config.hidden_size
        self.dropout = config.dropout
        self.self_attn_norm = R2GenLayerNorm(width, config.layer_norm_eps)
        self.self_attn = R2GenAttention(width, config.num_attention_heads, config.dropout)
        self.ffn_norm = R2GenLayerNorm(width, config.layer_norm_eps)
        self.ffn = R2GenFeedForward(width, config.ffn_dim, config.dropout)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`hidden_states` [B, N, D]; `mask` [B, 1, 1, N] boolean, true for real photos."""
        normed = self.self_attn_norm(hidden_states)
        attended = self.self_attn(normed, normed, normed, mask)
        hidden_states = hidden_states + F.dropout(attended, self.dropout, self.training)
        return hidden_states + F.dropout(self.ffn(self.ffn_norm(hidden_states)), self.dropout, self.training)


class R2GenDecoderLayer(nn.Module):
    """Transformer decoder layer whose three sublayers each normalise their input with an MCLN."""

    def __init__(self, config: R2GenConfig):
        super().__init__()
        width, slots, eps = config.hidden_size, config.memory_slots, config.layer_norm_eps
        self.dropout = config.dropout
        self.self_attn_norm = R2GenConditionalLayerNorm(width, slots, eps)
        self.self_attn = R2GenAttention(width, config.num_attention_heads, config.dropout)
        self.cross_attn_norm = R2GenConditionalLayerNorm(width, slots, eps)
        self.cross_attn = R2GenAttention(width, config.num_attention_heads, config.dropout)
        self.ffn_norm = R2GenConditionalLayerNorm(width, slots, eps)
        self.ffn = R2GenFeedForward(width, config.ffn_dim, config.dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        memory: torch.Tensor,
        causal_mask: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_mask: torch.Tensor,
    ) -> torch.Tensor:
        """`hidden_states` [B, T, D]; `memory` [B, T, slots * D]; `causal_mask` [T, T]; `encoder_hidden_states`
        [B, N, D] with `encoder_mask` [B, 1, 1, N]."""
        normed = self.self_attn_norm(hidden_states, memory)
        attended = self.self_attn(normed, normed, normed, causal_mask)
        hidden_states = hidden_states + F.dropout(attended, self.dropout, self.training)
        normed = self.cross_attn_norm(hidden_states, memory)
        attended = self.cross_attn(normed, encoder_hidden_states, encoder_hidden_states, encoder_mask)
        hidden_states = hidden_states + F.dropout(attended, self.dropout, self.training)
        feed_forward = self.ffn(self.ffn_norm(hidden_states, memory))
        return hidden_states + F.dropout(feed_forward, self.dropout, self.training)


class R2GenPreTrainedModel(PreTrainedModel):
    config: R2GenConfig
    config_class = R2GenConfig
    base_model_prefix = "r2gen"
    main_input_name = "input_ids"
    _no_split_modules = ["R2GenEncoderLayer", "R2GenDecoderLayer"]
    # A new model's generation config: the paper's decoding, saved with the model.
    generation_config_class = BaselineGenerationConfig
    # `save_pretrained` ships the code for `AutoModel.from_pretrained(repo, trust_remote_code=True)`.
    _auto_class = "AutoModel"
    # `forward` returns a per-batch token-mean loss and takes no `num_items_in_batch`.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        # `initialize_weights` visits children before their parent: the MCLN's own branch below sets its MLPs'
        # biases after the generic `nn.Linear` branch zeroed them.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.xavier_uniform_(module.weight)
            if isinstance(module, nn.Linear) and module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (R2GenLayerNorm, R2GenConditionalLayerNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if isinstance(module, R2GenConditionalLayerNorm):
                for layer in (*module.mlp_gamma, *module.mlp_beta):
                    if isinstance(layer, nn.Linear):
                        init.constant_(layer.bias, MCLN_BIAS_INIT)


class R2GenForExplanation(R2GenPreTrainedModel, GenerationMixin):
    """
    R2Gen over a user's photos: photo features -> transformer encoder; tokens -> relational memory and a transformer
    decoder with memory-driven conditional layer norms, attending to the encoder states; a linear layer gives the
    next-token scores.

    Example:

    ```python
    >>> import torch
    >>> config = R2GenConfig(vocab_size=100, bos_token_id=99, eos_token_id=99, pad_token_id=99, image_feature_dim=8,
    ...                      hidden_size=16, ffn_dim=32, num_layers=1, num_attention_heads=2, memory_attention_heads=2)
    >>> model = R2GenForExplanation(config).eval()
    >>> ids = model.generate(image_features=torch.randn(2, 3, 8), image_mask=torch.ones(2, 3, dtype=torch.bool),
    ...                      max_new_tokens=8)
    ```
    """

    conditioning_inputs = ("image",)

    def __init__(self, config: R2GenConfig):
        super().__init__(config)
        width = config.hidden_size
        self.feature_projection = nn.Linear(config.image_feature_dim, width)
        self.encoder_layers = nn.ModuleList(R2GenEncoderLayer(config) for _ in range(config.num_layers))
        self.encoder_norm = R2GenLayerNorm(width, config.layer_norm_eps)
        self.embed_tokens = nn.Embedding(config.vocab_size, width)
        self.memory = R2GenRelationalMemory(config)
        self.decoder_layers = nn.ModuleList(R2GenDecoderLayer(config) for _ in range(config.num_layers))
        self.decoder_norm = R2GenLayerNorm(width, config.layer_norm_eps)
        self.lm_head = nn.Linear(width, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embed_tokens = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def encode(
        self, image_features: torch.Tensor, image_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the encoder over the photos: states [B, N, D] and their mask [B, N] (bool).

        Args:
            image_features (`torch.FloatTensor` of shape `(batch_size, num_images, image_feature_dim)`):
                The photos' features, padded.
            image_mask (`torch.BoolTensor` of shape `(batch_size, num_images)`, *optional*):
                True for real photos; all true when omitted.
        """
        if image_mask is None:
            image_mask = image_features.new_ones(image_features.shape[:2], dtype=torch.bool)
        image_mask = image_mask.bool()
        # In the weights' dtype: a bf16 model reads fp32 features, as PC2L does.
        image_features = image_features.to(self.feature_projection.weight.dtype)
        hidden_states = F.relu(self.feature_projection(image_features))  # R2Gen's `att_embed`
        hidden_states = F.dropout(hidden_states, self.config.feature_dropout, self.training)
        attention_mask = image_mask[:, None, None, :]  # [B, 1, 1, N]: every photo sees the real photos
        for layer in self.encoder_layers:
            hidden_states = layer(hidden_states, attention_mask)
        return self.encoder_norm(hidden_states), image_mask

    @can_return_tuple  # `return_dict=False` (or `config.return_dict=False`): a tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        image_features: torch.FloatTensor | None = None,
        image_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.FloatTensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> CausalLMOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Target token ids (BOS, explanation, EOS, right padding).
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for target tokens, 0 for padding; must be right-padded (checked).
            image_features, image_mask:
                The photos, see [`~R2GenForExplanation.encode`]. Ignored when `encoder_hidden_states` is given.
            encoder_hidden_states (`torch.FloatTensor` of shape `(batch_size, num_images, hidden_size)`, *optional*):
                Precomputed encoder states (from `encode`), so decoding steps do not rerun the encoder.
            encoder_attention_mask (`torch.BoolTensor` of shape `(batch_size, num_images)`, *optional*):
                Their mask; all true when omitted.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                LM labels, -100 where ignored; shifted inside the model (`labels = input_ids` works).
            logits_to_keep (`int`, *optional*, defaults to 0):
                Compute logits for the last `logits_to_keep` positions only (0: all); `generate` asks for 1, which
                spares the output layer over the whole prefix at every step.
        """
        check_logits_only(self, kwargs)
        check_right_padded(attention_mask)
        if encoder_hidden_states is None:
            if image_features is None:
                raise ValueError("R2GenForExplanation needs image_features or encoder_hidden_states")
            encoder_hidden_states, encoder_attention_mask = self.encode(image_features, image_mask)
        elif encoder_attention_mask is None:
            encoder_attention_mask = encoder_hidden_states.new_ones(
                encoder_hidden_states.shape[:2], dtype=torch.bool
            )
        encoder_mask = encoder_attention_mask.bool()[:, None, None, :]  # [B, 1, 1, N]

        length, width = input_ids.shape[1], self.config.hidden_size
        embeddings = self.embed_tokens(input_ids) * math.sqrt(width)  # [B, T, D]
        embeddings = embeddings + sinusoidal_positions(length, width, embeddings.dtype, embeddings.device)
        # R2Gen embeds the tokens twice, for the memory and for the decoder, each with its own dropout.
        dropout = self.config.dropout
        memory = self.memory(F.dropout(embeddings, dropout, self.training))  # [B, T, slots * D]
        hidden_states = F.dropout(embeddings, dropout, self.training)
        causal_mask = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril()  # [T, T]
        for layer in self.decoder_layers:
            hidden_states = layer(hidden_states, memory, causal_mask, encoder_hidden_states, encoder_mask)
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        logits = self.lm_head(self.decoder_norm(hidden_states))  # [B, T, V]

        loss = None
        if labels is not None:
            loss = shifted_cross_entropy(logits, labels)
        output = CausalLMOutput(loss=loss, logits=logits)
        return output

    @torch.no_grad()
    def generate(
        self,
        inputs: torch.LongTensor | None = None,
        image_features: torch.FloatTensor | None = None,
        image_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.FloatTensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        **kwargs,
    ):
        """Generate explanations; the encoder runs once per call, before the beams are expanded.

        Takes the photos (see [`~R2GenForExplanation.encode`]) or precomputed `encoder_hidden_states` +
        `encoder_attention_mask`, and any [`~GenerationMixin.generate`] argument; the defaults are the model's
        `generation_config` (a new model's: the paper's 2 beams, at most 64 new tokens). The prompt comes as `inputs`
        or `input_ids` (without `attention_mask`: unpadded); with neither, decoding starts from BOS. No cache is kept
        (`use_cache` is always off): every step re-reads the prefix, which gives the same tokens.
        """
        if encoder_hidden_states is None:
            if image_features is None:
                raise ValueError("R2GenForExplanation.generate needs image_features or encoder_hidden_states")
            encoder_hidden_states, encoder_attention_mask = self.encode(image_features, image_mask)
        inputs = generation_prompt(inputs, kwargs, self.generation_config.bos_token_id, encoder_hidden_states)
        return super().generate(
            inputs,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            **kwargs,
        )


__all__ = ["R2GenForExplanation", "R2GenPreTrainedModel", "R2GenRelationalMemory"]
