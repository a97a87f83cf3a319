"""Ref2Seq: a GRU seq2seq model that writes the explanation from the user's and the business's reference texts.

Ni, Li, McAuley, "Justifying Recommendations using Distantly-Labeled Reviews and Fine-Grained Aspects", EMNLP 2019
(Section 4.1, the reference-based Seq2Seq model), following its public code `nijianmo/recsys_justification`,
`ref2seq/model.py` (`EncoderRNN`, `LuongAttnDecoderRNN`) and `ref2seq/train.py` (`train`). One bidirectional GRU
encodes each of the user's references (here: the user's history reviews), another each of the business's (other
users' explanations of it); each side's token states are max-pooled over its references position by position. A
GRU decoder, started from the sum of both sides' pooled final states, attends to each side's pooled states
(Luong et al. 2015: attention on the current GRU output, then `tanh(W_c [h_t; c_user; c_item])`) and predicts the
next token.

Deviations from the public code, and why:
- GPT-2's BPE vocabulary instead of the code's word vocabulary: every row of Table 2 then writes the same tokens,
  so BLEU and Distinct compare like for like. One embedding table serves both encoders and the decoder, as in the
  code.
- Max-pooling over the references (the paper and the code's `EncoderRNN`); the code's `train.py` builds
  `EncoderRNNlinear` instead, a learned combination of exactly `dmax` references, which cannot take a variable
  number of them.
- Luong's "general" score `h_t^T W_a e_j`, shared by both sides as the code shares its `Attn`. The code asks for
  `'dot'`, but its `Attn` ignores the method and scores `v^T W [h_t; e_j]` without a nonlinearity, which does
  not depend on the decoder state (the `h_t` term is the same for every `j` and cancels in the softmax); "general"
  contains "dot" (`W_a = I`).
- Masking: padded tokens and missing references take no part in the max-pooling or the attention (the code fills
  missing references with "SOS EOS" texts and attends over padding). An example with no reference on a side gets a
  zero attention context and a zero initial state from that side, so it still decodes (from the other side, or as
  a plain language model).
- The decoder's initial state per layer is the sum of the encoder's two directions in that layer (as the code sums
  the directions' outputs); the code takes `hidden[:n_layers]`, which for two layers is layer 0's forward and
  backward states.
- References come without BOS/EOS (the code wraps each in SOS/EOS), right-padded.
- Teacher forcing throughout (the code's ratio is 1.0), so the decoder reads the whole target in one GRU call.
- Decoding: the showcases paper's beam 2 and at most 64 new tokens (the code: beam 10, 15 words). No cache: each
  step reruns the decoder GRU over the prefix (the encoders run once per `generate`).
- Initialisation: torch's defaults for the GRUs and the embeddings (as the code), Xavier-uniform linear layers.
- The aspect-planning extension (AP-Ref2Seq) is left out: Table 2 lists plain Ref2Seq.

This file imports only torch, transformers and modules of its folder (relatively), so `save_pretrained` can ship it
for `AutoModel.from_pretrained(path, trust_remote_code=True)`.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutput
from transformers.utils.generic import can_return_tuple

from .configuration_ref2seq import Ref2SeqConfig
from .generation_utils import (
    BaselineGenerationConfig,
    check_logits_only,
    check_right_padded,
    generation_prompt,
    run_outside_autocast,
    shifted_cross_entropy,
)


class Ref2SeqReferenceEncoder(nn.Module):
    """A bidirectional GRU over each reference text, max-pooled over the references (`EncoderRNN` of the code)."""

    def __init__(self, config: Ref2SeqConfig):
        super().__init__()
        self.num_layers = config.num_layers
        self.gru = nn.GRU(
            config.hidden_size,
            config.hidden_size,
            config.num_layers,
            batch_first=True,
            bidirectional=True,
            # nn.GRU applies dropout between layers only (and warns when there is none).
            dropout=config.encoder_dropout if config.num_layers > 1 else 0.0,
        )

    def forward(
        self, embedded: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`embedded` [B, R, L, H] token embeddings of R right-padded references, `mask` [B, R, L] true on tokens.

        Returns the pooled token states [B, L, H], their mask [B, L] (true where any reference has a token) and the
        pooled final states [num_layers, B, H]; positions and examples without any token get zeros.
        """
        batch, num_refs, length, width = embedded.shape
        flat_mask = mask.reshape(batch * num_refs, length)
        lengths = flat_mask.sum(-1)  # [B * R]
        present = lengths > 0  # [B * R]: references with at least one token
        states = embedded.new_zeros(batch * num_refs, length, width)
        finals = embedded.new_zeros(self.num_layers, batch * num_refs, width)
        if present.any():
            # Only the references that exist go through the GRU (packing rejects empty sequences).
            packed = pack_padded_sequence(
                embedded.reshape(batch * num_refs, length, width)[present],
                lengths[present].cpu(),
                batch_first=True,
                enforce_sorted=False,
            )
            outputs, last = run_outside_autocast(self.gru, packed)
            outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=length)  # [N, L, 2H]
            # The two directions summed, cast to the buffers' dtype (the embeddings'): an indexed write needs both
            # alike, and the GRU's outputs have its weights' dtype (the first H200 run wrote cuDNN's fp16 ones here).
            states[present] = (outputs[..., :width] + outputs[..., width:]).to(states.dtype)
            # [2 * layers, N, H] -> [layers, 2, N, H] -> per layer, both directions summed
            finals[:, present] = last.view(self.num_layers, 2, -1, width).sum(1).to(finals.dtype)

        lowest = torch.finfo(states.dtype).min
        states = states.view(batch, num_refs, length, width).masked_fill(~mask[..., None], lowest)
        states_mask = mask.any(1)  # [B, L]
        pooled = states.amax(1).masked_fill(~states_mask[..., None], 0.0)  # [B, L, H]
        ref_present = present.view(batch, num_refs)  # [B, R]
        finals = finals.view(self.num_layers, batch, num_refs, width)
        finals = finals.masked_fill(~ref_present[None, :, :, None], lowest).amax(2)  # [layers, B, H]
        finals = finals.masked_fill(~ref_present.any(1)[None, :, None], 0.0)
        return pooled, states_mask, finals


class Ref2SeqDecoder(nn.Module):
    """The GRU decoder with Luong attention to the user's and the business's pooled states (`LuongAttnDecoderRNN`)."""

    def __init__(self, config: Ref2SeqConfig):
        super().__init__()
        width = config.hidden_size
        self.dropout = config.decoder_dropout
        self.gru = nn.GRU(
            width, width, config.num_layers, batch_first=True,
            dropout=config.decoder_dropout if config.num_layers > 1 else 0.0,
        )  # fmt: skip
        self.attention = nn.Linear(width, width, bias=False)  # W_a of the "general" score
        self.combine = nn.Linear(3 * width, width)  # W_c of the attentional state

    def attend(self, queries: torch.Tensor, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Context [B, T, H]: `queries` [B, T, H] attend to `states` [B, L, H] where `mask` [B, L] is true; a row
        with nothing to attend to gets a zero context."""
        scores = queries @ self.attention(states).transpose(1, 2)  # [B, T, L]
        scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        # Times the mask: an all-masked row's uniform softmax becomes zero weights instead of averaging padding.
        weights = scores.softmax(-1) * mask[:, None, :].to(scores.dtype)
        return weights @ states

    def forward(
        self,
        embedded: torch.Tensor,
        initial_hidden_state: torch.Tensor,
        user_states: torch.Tensor,
        user_states_mask: torch.Tensor,
        item_states: torch.Tensor,
        item_states_mask: torch.Tensor,
    ) -> torch.Tensor:
        """`embedded` [B, T, H] target embeddings, `initial_hidden_state` [B, layers, H] -> attentional states [B, T, H]."""
        embedded = F.dropout(embedded, self.dropout, self.training)
        outputs, _ = run_outside_autocast(
            self.gru, embedded, initial_hidden_state.transpose(0, 1).contiguous()
        )  # [B, T, H]
        outputs = F.dropout(outputs, self.dropout, self.training)
        user_context = self.attend(outputs, user_states, user_states_mask)
        item_context = self.attend(outputs, item_states, item_states_mask)
        return torch.tanh(self.combine(torch.cat([outputs, user_context, item_context], dim=-1)))


class Ref2SeqPreTrainedModel(PreTrainedModel):
    config: Ref2SeqConfig
    config_class = Ref2SeqConfig
    base_model_prefix = "ref2seq"
    main_input_name = "input_ids"
    # A new model's generation config: the paper's decoding, saved with the model.
    generation_config_class = BaselineGenerationConfig
    # `save_pretrained` ships the code for `AutoModel.from_pretrained(repo, trust_remote_code=True)`.
    _auto_class = "AutoModel"
    # `forward` returns a per-batch token-mean loss and takes no `num_items_in_batch`.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=1.0)
        elif isinstance(module, nn.GRU):
            bound = 1.0 / math.sqrt(module.hidden_size)
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)


class Ref2SeqForExplanation(Ref2SeqPreTrainedModel, GenerationMixin):
    """
    Ref2Seq explanation generator: reference encoders + attention GRU decoder + output layer.

    Example:

    ```python
    >>> import torch
    >>> from gest_showcases.baselines.configuration_ref2seq import Ref2SeqConfig
    >>> model = Ref2SeqForExplanation(Ref2SeqConfig(vocab_size=300, hidden_size=32, num_layers=1, bos_token_id=0,
    ...                                             eos_token_id=0)).eval()
    >>> references = torch.randint(1, 300, (2, 3, 7))
    >>> ids = model.generate(user_reference_ids=references, user_reference_mask=torch.ones_like(references),
    ...                      item_reference_ids=references, item_reference_mask=torch.ones_like(references),
    ...                      max_new_tokens=8)
    ```
    """

    # The collator's conditioning inputs (see baselines/collator.py): the user's and the business's reference texts.
    conditioning_inputs = ("references",)

    def __init__(self, config: Ref2SeqConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.user_encoder = Ref2SeqReferenceEncoder(config)
        self.item_encoder = Ref2SeqReferenceEncoder(config)
        self.decoder = Ref2SeqDecoder(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embeddings = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def encode(
        self,
        user_reference_ids: torch.LongTensor,
        user_reference_mask: torch.Tensor | None,
        item_reference_ids: torch.LongTensor,
        item_reference_mask: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        """Run both reference encoders once: the decoder's inputs, batch first (so beam search can expand them).

        Args:
            user_reference_ids (`torch.LongTensor` of shape `(batch_size, num_references, reference_length)`):
                The user's reference texts (history reviews), right-padded, without BOS/EOS.
            user_reference_mask (`torch.Tensor` of the same shape, *optional*):
                True (1) on tokens; an all-zero row is a missing reference. All true when omitted.
            item_reference_ids, item_reference_mask:
                The same for the business's reference texts (other users' explanations of it).

        Returns:
            `dict` with `user_states` [B, L, H] and `user_states_mask` [B, L] (the pooled token states),
            `item_states`, `item_states_mask` likewise, and `initial_hidden_state` [B, num_layers, H].
        """
        if user_reference_ids is None or item_reference_ids is None:
            raise ValueError("Ref2Seq needs user_reference_ids and item_reference_ids")
        encoded = {}
        finals = 0.0
        for side, ids, mask, encoder in (
            ("user", user_reference_ids, user_reference_mask, self.user_encoder),
            ("item", item_reference_ids, item_reference_mask, self.item_encoder),
        ):
            mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
            # The GRU reads each reference's first `mask.sum()` tokens: the mask must be 1s then 0s.
            check_right_padded(mask.flatten(0, 1))
            states, states_mask, side_finals = encoder(self.embeddings(ids), mask)
            encoded[f"{side}_states"], encoded[f"{side}_states_mask"] = states, states_mask
            finals = finals + side_finals
        encoded["initial_hidden_state"] = finals.transpose(0, 1)  # [layers, B, H] -> [B, layers, H]
        return encoded

    @can_return_tuple  # `return_dict=False` (or `config.return_dict=False`): a tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        user_reference_ids: torch.LongTensor | None = None,
        user_reference_mask: torch.Tensor | None = None,
        item_reference_ids: torch.LongTensor | None = None,
        item_reference_mask: torch.Tensor | None = None,
        user_states: torch.FloatTensor | None = None,
        user_states_mask: torch.Tensor | None = None,
        item_states: torch.FloatTensor | None = None,
        item_states_mask: torch.Tensor | None = None,
        initial_hidden_state: torch.FloatTensor | None = None,
        **kwargs,
    ) -> CausalLMOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Target token ids (BOS, explanation, EOS, right padding).
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for target tokens, 0 for padding, which must be on the right (checked): the decoder is a
                left-to-right GRU, so right padding never reaches the positions before it, and `labels` ignore
                it.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                LM labels, -100 where ignored; shifted inside the model (`labels = input_ids` works).
            user_reference_ids, user_reference_mask, item_reference_ids, item_reference_mask:
                The reference texts, see [`~Ref2SeqForExplanation.encode`]. Ignored when the encoded states are
                given.
            user_states, user_states_mask, item_states, item_states_mask, initial_hidden_state:
                The output of [`~Ref2SeqForExplanation.encode`], so decoding steps do not rerun the encoders.
        """
        check_logits_only(self, kwargs)
        check_right_padded(attention_mask)
        if user_states is None:
            encoded = self.encode(
                user_reference_ids, user_reference_mask, item_reference_ids, item_reference_mask
            )
        else:
            encoded = {
                "user_states": user_states, "user_states_mask": user_states_mask, "item_states": item_states,
                "item_states_mask": item_states_mask, "initial_hidden_state": initial_hidden_state,
            }  # fmt: skip
        hidden_states = self.decoder(self.embeddings(input_ids), **encoded)
        logits = self.lm_head(hidden_states)  # [B, T, V]

        loss = None
        if labels is not None:
            loss = shifted_cross_entropy(logits, labels)
        output = CausalLMOutput(loss=loss, logits=logits)
        return output

    @torch.no_grad()
    def generate(
        self,
        inputs: torch.LongTensor | None = None,
        user_reference_ids: torch.LongTensor | None = None,
        user_reference_mask: torch.Tensor | None = None,
        item_reference_ids: torch.LongTensor | None = None,
        item_reference_mask: torch.Tensor | None = None,
        **kwargs,
    ):
        """Generate explanations; the reference encoders run once, before the beams are expanded.

        Takes the reference texts (see [`~Ref2SeqForExplanation.encode`]) and any [`~GenerationMixin.generate`]
        argument; the defaults are the model's `generation_config` (a new model's: the paper's 2 beams, at most 64
        new tokens). The decoder prompt comes as `inputs` or `input_ids`; with neither, decoding starts from BOS.
        """
        encoded = self.encode(
            user_reference_ids, user_reference_mask, item_reference_ids, item_reference_mask
        )
        inputs = generation_prompt(inputs, kwargs, self.generation_config.bos_token_id, user_reference_ids)
        return super().generate(inputs, **encoded, **kwargs)


__all__ = ["Ref2SeqForExplanation", "Ref2SeqPreTrainedModel"]
