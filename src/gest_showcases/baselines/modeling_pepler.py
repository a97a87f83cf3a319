"""PEPLER: GPT-2 reads the user's and the item's id embeddings as two continuous prompt vectors, then the text.

Li, Zhang, Chen, "Personalized Prompt Learning for Explainable Recommendation", ACM TOIS 2023 (continuous prompt
learning), following its public code `lileipisces/PEPLER`, `module.py` (`UIPrompt`, `ContinuousPromptLearning`)
and `main.py`. The input embeddings are `[user embedding, item embedding, word embeddings...]`, the prompts are
never padded and GPT-2's causal attention and position embeddings cover the whole sequence; the loss is GPT-2's
next-token cross-entropy over the text.

Deviations from the public code, and why:
- End-to-end training by default: the code first tunes the prompts with GPT-2 frozen, then both ("sequential
  tuning"); here the prompts and GPT-2 train together from the start (the paper's other strategy), so one run of
  the shared trainer trains it. Freezing `decoder` for a first run gives sequential tuning.
- GPT-2's tokenizer as is, for every row of Table 2: BOS, EOS and padding are GPT-2's `<|endoftext|>` (the code adds
  `<bos>`, `<eos>`, `<pad>` tokens); padding is masked by the attention mask, as in the code.
- The text positions' logits only: position t predicts token t + 1 of the text (the shared batch format), so the
  item prompt's prediction of BOS, a constant in the code's loss, is left out.
- Unknown ids: id 0 stands for a user or business never seen in training, learnt by replacing ids with 0 with
  probability `unknown_id_probability` in training (see `id_embeddings.py`); the code's splits have no cold ids.
- No rating regulariser (the code's `RecReg` variant): the shared batch carries no rating.
- Decoding: the showcases paper's beam 2 and at most 64 new tokens (the code: greedy, 20 words). No cache: each
  step reruns GPT-2 over the prompts and the prefix.
- The package's world has no pretrained GPT-2 (no download here): it starts from the world's own small GPT-2, as
  PC2L does.

This file imports only torch, transformers and modules of its folder (relatively), so `save_pretrained` can ship it
for `AutoModel.from_pretrained(path, trust_remote_code=True)`.
"""

import torch
from torch import nn
from transformers import GenerationMixin, GPT2LMHeadModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutput
from transformers.utils.generic import can_return_tuple

from .configuration_pepler import PeplerConfig
from .generation_utils import (
    BaselineGenerationConfig,
    check_logits_only,
    generation_prompt,
    shifted_cross_entropy,
)
from .id_embeddings import UserItemEmbeddings

NUM_PROMPTS = 2  # the user's and the item's


class PeplerPreTrainedModel(PreTrainedModel):
    config: PeplerConfig
    config_class = PeplerConfig
    base_model_prefix = "pepler"
    main_input_name = "input_ids"
    _no_split_modules = ["GPT2Block"]
    _supports_sdpa = True
    supports_gradient_checkpointing = True
    # A new model's generation config: the paper's decoding, saved with the model.
    generation_config_class = BaselineGenerationConfig
    # `save_pretrained` ships the code for `AutoModel.from_pretrained(repo, trust_remote_code=True)`.
    _auto_class = "AutoModel"
    # `forward` returns a per-batch token-mean loss and takes no `num_items_in_batch`.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2 initialises itself (a sub-model); the prompts are the code's `init_prompt`: uniform in +-0.1.
        if isinstance(module, nn.Embedding):
            init.uniform_(module.weight, -0.1, 0.1)


class PeplerForExplanation(PeplerPreTrainedModel, GenerationMixin):
    """
    PEPLER explanation generator: user and item prompt embeddings + GPT-2.

    Example:

    ```python
    >>> import torch
    >>> from gest_showcases.baselines.configuration_pepler import PeplerConfig
    >>> config = PeplerConfig(decoder={"n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 300, "bos_token_id": 0,
    ...                                "eos_token_id": 0}, num_users=10, num_items=5)
    >>> model = PeplerForExplanation(config).eval()
    >>> ids = model.generate(user_ids=torch.tensor([3, 0]), item_ids=torch.tensor([1, 4]), max_new_tokens=8)
    ```
    """

    # The collator's conditioning inputs (see baselines/collator.py): user and item ids, 0 for unknown ids.
    conditioning_inputs = ("ids",)

    def __init__(self, config: PeplerConfig):
        super().__init__(config)
        self.id_embeddings = UserItemEmbeddings(
            config.num_users, config.num_items, config.decoder.n_embd, config.unknown_id_probability
        )
        self.decoder = GPT2LMHeadModel(config.decoder)
        self.post_init()

    @classmethod
    def from_decoder_pretrained(
        cls, decoder_name_or_path: str, num_users: int, num_items: int, **config_kwargs
    ) -> "PeplerForExplanation":
        """Start GPT-2 from a checkpoint (a Hub name such as `"gpt2"` or a local folder), the prompts from random.

        `num_users`, `num_items`: the id vocabulary sizes (index 0, the unknown id, included); `config_kwargs` are
        the other [`PeplerConfig`] fields.
        """
        decoder = GPT2LMHeadModel.from_pretrained(decoder_name_or_path)
        model = cls(
            PeplerConfig(decoder=decoder.config, num_users=num_users, num_items=num_items, **config_kwargs)
        )
        model.decoder = decoder
        return model

    def get_input_embeddings(self) -> nn.Module:
        return self.decoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.decoder.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.decoder.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        # `resize_token_embeddings` (after adding a pad token) sets the LM head through here.
        self.decoder.set_output_embeddings(value)

    @can_return_tuple  # `return_dict=False` (or `config.return_dict=False`): a tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        user_ids: torch.LongTensor | None = None,
        item_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> CausalLMOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Target token ids (BOS, explanation, EOS, right padding).
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for target tokens, 0 for padding; all ones when omitted.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                LM labels, -100 where ignored; shifted inside the model (`labels = input_ids` works).
            user_ids (`torch.LongTensor` of shape `(batch_size,)`), item_ids (`torch.LongTensor` of shape `(batch_size,)`):
                User and business ids from the train split's vocabularies; 0 for an unknown id.
        """
        check_logits_only(self, kwargs)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        prompts = self.id_embeddings(user_ids, item_ids)  # [B, 2, D]
        words = self.decoder.transformer.wte(input_ids)  # [B, T, D]
        inputs_embeds = torch.cat([prompts.to(words.dtype), words], dim=1)  # [B, 2 + T, D]
        mask = torch.cat(
            [attention_mask.new_ones(attention_mask.shape[0], NUM_PROMPTS), attention_mask], dim=1
        )
        hidden_states = self.decoder.transformer(
            inputs_embeds=inputs_embeds, attention_mask=mask, use_cache=False
        ).last_hidden_state
        logits = self.decoder.lm_head(hidden_states[:, NUM_PROMPTS:])  # [B, T, V]

        loss = None
        if labels is not None:
            loss = shifted_cross_entropy(logits, labels)
        output = CausalLMOutput(loss=loss, logits=logits)
        return output

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
            raise ValueError("PEPLER needs user_ids and item_ids (0 for an unknown id)")
        inputs = generation_prompt(inputs, kwargs, self.generation_config.bos_token_id, user_ids)
        return super().generate(inputs, user_ids=user_ids, item_ids=item_ids, **kwargs)


__all__ = ["PeplerForExplanation", "PeplerPreTrainedModel"]
