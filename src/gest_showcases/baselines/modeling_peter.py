"""PETER: one transformer over `[user, item, BOS, words...]` that explains from the user and item ids alone.

Li, Zhang, Chen, "Personalized Transformer for Explainable Recommendation", ACL 2021, following its public code
`lileipisces/PETER`, `module.py` (`PETER`, `generate_peter_mask`, `PositionalEncoding`,
`TransformerEncoderLayer`) and `main.py` (`train`: the losses). The user and item id embeddings and the word
embeddings (scaled by `sqrt(width)`, plus sinusoidal positions) go through post-LayerNorm transformer layers under
the PETER mask: the two id positions see each other, a word sees both ids and the words up to itself. The shared
output layer (`hidden2token`) reads every word position for the explanation (next-token prediction) and the item
position for the context task: predicting the explanation's words as a bag of words, which ties the item position
(and through it the ids) to what is said.

Deviations from the public code, and why:
- GPT-2's BPE vocabulary instead of the code's 20,000-word vocabulary: every row of Table 2 then writes the same
  tokens, so BLEU and Distinct compare like for like.
- No rating prediction (the code's `MLP` on the user position, weight 0.1): the shared batch carries no rating.
- The context targets are the explanation's tokens without BOS and EOS (the code's `seq[1:-1]` drops the last
  position, which keeps EOS in the bag for explanations shorter than the maximum and drops it for the others);
  the context loss is their token mean over the batch, as the code's `NLLLoss`.
- Unknown ids: id 0 stands for a user or business never seen in training, learnt by replacing ids with 0 with
  probability `unknown_id_probability` in training (see `id_embeddings.py`); the code's splits have no cold ids.
- Padding is masked by the attention mask (GPT-2's pad token is its EOS, so padding cannot be told from the ids);
  the code masks its `<pad>` token.
- Decoding: the showcases paper's beam 2 and at most 64 new tokens (the code: greedy, 15 words). No cache: each
  step reruns the transformer over the prefix.
- Widths: see [`PeterConfig`] (the defaults halve the code's 512/2048 for CPU training on ~1,000 examples).
- Initialisation: uniform(-0.1, 0.1) embeddings and output layer with zero bias (the code's `init_weights`);
  Xavier-uniform attention and feed-forward weights with zero biases (torch's `MultiheadAttention` init for the
  attention; the code's feed-forward layers had torch's default Kaiming-uniform).
- The attention runs as `scaled_dot_product_attention` over one fused query/key/value projection, the same
  computation as the code's `nn.MultiheadAttention` (whose attention maps the code also returns; not here).

This file imports only torch, transformers and modules of its folder (relatively), so `save_pretrained` can ship it
for `AutoModel.from_pretrained(path, trust_remote_code=True)`.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_peter import PeterConfig
from .generation_utils import (
    BaselineGenerationConfig,
    check_logits_only,
    generation_prompt,
    shifted_cross_entropy,
)
from .id_embeddings import UserItemEmbeddings
from .positions import sinusoidal_positions

# Positions of the id tokens before the words: the user, then the item (whose state predicts the context).
NUM_ID_TOKENS = 2
ITEM_POSITION = 1


def peter_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """The PETER mask of `[user, item, words...]`: [B, 2 + T, 2 + T] bool, true where a query may attend a key.

    Left-to-right attention, except that the user also sees the item (`generate_peter_mask`: `mask[0, 1]`
    allowed), and no query sees a padded word (`attention_mask` [B, T], 1 on words, 0 on padding). Every query sees
    the two ids, so no row is all false.
    """
    batch, length = attention_mask.shape
    total = NUM_ID_TOKENS + length
    allowed = torch.ones(total, total, dtype=torch.bool, device=attention_mask.device).tril()
    allowed[:NUM_ID_TOKENS, :NUM_ID_TOKENS] = True
    keys = torch.cat([attention_mask.new_ones(batch, NUM_ID_TOKENS), attention_mask], dim=1).bool()  # [B, S]
    return allowed[None] & keys[:, None, :]


class PeterLayer(nn.Module):
    """Post-LayerNorm transformer layer (the code's `TransformerEncoderLayer`): self-attention, then ReLU FFN."""

    def __init__(self, config: PeterConfig):
        super().__init__()
        width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.dropout = config.dropout
        self.qkv_proj = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, width)
        self.final_layer_norm = nn.LayerNorm(width)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """`hidden_states` [B, S, D]; `attention_mask` [B, 1, S, S] bool, true where a query may attend a key."""
        batch, length, width = hidden_states.shape
        # [B, S, 3 * D] -> 3 x [B, heads, S, D / heads]
        query, key, value = (
            self.qkv_proj(hidden_states).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        )
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=self.dropout if self.training else 0.0
        )
        attended = attended.transpose(1, 2).reshape(batch, length, width)  # [B, S, D]
        hidden_states = self.self_attn_layer_norm(
            hidden_states + F.dropout(self.out_proj(attended), self.dropout, self.training)
        )
        feed_forward = self.fc2(F.dropout(F.relu(self.fc1(hidden_states)), self.dropout, self.training))
        return self.final_layer_norm(hidden_states + F.dropout(feed_forward, self.dropout, self.training))


@dataclass
class PeterOutput(ModelOutput):
    """
    Output of [`PeterForExplanation`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            `loss_ce + config.context_weight * loss_context`.
        logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
            Next-token scores at the word positions.
        loss_ce (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Token-mean cross-entropy of the next-token prediction (explanation generation).
        loss_context (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Context prediction: the token-mean negative log-likelihood of the explanation's words (without BOS and
            EOS) under the item position's word distribution.
        context_logits (`torch.FloatTensor` of shape `(batch_size, vocab_size)`):
            The item position's word scores (the context prediction).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    loss_ce: torch.FloatTensor | None = None
    loss_context: torch.FloatTensor | None = None
    context_logits: torch.FloatTensor | None = None


class PeterPreTrainedModel(PreTrainedModel):
    config: PeterConfig
    config_class = PeterConfig
    base_model_prefix = "peter"
    main_input_name = "input_ids"
    # A new model's generation config: the paper's decoding, saved with the model.
    generation_config_class = BaselineGenerationConfig
    # `save_pretrained` ships the code for `AutoModel.from_pretrained(repo, trust_remote_code=True)`.
    _auto_class = "AutoModel"
    # `forward` returns a per-batch mean loss and takes no `num_items_in_batch`.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding) or module is self.get_output_embeddings():
            # The code's `init_weights`: embeddings and the output layer `hidden2token` uniform in +-0.1.
            init.uniform_(module.weight, -0.1, 0.1)
            if isinstance(module, nn.Linear):
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class PeterForExplanation(PeterPreTrainedModel, GenerationMixin):
    """
    PETER explanation generator: id and word embeddings, transformer under the PETER mask, shared output layer.

    Example:

    ```python
    >>> import torch
    >>> from gest_showcases.baselines.configuration_peter import PeterConfig
    >>> model = PeterForExplanation(PeterConfig(vocab_size=300, num_users=10, num_items=5, hidden_size=32,
    ...                                         bos_token_id=0, eos_token_id=0)).eval()
    >>> ids = model.generate(user_ids=torch.tensor([3, 0]), item_ids=torch.tensor([1, 4]), max_new_tokens=8)
    ```
    """

    # The collator's conditioning inputs (see baselines/collator.py): user and item ids, 0 for unknown ids.
    conditioning_inputs = ("ids",)

    def __init__(self, config: PeterConfig):
        super().__init__(config)
        self.id_embeddings = UserItemEmbeddings(
            config.num_users, config.num_items, config.hidden_size, config.unknown_id_probability
        )
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(PeterLayer(config) for _ in range(config.num_layers))
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)  # the code's `hidden2token`
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.word_embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.word_embeddings = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    @can_return_tuple  # `return_dict=False` (or `config.return_dict=False`): a tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        user_ids: torch.LongTensor | None = None,
        item_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> PeterOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Target token ids (BOS, explanation, EOS, right padding).
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for target tokens, 0 for padding; all ones when omitted.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                LM labels, -100 where ignored; shifted inside the model (`labels = input_ids` works). They also give
                the context targets.
            user_ids (`torch.LongTensor` of shape `(batch_size,)`), item_ids (`torch.LongTensor` of shape `(batch_size,)`):
                User and business ids from the train split's vocabularies; 0 for an unknown id.
        """
        check_logits_only(self, kwargs)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        width = self.config.hidden_size
        hidden_states = torch.cat(
            [self.id_embeddings(user_ids, item_ids), self.word_embeddings(input_ids)], dim=1
        )
        hidden_states = hidden_states * math.sqrt(width)
        hidden_states = hidden_states + sinusoidal_positions(
            hidden_states.shape[1], width, hidden_states.dtype, hidden_states.device
        )
        hidden_states = F.dropout(hidden_states, self.config.dropout, self.training)  # [B, 2 + T, D]
        mask = peter_attention_mask(attention_mask)[:, None]  # [B, 1, S, S]: the same for every head
        for layer in self.layers:
            hidden_states = layer(hidden_states, mask)
        logits = self.lm_head(hidden_states[:, NUM_ID_TOKENS:])  # [B, T, V]
        context_logits = self.lm_head(hidden_states[:, ITEM_POSITION])  # [B, V]

        output = PeterOutput(logits=logits, context_logits=context_logits)
        if labels is not None:
            targets = labels[:, 1:].to(logits.device)  # position t predicts token t + 1
            output.loss_ce = shifted_cross_entropy(logits, labels)
            output.loss_context = self.context_loss(context_logits, targets)
            output.loss = output.loss_ce + self.config.context_weight * output.loss_context
        return output

    def context_loss(self, context_logits: torch.Tensor, targets: torch.LongTensor) -> torch.Tensor:
        """Token-mean NLL of the explanation's words (`targets` [B, T] without BOS/EOS/-100) under the item
        position's distribution `context_logits` [B, V]: every word of an explanation, wherever it stands."""
        special = [
            token for token in (self.config.bos_token_id, self.config.eos_token_id) if token is not None
        ]
        words = (targets != -100) & ~torch.isin(
            targets, torch.tensor(special, device=targets.device)
        )  # [B, T]
        log_probs = context_logits.float().log_softmax(-1)  # [B, V]
        picked = log_probs.gather(1, targets.clamp(min=0))  # [B, T]
        return -(picked * words).sum() / words.sum().clamp(min=1)

    @torch.no_grad()
    def generate(
        self,
        inputs: torch.LongTensor | None = None,
        user_ids: torch.LongTensor | None = None,
        item_ids: torch.LongTensor | None = None,
        **kwargs,
    ):
        """Generate explanations for `user_ids` [B] and `item_ids` [B] (0: unknown id) and any
        [`~GenerationMixin.generate`] argument; the defaults are the model's `generation_config` (a new model's: the
        paper's 2 beams, at most 64 new tokens). The decoder prompt comes as `inputs` or `input_ids`; with neither,
        decoding starts from BOS."""
        if user_ids is None or item_ids is None:
            raise ValueError("PETER needs user_ids and item_ids (0 for an unknown id)")
        inputs = generation_prompt(inputs, kwargs, self.generation_config.bos_token_id, user_ids)
        return super().generate(inputs, user_ids=user_ids, item_ids=item_ids, **kwargs)


__all__ = ["PeterForExplanation", "PeterOutput", "PeterPreTrainedModel", "peter_attention_mask"]
