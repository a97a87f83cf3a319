"""Show and Tell: the user's photos as the first input step of an LSTM that writes the explanation.

Vinyals, Toshev, Bengio, Erhan, "Show and Tell: A Neural Image Caption Generator", CVPR 2015; the "ST" row of the
paper's Table 2 ([47] there). The architecture follows the authors' TensorFlow release, `tensorflow/models`,
`research/im2txt/im2txt/show_and_tell_model.py` (read through the fork `ALISCIFP/models`, same path, whose model code
is upstream's) and `configuration.py` there:

- the image vector goes through a fully connected layer without bias or activation to the word-embedding width;
- an LSTM starts from the zero state, reads the image embedding as its first input step (that step's output is
  discarded), then the target tokens `BOS y_1 ... y_n`; a fully connected layer maps each output to the vocabulary;
- dropout on the LSTM's inputs and outputs (`DropoutWrapper`, keep probability 0.7 there);
- every weight uniform in `[-0.08, 0.08]`; the LSTM's forget gate gets the bias `+1` of TensorFlow's
  `BasicLSTMCell(forget_bias=1.0)`;
- loss: token-mean cross-entropy of the next token.

Deviations, and why:

- Several photos per example (the user's photos of the business, at most `max_images`) where Show and Tell reads
  one image: the masked mean of the valid photos' features is the image vector. It is the set's CLIP centroid,
  independent of photo order and of padding, and keeps the model's single image step; feeding the photos as several
  leading steps would make the LSTM depend on an arbitrary photo order.
- CLIP ViT-B/32 image embeddings (`image_feature_dim` 512) instead of an Inception-v3 CNN: the paper's Table 2 fed
  CLIP features to every image model, and the package caches them once for all rows.
- GPT-2's BPE vocabulary instead of im2txt's word vocabulary (words seen at least 4 times): every row of Table 2
  then reads and writes the same tokens, so BLEU and Distinct compare like for like.
- Widths 256 instead of 512 (see [`ShowAndTellConfig`]); the training recipe (SGD at rate 2.0, gradient clipping 5,
  fine-tuning the CNN) is the package's shared trainer's, not im2txt's.
- Decoding is the package's (beam 2, at most 64 new tokens) through transformers' `GenerationMixin` instead of
  im2txt's beam 3 with length 20.
- No recurrent state is kept between decoding steps: each step re-runs the LSTM over the prefix (the output layer,
  the costly part with 50k tokens, runs on the last position only), so beam search needs no cache reordering.

This file imports only torch, transformers and its package neighbours (relatively), so `save_pretrained` can ship it for
`AutoModel.from_pretrained(path, trust_remote_code=True)`.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutput
from transformers.utils.generic import can_return_tuple

from .configuration_show_and_tell import ShowAndTellConfig
from .generation_utils import (
    BaselineGenerationConfig,
    check_logits_only,
    check_right_padded,
    generation_prompt,
    run_outside_autocast,
    shifted_cross_entropy,
)


class ShowAndTellPreTrainedModel(PreTrainedModel):
    config: ShowAndTellConfig
    config_class = ShowAndTellConfig
    base_model_prefix = "show_and_tell"
    main_input_name = "input_ids"
    # A new model's generation config: the paper's decoding, saved with the model.
    generation_config_class = BaselineGenerationConfig
    # `save_pretrained` ships the code for `AutoModel.from_pretrained(repo, trust_remote_code=True)`.
    _auto_class = "AutoModel"
    # `forward` returns a per-batch token-mean loss and takes no `num_items_in_batch`.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        scale = self.config.initializer_scale
        if isinstance(module, nn.Linear):
            init.uniform_(module.weight, -scale, scale)
            if module.bias is not None:
                init.uniform_(module.bias, -scale, scale)
        elif isinstance(module, nn.Embedding):
            init.uniform_(module.weight, -scale, scale)
        elif isinstance(module, nn.LSTM):
            init.uniform_(module.weight_ih_l0, -scale, scale)
            init.uniform_(module.weight_hh_l0, -scale, scale)
            init.uniform_(module.bias_ih_l0, -scale, scale)
            # torch sums two biases where BasicLSTMCell has one plus `forget_bias=1.0`: the second holds that 1.
            # Gate order in torch: input, forget, cell, output.
            forget_bias = torch.zeros_like(module.bias_hh_l0)
            forget_bias[module.hidden_size : 2 * module.hidden_size] = 1.0
            init.copy_(module.bias_hh_l0, forget_bias)


class ShowAndTellForExplanation(ShowAndTellPreTrainedModel, GenerationMixin):
    """
    Show and Tell over a user's photos: mean photo feature -> linear image embedding -> first LSTM step, then the
    tokens; a linear layer gives the next-token scores.

    Example:

    ```python
    >>> import torch
    >>> config = ShowAndTellConfig(vocab_size=100, bos_token_id=99, eos_token_id=99, pad_token_id=99,
    ...                            image_feature_dim=8, embedding_size=16, hidden_size=16)
    >>> model = ShowAndTellForExplanation(config).eval()
    >>> ids = model.generate(image_features=torch.randn(2, 3, 8), image_mask=torch.ones(2, 3, dtype=torch.bool),
    ...                      max_new_tokens=8)
    ```
    """

    conditioning_inputs = ("image",)

    def __init__(self, config: ShowAndTellConfig):
        super().__init__(config)
        self.image_embedding = nn.Linear(config.image_feature_dim, config.embedding_size, bias=False)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)
        self.lstm = nn.LSTM(config.embedding_size, config.hidden_size, batch_first=True)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embed_tokens = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def embed_images(
        self, image_features: torch.Tensor, image_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The image step: the mean of the valid photos' features through the image embedding; [B, embedding_size].

        Args:
            image_features (`torch.FloatTensor` of shape `(batch_size, num_images, image_feature_dim)`):
                The photos' features, padded.
            image_mask (`torch.BoolTensor` of shape `(batch_size, num_images)`, *optional*):
                True for real photos; all true when omitted. A row without photos gets the zero image vector.
        """
        # In the weights' dtype: a bf16 model reads fp32 features, as PC2L does.
        image_features = image_features.to(self.image_embedding.weight.dtype)
        if image_mask is None:
            image_mask = image_features.new_ones(image_features.shape[:2], dtype=torch.bool)
        weights = image_mask.to(image_features.dtype).unsqueeze(-1)  # [B, N, 1]
        mean_features = (image_features * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # [B, Dv]
        return self.image_embedding(mean_features)

    @can_return_tuple  # `return_dict=False` (or `config.return_dict=False`): a tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        image_features: torch.FloatTensor | None = None,
        image_mask: torch.Tensor | None = None,
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
                The photos, see [`~ShowAndTellForExplanation.embed_images`].
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                LM labels, -100 where ignored; shifted inside the model (`labels = input_ids` works).
            logits_to_keep (`int`, *optional*, defaults to 0):
                Compute logits for the last `logits_to_keep` positions only (0: all); `generate` asks for 1, which
                spares the output layer over the whole prefix at every step.
        """
        check_logits_only(self, kwargs)
        if image_features is None:
            raise ValueError("ShowAndTellForExplanation needs image_features")
        check_right_padded(attention_mask)
        image_step = self.embed_images(image_features, image_mask).unsqueeze(1)  # [B, 1, E]
        steps = torch.cat([image_step, self.embed_tokens(input_ids)], dim=1)  # [B, 1 + T, E]
        dropout = self.config.dropout
        outputs, _ = run_outside_autocast(self.lstm, F.dropout(steps, dropout, self.training))  # [B, 1 + T, H]
        # The image step's output predicts nothing (im2txt discards it); output t + 1 follows token t.
        outputs = outputs[:, -logits_to_keep:] if logits_to_keep else outputs[:, 1:]
        logits = self.lm_head(F.dropout(outputs, dropout, self.training))  # [B, T, V]

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
        **kwargs,
    ):
        """Generate explanations from the photos (see [`~ShowAndTellForExplanation.embed_images`]).

        Takes any [`~GenerationMixin.generate`] argument; the defaults are the model's `generation_config` (a new
        model's: the paper's 2 beams, at most 64 new tokens). The prompt comes as `inputs` or `input_ids` (without
        `attention_mask`: unpadded); with neither, decoding starts from BOS. No cache is kept (`use_cache` is always
        off): every step re-reads the prefix, which gives the same tokens.
        """
        if image_features is None:
            raise ValueError("ShowAndTellForExplanation.generate needs image_features")
        inputs = generation_prompt(inputs, kwargs, self.generation_config.bos_token_id, image_features)
        return super().generate(inputs, image_features=image_features, image_mask=image_mask, **kwargs)


__all__ = ["ShowAndTellForExplanation", "ShowAndTellPreTrainedModel"]
