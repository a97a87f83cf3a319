"""PC2L model configuration (Section 4.2-4.3 of the paper)."""

import math

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, GenerationConfig, GPT2Config, PreTrainedConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

INPUT_MODES = ("img", "text", "img+text")
IMAGE_CONTRASTIVE_LOSSES = ("none", "cl", "ccl")
REVIEW_CONTRASTIVE_LOSSES = ("none", "cl", "pcl")
CONTRASTIVE_TARGETS = ("decoder", "text")
CONTRASTIVE_SCORES = ("embedding", "likelihood")
HARD_NEGATIVE_GRADIENTS = ("full", "detached")
# What the contrastive losses train besides the heads (H23, H24): "none" detaches that side's states from them.
CONTRASTIVE_GRADIENTS = ("full", "none")
LIKELIHOOD_IMAGE_NEGATIVES = ("all", "entity")
IN_BATCH_LABELS = ("none", "noun_chunks")
GRADIENT_CONFLICTS = ("kept", "projected")
# The settings that take eq. 11's gradient apart (`generation/gradients.py`, H28 and H30) at the paper's values.
PAPER_GRADIENT_SETTINGS = {"gradient_conflicts": "kept", "contrastive_normaliser": "shared"}
CONTRASTIVE_NORMALISERS = ("shared", "separate")
# How phi_R pools the history reviews' encoder states: eq. 6's mean, or weighted towards the shown photos (H33).
REVIEW_POOLINGS = ("mean", "shown_photos")
# How a decoder other than GPT-2 adds its inserted cross-attention blocks to the residual stream.
CROSS_ATTENTION_GATES = ("tanh", "none")
# Cached image features a generator can read: the image backbone's pooled output, or CLIP image embeddings.
IMAGE_KINDS = ("vision", "image")
# What generators saved before `image_kind` was recorded read (the paper's CNN features).
LEGACY_IMAGE_KIND = "vision"
# The precisions cached features are computed in, `features.cache.FEATURE_DTYPES` (a test keeps the two equal):
# this file is also exported as the Hub's remote code, which cannot import the package.
FEATURE_DTYPES = ("float32", "bfloat16", "float16")
# The decoder with native cross-attention (`add_cross_attention`): the paper's model. Every other causal LM gets
# gated cross-attention blocks (`gated_cross_attention.py`).
NATIVE_CROSS_ATTENTION_DECODER = "gpt2"
# LayerNorm's default epsilon, for the encoder in front of a decoder that is not GPT-2 (whose own epsilon it reads).
DEFAULT_LAYER_NORM_EPS = 1e-5


def decoder_config_from_dict(decoder: dict) -> PreTrainedConfig:
    """The decoder config a dict describes: its `model_type`'s config class, GPT-2 when the dict names none (the
    shorthand `{"n_embd": 32, ...}` and what checkpoints saved before other decoders were accepted hold)."""
    decoder = dict(decoder)
    model_type = decoder.pop("model_type", NATIVE_CROSS_ATTENTION_DECODER)
    if model_type == NATIVE_CROSS_ATTENTION_DECODER:
        return GPT2Config(**decoder)
    return AutoConfig.for_model(model_type, **decoder)


@strict
class PC2LConfig(PreTrainedConfig):
    r"""
    Configuration of [`PC2LForConditionalGeneration`]: a multimodal encoder over image and history-review features
    and a causal-LM decoder that cross-attends to it, trained with the PC2L losses.

    The decoder is GPT-2 with its native cross-attention (the paper's model) or any other causal LM that
    `AutoModelForCausalLM` builds with its decoder layers at `<base model>.layers` (the Llama layout: Llama,
    SmolLM2, Mistral, Qwen2/3, Gemma, ...), into which gated cross-attention blocks are inserted (Flamingo style,
    `gated_cross_attention.py`): at initialisation such a model's logits are the bare LM's (with the default
    `cross_attention_gate`).

    Args:
        decoder (`dict` or [`PreTrainedConfig`], *optional*, defaults to a GPT-2 config):
            The decoder configuration: a config object or a dict with its `model_type` (a dict without one is
            GPT-2's). For GPT-2 `add_cross_attention` is always set `True`. A `model_type` that
            `AutoModelForCausalLM` cannot build raises a `ValueError`.
        cross_attention_every_n_layers (`int`, *optional*, defaults to 1):
            For a decoder other than GPT-2: a gated cross-attention block goes before every n-th decoder layer
            (layers `n - 1, 2n - 1, ...`; 1: before every layer). Fewer blocks decode faster. GPT-2 has its
            cross-attention in every block, so it must be 1 there.
        cross_attention_gate (`str`, *optional*, defaults to `"tanh"`):
            For a decoder other than GPT-2: how each inserted block's cross-attention and feed-forward outputs join
            the residual stream. `"tanh"` (Flamingo): through a learned `tanh(gate)` that starts at 0, so at
            initialisation the logits are the bare LM's. `"none"` (a documented option, docs/experiments.md, H13d):
            added as they are, as the paper inserts its new cross-attention into GPT-2 (and as GPT-2's own
            cross-attention is), so a fresh block changes the LM's outputs from the first step. GPT-2's own
            cross-attention has no gate and does not read it.
        encoder_hidden_size (`int`, *optional*):
            Width of the multimodal encoder; defaults to the decoder's hidden size (the paper: 768 for both).
            When it differs, a linear layer projects the encoder's output to the decoder's hidden size, so the
            encoder states (and the projection heads over them) always have the decoder's width.
        image_feature_dim (`int`, *optional*, defaults to 512):
            Dimension of the cached image features (CLIP ViT-B/32 image embeddings: 512).
        review_feature_dim (`int`, *optional*, defaults to 512):
            Dimension of the cached history-review features (CLIP text embeddings: 512).
        image_kind (`str`, *optional*):
            Which cached image features the generator reads (`gest-showcases train-pc2l --image_kind`): `"vision"`
            (the pooled output of the image backbone, the paper's CNN features) or `"image"` (CLIP image
            embeddings). Written by `train-pc2l`, read by `ShowcasePipeline`; `None` in checkpoints saved before it
            was recorded.
        image_feature_model (`str`, *optional*):
            Name or path of the model that computed the image features, as the feature folder records it.
        image_feature_fingerprint (`str`, *optional*):
            That model's fingerprint (a hash of its config and weights, `features.cache.checkpoint_fingerprint`), so
            a pipeline can check that its encoder computes the features the generator was trained on.
        image_feature_dtype (`str`, *optional*):
            The precision that model ran in (`"float32"`, `"bfloat16"`, `"float16"`; `features --dtype auto` is bf16
            on a GPU), so that a pipeline encodes in it too. `None`: not recorded, the pipeline uses float32.
        review_feature_model (`str`, *optional*), review_feature_fingerprint (`str`, *optional*),
        review_feature_dtype (`str`, *optional*):
            The same for the history-review features.
        encoder_layers (`int`, *optional*, defaults to 3):
            Number of self-attention layers of the multimodal encoder.
        encoder_attention_heads (`int`, *optional*, defaults to 12):
            Attention heads of each encoder layer.
        encoder_ffn_dim (`int`, *optional*, defaults to 3072):
            Width of the encoder feed-forward layers.
        encoder_dropout (`float`, *optional*, defaults to 0.1):
            Dropout of the encoder (attention, residual and feature projections).
        image_feature_noise (`float`, *optional*, defaults to 0.0):
            Training only (a documented deviation, docs/experiments.md, H9; 0 is the paper): Gaussian noise added
            to every photo feature vector `v` before the encoder reads it, `v + image_feature_noise * |v| * e /
            sqrt(d)` with `e ~ N(0, I_d)` drawn anew at every training forward, so the noise's root-mean-square
            norm is `image_feature_noise` times the vector's (padding rows, all zeros, stay zero). It makes the
            training photos look as a held-out photo of the same subject might: `gest-showcases experiment
            --features oracle` adds the same relative noise with `--oracle_noise` (and then renormalises, which this
            does not). Drawn once per training forward that runs the encoder, so every pass of it (the target, its
            hard negative, the swapped copies of the likelihood score) reads the same noisy photos; evaluation,
            generation, `encode` and negative mining (eval mode) read the features as they are.
        max_images (`int`, *optional*, defaults to 5):
            Most images per example; the collator keeps the first `max_images`.
        max_reviews (`int`, *optional*, defaults to 10):
            Most history reviews per example.
        input_mode (`str`, *optional*, defaults to `"img+text"`):
            Which inputs condition the decoder: `"img"`, `"text"` (history reviews) or `"img+text"`.
        image_contrastive (`str`, *optional*, defaults to `"ccl"`):
            Image-to-target contrastive loss: `"none"`, `"cl"` (InfoNCE, eq. 7) or `"ccl"` (InfoNCE with an
            entity-swapped hard negative, eq. 8). Weighted by `lambda1`.
        review_contrastive (`str`, *optional*, defaults to `"pcl"`):
            Review-to-target contrastive loss: `"none"`, `"cl"` (InfoNCE, eq. 7) or `"pcl"` (personality-weighted
            InfoNCE, eq. 9-10). Weighted by `lambda2`.
        lambda1 (`float`, *optional*, defaults to 0.2):
            Weight of the image contrastive loss in eq. 11.
        lambda2 (`float`, *optional*, defaults to 0.2):
            Weight of the review contrastive loss in eq. 11.
        pcl_alpha (`float`, *optional*, defaults to e):
            Base `alpha > 1` of the PCL negative weights `alpha ** (1 - sim(R_i, R_j))` (eq. 10).
        contrastive_temperature (`float`, *optional*, defaults to 0.1):
            InfoNCE temperature `tau` (not called `temperature`, which `generate` would read as a sampling
            temperature).
        projection_dim (`int`, *optional*, defaults to 256):
            Output width of the projection heads `phi_V`, `phi_R`, `phi_Y` (eq. 6).
        contrastive_target (`str`, *optional*, defaults to `"decoder"`):
            Which hidden states `H^Y` of the target the head `phi_Y` pools (eq. 6). `"decoder"` (the paper): the
            last layer of the decoder pass that computes the LM loss, which cross-attends to the very encoder
            states `phi_V` and `phi_R` pool, so the contrastive losses can be met by copying the inputs into
            the decoder states instead of by relating the text to them. `"text"` (a documented deviation, see
            docs/experiments.md): a second decoder pass over the target (and its hard negative) without
            cross-attention, so `H^Y` depends on the text alone, as the CLIP-style text tower of the loss.
            Read only with `contrastive_score="embedding"`.
        contrastive_score (`str`, *optional*, defaults to `"embedding"`):
            What the contrastive losses compare. `"embedding"` (the paper, eq. 6-9): cosine similarities of the
            projection heads' embeddings, over the batch's other targets (and CCL's entity-swapped target).
            `"likelihood"` (a documented deviation, see docs/experiments.md): the decoder's own log-likelihood
            of each target, summed over its tokens, against (CCL) the entity-swapped target under the same
            inputs and (CCL, CL) the same target under the next example's photos; (PCL, CL) the same target
            under the next example's history reviews, that negative weighted by eq. 10's `f(i, j)` for PCL. The
            softmax over these log-likelihoods (temperature 1, so it is the posterior of which inputs or
            which text under a uniform prior) trains the very distribution the decoder samples from; no
            projection heads are built. Costs one extra decoder pass per swapped input.
        likelihood_image_negatives (`str`, *optional*, defaults to `"all"`):
            With `contrastive_score="likelihood"` and CCL: `"all"` (above) or `"entity"` (a documented deviation,
            docs/experiments.md, H7): the entity-swapped target is CCL's only negative; the target under another
            example's photos is not scored (nor encoded). The two targets differ only from the swapped subject on,
            so the loss lowers the decoder's probability of naming another subject than the reference's given these
            photos, and leaves the rest of the sentence to cross-entropy.
        mined_negative_candidates (`int`, *optional*, defaults to 0):
            How CCL's entity-swapped hard negatives are chosen during training (read by `train-pc2l`, not by the
            model). 0 (the paper): made once before training, each swapped entity drawn at random. K > 0 (a
            documented deviation, docs/experiments.md, H8): from the second epoch on, every epoch re-mines each
            training target's negative as its likeliest one-entity swap under the model being trained, among the K
            swaps whose first token it finds likeliest (`generation.mined_negatives`).
        in_batch_labels (`str`, *optional*, defaults to `"none"`):
            Training only (read by `train-pc2l`, not by the model; a documented option, docs/experiments.md, H22).
            `"none"` (the paper): every other target of the batch is a negative of eqs. 7-9. `"noun_chunks"`: each
            example's labels are its target's noun chunks (the entities CCL's hard negatives swap, lower case), and
            two examples whose targets name one are left out of each other's in-batch negatives (`losses`,
            `shared_content`), a proxy for the pairs whose photos show the same thing (H20). Embedding score only.
        contrastive_warmup_ratio (`float`, *optional*, defaults to 0.0):
            Training only (read by [`PC2LTrainer`], not by the model; a documented option, docs/experiments.md,
            H15). 0 (the paper, whose decoder was pretrained): the contrastive losses from the first step. `r` in
            (0, 1): the first `r` of the run's optimizer steps (`ceil(r * max_steps)`, as transformers counts
            `warmup_ratio`) train on cross-entropy alone, then eq. 11 with `lambda1` and `lambda2` unchanged, so that
            a decoder trained from scratch already models language when the contrastive losses start. In a warm-up
            step the hard negatives are not run; the projection heads (and the text target's or the likelihood
            score's extra passes) still run, unused. Evaluation always scores eq. 11.
        gradient_conflicts (`str`, *optional*, defaults to `"kept"`):
            Training only (read by [`PC2LTrainer`], not by the model; a documented option, docs/experiments.md,
            H28). What a training step does when the contrastive losses' gradient points against cross-entropy's
            (a negative inner product over all the trained parameters together). `"kept"` (the paper): the step
            follows the gradient of eq. 11, their sum. `"projected"`: the contrastive part loses its component along
            cross-entropy's gradient in such a step, as PCGrad (Yu et al., 2020) projects one task's gradient off
            another's, so that to first order the contrastive losses never slow cross-entropy's descent; in the
            other steps nothing changes. The losses' values are unchanged; the trainer computes the two gradients
            separately (one more backward pass per step), in single-process training without a loss scaler.
        contrastive_normaliser (`str`, *optional*, defaults to `"shared"`):
            Training only (read by [`PC2LTrainer`], not by the model; a documented option, docs/experiments.md,
            H30). `"shared"` (the paper): one AdamW steps on the gradient of eq. 11, so where the contrastive losses'
            gradient is the larger (the encoder, H29) it fills the running mean of squared gradients that AdamW divides
            by, and cross-entropy's step there shrinks. `"separate"`: cross-entropy's gradient gets AdamW's step on
            its own moments (clipped, decayed and scheduled as the Trainer does for any gradient), and the contrastive
            part (`lambda1 L_img + lambda2 L_text`) an Adam step on moments of its own, times
            `contrastive_step_scale`, added to it. The losses' values are unchanged; the trainer computes the two
            gradients separately (one more backward pass per step), in single-process training without a loss
            scaler, with `--optim adamw_torch` or `adamw_torch_fused` (the default).
        contrastive_step_scale (`float`, *optional*, defaults to 0.2):
            With `contrastive_normaliser="separate"`: the contrastive step's size as a share of cross-entropy's
            (Adam's steps are about the learning rate in every coordinate, whatever the gradient's scale, so
            `lambda1` and `lambda2` then only weigh the two contrastive losses against each other). 0.2 reads the
            paper's `lambda1 = lambda2 = 0.2` as that share. Not read with `"shared"`.
        hard_negative_gradients (`str`, *optional*, defaults to `"full"`):
            Whether CCL's entity-swapped hard negatives (eq. 8) are trained through. `"full"` (the paper): the
            negatives run through the decoder with the targets, with gradients, so CCL moves the negative's
            embedding `phi_Y(H^Y_ent)` away from the image's `phi_V(H^V)` as well as the image's away from it.
            `"detached"` (a deviation from the paper, for speed; never the default): the negatives' decoder pass
            and `phi_Y` run under `torch.no_grad` (a decoder call of their own, which keeps no activations and has
            no backward), so CCL still pulls the image's embedding towards its target's and pushes it away from
            the negative's, but never moves the negative's embedding (nor, through it, the decoder). Forward values
            (losses, embeddings) are those of `"full"`; the trained model is not (docs/experiments.md, H14: less
            grounded and less varied than `"full"` on the experiment's default world). Read only when the batch has hard negatives
            (`image_contrastive="ccl"`), with either `contrastive_target`; the negatives are then computed in full,
            never from their target's prefix (the model's `_negative_prefix_sharing` is not read). Embedding
            scores only: `contrastive_score="likelihood"` refuses it, since there CCL trains by lowering the
            negative's log-likelihood, which a detached negative never would.

        decoder_contrastive_gradients (`str`, *optional*, defaults to `"full"`):
            Whether the contrastive losses train the decoder. `"full"` (the paper): `phi_Y` pools the decoder's
            states with their gradients, so eqs. 7-9 move the decoder (its self- and cross-attention and LM layers)
            as well as the encoder and the heads. `"none"` (a documented option, docs/experiments.md, H23): the
            decoder's states are detached before `phi_Y`, so the losses' values are unchanged, the decoder learns
            from cross-entropy alone, and the contrastive losses train the encoder (through `phi_V(H^V)`,
            `phi_R(H^R)`) and the projection heads. Embedding score only: the likelihood score has no `phi_Y`.
        encoder_contrastive_gradients (`str`, *optional*, defaults to `"full"`):
            Whether the image and review embeddings train the encoder. `"full"` (the paper): `phi_V` and `phi_R`
            pool the encoder's states with their gradients. `"none"` (a documented option, docs/experiments.md,
            H24): the encoder's states are detached before `phi_V` and `phi_R`, so the losses' values are
            unchanged and they reach the encoder only through `phi_Y(H^Y)`, whose decoder pass cross-attends to it
            (`contrastive_target="decoder"`; with `"text"` not at all). Embedding score only.
        review_pooling (`str`, *optional*, defaults to `"mean"`):
            How `phi_R` pools the history reviews' encoder states for eq. 7 or 9. `"mean"` (the paper, eq. 6): their
            average. `"shown_photos"` (a documented option, docs/experiments.md, H33): their average weighted by a
            softmax, over the example's history reviews, of each review's largest cosine similarity to a shown
            photo (input features, no gradient) over `review_pooling_temperature`, so that PCL pulls the
            explanation towards the user's reviews of what the photos show rather than towards all of their
            history. Needs both inputs and the embedding score.
        review_pooling_temperature (`float`, *optional*, defaults to 0.1):
            The softmax temperature of `review_pooling="shown_photos"` (lower: the closest reviews take more of the
            weight). Not read with `"mean"`.

    Example:

    ```python
    >>> from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration

    >>> config = PC2LConfig(decoder={"n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 300})
    >>> model = PC2LForConditionalGeneration(config)
    ```"""

    model_type = "pc2l"
    # Declared with `sub_configs` and built in `__post_init__` rather than with `sub_configs_defaults` /
    # `SubConfigSpec`, which recent transformers 5 releases have and earlier ones (5.17) lack: the config, and a
    # checkpoint's shipped code, then work on both. `AutoConfig`: the decoder may be any causal LM's config.
    sub_configs = {"decoder": AutoConfig}

    decoder: dict | PreTrainedConfig | None = None
    cross_attention_every_n_layers: int = 1
    cross_attention_gate: str = "tanh"
    encoder_hidden_size: int | None = None
    image_feature_dim: int = 512
    review_feature_dim: int = 512
    image_kind: str | None = None
    image_feature_model: str | None = None
    image_feature_fingerprint: str | None = None
    image_feature_dtype: str | None = None
    review_feature_model: str | None = None
    review_feature_fingerprint: str | None = None
    review_feature_dtype: str | None = None
    encoder_layers: int = 3
    encoder_attention_heads: int = 12
    encoder_ffn_dim: int = 3072
    encoder_dropout: float | int = 0.1
    image_feature_noise: float | int = 0.0
    max_images: int = 5
    max_reviews: int = 10
    input_mode: str = "img+text"
    image_contrastive: str = "ccl"
    review_contrastive: str = "pcl"
    lambda1: float | int = 0.2
    lambda2: float | int = 0.2
    pcl_alpha: float | int = math.e
    contrastive_temperature: float | int = 0.1
    projection_dim: int = 256
    contrastive_target: str = "decoder"
    contrastive_score: str = "embedding"
    hard_negative_gradients: str = "full"
    decoder_contrastive_gradients: str = "full"
    encoder_contrastive_gradients: str = "full"
    likelihood_image_negatives: str = "all"
    mined_negative_candidates: int = 0
    contrastive_warmup_ratio: float | int = 0.0
    in_batch_labels: str = "none"
    gradient_conflicts: str = "kept"
    contrastive_normaliser: str = "shared"
    contrastive_step_scale: float | int = 0.2
    review_pooling: str = "mean"
    review_pooling_temperature: float | int = 0.1

    def __post_init__(self, **kwargs):
        if self.decoder is None:
            self.decoder = GPT2Config()
        elif isinstance(self.decoder, dict):
            self.decoder = decoder_config_from_dict(self.decoder)
        if self.decoder.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            # Never build another decoder in its place (a Llama config once silently became a GPT-2).
            raise ValueError(
                f"PC2L's decoder must be a causal LM that transformers' AutoModelForCausalLM builds; "
                f"model_type={self.decoder.model_type!r} is not one"
            )
        if not self.uses_gated_cross_attention:
            # A decoder given as a dict or a pretrained GPT-2 config must still attend to the encoder.
            self.decoder.add_cross_attention = True
        super().__post_init__(**kwargs)
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {self.input_mode!r}")
        if self.cross_attention_gate not in CROSS_ATTENTION_GATES:
            raise ValueError(
                f"cross_attention_gate must be one of {CROSS_ATTENTION_GATES}, got {self.cross_attention_gate!r}"
            )
        if self.image_kind is not None and self.image_kind not in IMAGE_KINDS:
            raise ValueError(f"image_kind must be one of {IMAGE_KINDS} or None, got {self.image_kind!r}")
        for name in ("image_feature_dtype", "review_feature_dtype"):
            if getattr(self, name) not in (None, *FEATURE_DTYPES):
                raise ValueError(f"{name} must be one of {FEATURE_DTYPES} or None, got {getattr(self, name)!r}")
        if self.image_contrastive not in IMAGE_CONTRASTIVE_LOSSES:
            raise ValueError(
                f"image_contrastive must be one of {IMAGE_CONTRASTIVE_LOSSES}, got {self.image_contrastive!r}"
            )
        if self.review_contrastive not in REVIEW_CONTRASTIVE_LOSSES:
            raise ValueError(
                f"review_contrastive must be one of {REVIEW_CONTRASTIVE_LOSSES}, got {self.review_contrastive!r}"
            )
        if self.contrastive_target not in CONTRASTIVE_TARGETS:
            raise ValueError(
                f"contrastive_target must be one of {CONTRASTIVE_TARGETS}, got {self.contrastive_target!r}"
            )
        if self.contrastive_score not in CONTRASTIVE_SCORES:
            raise ValueError(
                f"contrastive_score must be one of {CONTRASTIVE_SCORES}, got {self.contrastive_score!r}"
            )
        if self.hard_negative_gradients not in HARD_NEGATIVE_GRADIENTS:
            raise ValueError(
                f"hard_negative_gradients must be one of {HARD_NEGATIVE_GRADIENTS}, got "
                f"{self.hard_negative_gradients!r}"
            )
        if self.contrastive_score == "likelihood" and self.hard_negative_gradients != "full":
            raise ValueError(
                "hard_negative_gradients='detached' applies to contrastive_score='embedding' only: the likelihood "
                "score's CCL trains by lowering the negative's log-likelihood, which a detached negative never does"
            )
        for side in ("decoder", "encoder"):
            name = f"{side}_contrastive_gradients"
            if getattr(self, name) not in CONTRASTIVE_GRADIENTS:
                raise ValueError(f"{name} must be one of {CONTRASTIVE_GRADIENTS}, got {getattr(self, name)!r}")
            if getattr(self, name) != "full" and self.contrastive_score != "embedding":
                raise ValueError(
                    f"{name}='none' applies to contrastive_score='embedding' only: the likelihood score is the "
                    f"decoder's own log-likelihood, with no projection heads to detach states from"
                )
        if self.likelihood_image_negatives not in LIKELIHOOD_IMAGE_NEGATIVES:
            raise ValueError(
                f"likelihood_image_negatives must be one of {LIKELIHOOD_IMAGE_NEGATIVES}, got "
                f"{self.likelihood_image_negatives!r}"
            )
        if self.likelihood_image_negatives == "entity" and (
            self.contrastive_score != "likelihood" or self.image_contrastive != "ccl"
        ):
            raise ValueError(
                "likelihood_image_negatives='entity' keeps CCL's entity-swapped negative alone: it needs "
                "contrastive_score='likelihood' and image_contrastive='ccl'"
            )
        mining = self.mined_negative_candidates
        if mining < 0 or (mining and self.image_contrastive != "ccl"):
            raise ValueError(
                f"mined_negative_candidates={mining}: mining replaces CCL's hard negatives, "
                "so it needs image_contrastive='ccl' and a count of at least 1 (0 turns it off)"
            )
        if not 0 <= self.contrastive_warmup_ratio < 1:
            raise ValueError(
                f"contrastive_warmup_ratio must be in [0, 1) (the share of the training steps on cross-entropy "
                f"alone), got {self.contrastive_warmup_ratio}"
            )
        if self.in_batch_labels not in IN_BATCH_LABELS:
            raise ValueError(f"in_batch_labels must be one of {IN_BATCH_LABELS}, got {self.in_batch_labels!r}")
        if self.in_batch_labels != "none" and (
            self.contrastive_score != "embedding" or self.image_contrastive == self.review_contrastive == "none"
        ):
            raise ValueError(
                f"in_batch_labels={self.in_batch_labels!r} leaves pairs out of the in-batch negatives: it needs a "
                "contrastive loss with contrastive_score='embedding'"
            )
        if self.gradient_conflicts not in GRADIENT_CONFLICTS:
            raise ValueError(f"gradient_conflicts must be one of {GRADIENT_CONFLICTS}, got {self.gradient_conflicts!r}")
        if self.gradient_conflicts != "kept" and self.image_contrastive == self.review_contrastive == "none":
            raise ValueError(
                "gradient_conflicts='projected' projects the contrastive losses' gradient: it needs at least one of them"
            )
        if self.contrastive_normaliser not in CONTRASTIVE_NORMALISERS:
            raise ValueError(
                f"contrastive_normaliser must be one of {CONTRASTIVE_NORMALISERS}, got {self.contrastive_normaliser!r}"
            )
        if self.contrastive_normaliser != "shared" and self.image_contrastive == self.review_contrastive == "none":
            raise ValueError(
                "contrastive_normaliser='separate' steps on the contrastive losses: it needs at least one of them"
            )
        if self.contrastive_normaliser != "shared" and self.gradient_conflicts != "kept":
            raise ValueError("contrastive_normaliser='separate' and gradient_conflicts='projected' do not combine")
        if self.review_pooling not in REVIEW_POOLINGS:
            raise ValueError(f"review_pooling must be one of {REVIEW_POOLINGS}, got {self.review_pooling!r}")
        if self.review_pooling != "mean" and (
            self.contrastive_score != "embedding" or self.review_contrastive == "none" or self.input_mode != "img+text"
        ):
            raise ValueError(
                "review_pooling='shown_photos' weighs phi_R's history reviews by the photos shown: it needs "
                "input_mode='img+text', a review_contrastive loss and contrastive_score='embedding'"
            )
        for name in ("max_images", "max_reviews"):  # a saved config.json can hold anything (session 43's review)
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1 (the most per example the collator keeps), "
                                 f"got {value!r}")  # fmt: skip
        # Written so that NaN fails too.
        if not 0 < self.review_pooling_temperature < float("inf"):
            raise ValueError(
                f"review_pooling_temperature must be a finite number > 0, got {self.review_pooling_temperature}"
            )
        if not 0 < self.contrastive_step_scale < float("inf"):
            raise ValueError(f"contrastive_step_scale must be a finite number > 0, got {self.contrastive_step_scale}")
        if self.contrastive_warmup_ratio and self.image_contrastive == self.review_contrastive == "none":
            raise ValueError("contrastive_warmup_ratio delays the contrastive losses: it needs at least one of them")
        if not 0 <= self.image_feature_noise < float("inf"):
            raise ValueError(f"image_feature_noise must be a finite number >= 0, got {self.image_feature_noise}")
        if self.image_feature_noise and not self.uses_images:
            raise ValueError("image_feature_noise perturbs the photo features: it needs images in input_mode")
        if self.contrastive_score == "likelihood" and self.contrastive_target != "decoder":
            raise ValueError("contrastive_target applies to contrastive_score='embedding' only")
        if self.image_contrastive != "none" and not self.uses_images:
            raise ValueError(f"image_contrastive={self.image_contrastive!r} needs images in input_mode")
        if self.review_contrastive != "none" and not self.uses_reviews:
            raise ValueError(f"review_contrastive={self.review_contrastive!r} needs reviews in input_mode")
        # Written so that NaN fails too (every comparison with NaN is False).
        if not 1 < self.pcl_alpha < float("inf"):
            raise ValueError(f"pcl_alpha must be a finite number > 1 (paper: e), got {self.pcl_alpha}")
        if not 0 < self.contrastive_temperature < float("inf"):
            raise ValueError(f"contrastive_temperature must be a finite number > 0, got {self.contrastive_temperature}")
        for name in ("lambda1", "lambda2"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ValueError(f"{name} (a loss weight) must be a finite number >= 0, got {getattr(self, name)}")
        if self.encoder_width % self.encoder_attention_heads:
            raise ValueError(
                f"the encoder width ({self.encoder_width}) must be divisible by "
                f"encoder_attention_heads={self.encoder_attention_heads}"
            )
        num_layers = self.decoder.num_hidden_layers
        if not 1 <= self.cross_attention_every_n_layers <= num_layers:
            raise ValueError(
                f"cross_attention_every_n_layers must be in [1, {num_layers}] (the decoder's layers), got "
                f"{self.cross_attention_every_n_layers}"
            )
        if not self.uses_gated_cross_attention and self.cross_attention_every_n_layers != 1:
            raise ValueError("GPT-2 has cross-attention in every block: cross_attention_every_n_layers must be 1")
        if self.uses_gated_cross_attention and self.decoder.hidden_size % self.decoder.num_attention_heads:
            raise ValueError(
                f"the gated cross-attention splits the decoder's hidden size ({self.decoder.hidden_size}) into its "
                f"num_attention_heads={self.decoder.num_attention_heads}, which must divide it"
            )

    @property
    def uses_gated_cross_attention(self) -> bool:
        """Whether the decoder gets gated cross-attention blocks (any decoder but GPT-2, which has its own)."""
        return self.decoder.model_type != NATIVE_CROSS_ATTENTION_DECODER

    @property
    def gated_cross_attention_layers(self) -> tuple[int, ...]:
        """Indices of the decoder layers a gated cross-attention block goes before (empty for GPT-2)."""
        if not self.uses_gated_cross_attention:
            return ()
        every = self.cross_attention_every_n_layers
        return tuple(range(every - 1, self.decoder.num_hidden_layers, every))

    @property
    def encoder_width(self) -> int:
        """The multimodal encoder's width: `encoder_hidden_size`, or the decoder's hidden size."""
        return self.encoder_hidden_size or self.decoder.hidden_size

    @property
    def encoder_layer_norm_eps(self) -> float:
        """The encoder's LayerNorm epsilon: GPT-2's `layer_norm_epsilon` (as the paper's model always had), else
        LayerNorm's default."""
        return DEFAULT_LAYER_NORM_EPS if self.uses_gated_cross_attention else self.decoder.layer_norm_epsilon

    @property
    def uses_images(self) -> bool:
        return self.input_mode in ("img", "img+text")

    @property
    def uses_reviews(self) -> bool:
        return self.input_mode in ("text", "img+text")

    @property
    def image_features_read(self) -> str:
        """The image feature kind the generator reads: `image_kind`, or `LEGACY_IMAGE_KIND` when unrecorded."""
        return self.image_kind or LEGACY_IMAGE_KIND

    @property
    def takes_gradients_apart(self) -> bool:
        """Whether cross-entropy's gradient and the contrastive part's are computed apart (`gradient_conflicts` or
        `contrastive_normaliser` off the paper's setting), each in a backward pass of its own."""
        return any(getattr(self, name) != paper for name, paper in PAPER_GRADIENT_SETTINGS.items())

    @property
    def uses_projection_heads(self) -> bool:
        """Whether a contrastive loss compares projection-head embeddings (eq. 6), so the heads exist."""
        contrastive = self.image_contrastive != "none" or self.review_contrastive != "none"
        return contrastive and self.contrastive_score == "embedding"


# The paper's decoding (Section 5.1: beam size 2) and the package's length limit.
PAPER_DECODING = {"num_beams": 2, "max_new_tokens": 64}
# The most beams the pipeline decodes with: 32x the paper's. Each beam holds a copy of the decoder's cache, so a
# typo (1e8, or a saved generation_config of 1e9) would try to allocate tens of GB.
MAX_NUM_BEAMS = 64
# The most new tokens a command decodes: 16x the paper's; a typo (1e9) would allocate the cache for all of them.
MAX_NEW_TOKENS = 1024


class PC2LGenerationConfig(GenerationConfig):
    """The generation config a new [`PC2LForConditionalGeneration`] starts with: the decoder's special tokens and the
    paper's decoding, so `save_pretrained` writes them to `generation_config.json` and a plain `generate()` after
    `from_pretrained` decodes as the paper does."""

    @classmethod
    def from_model_config(cls, model_config) -> "PC2LGenerationConfig":
        generation_config = super().from_model_config(model_config)
        generation_config.update(**PAPER_DECODING)
        # The cache changes speed, not output; a decoder config saved from training says `use_cache=False`.
        generation_config.use_cache = True
        if generation_config.pad_token_id is None:
            # GPT-2 has no pad token; finished beams are padded with EOS, which `generate` would pick after a warning.
            generation_config.pad_token_id = generation_config.eos_token_id
        return generation_config


# `save_pretrained` ships this file for `AutoConfig.from_pretrained(repo, trust_remote_code=True)`.
PC2LConfig.register_for_auto_class()

__all__ = ["PC2LConfig", "PC2LGenerationConfig"]
