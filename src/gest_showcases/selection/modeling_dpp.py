"""DPPImageSelector: personalized image-set selection with a learned DPP kernel.

Personalized Showcases (Yan et al., SIGIR 2023), Section 4.1: a user-profile MLP and an image MLP map
CLIP features into one space; the kernel over a business's candidate images is

    L = diag(q) S diag(q),   log q_i = c * tanh(<u, v_i> / (c * sqrt(d))),   S = V_hat V_hat^T + eps * I

(Wilhelm et al. 2018: quality times similarity), with `u` the user embedding, `v_i` the image
embeddings, `V_hat` their L2-normalised rows. Training maximises the DPP log-likelihood of the images
the user posted, `log det(L_Y) - log det(L + I)`; inference is greedy MAP (`greedy_map`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_dpp import DPPSelectorConfig
from .greedy import greedy_map


class _CholeskyLogdet(torch.autograd.Function):
    """`log det` of SPD matrices by Cholesky, whose gradient is the inverse, `A^{-1}`, from the same factor.

    Autograd through `torch.linalg.cholesky` gets there by the general Cholesky backward (triangular solves
    and several `[B, N, N]` products for any loss of the factor): 4x slower for this one use, and with the
    two log-dets of the DPP likelihood most of a selector step once the image MLP runs once per image.
    """

    @staticmethod
    def forward(ctx, matrix: torch.Tensor) -> torch.Tensor:
        factor = torch.linalg.cholesky(matrix)
        ctx.save_for_backward(factor)
        return 2.0 * factor.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (factor,) = ctx.saved_tensors
        return grad_output[..., None, None] * torch.cholesky_inverse(factor)


def history_cosine(profile_image: torch.Tensor, candidate_features: torch.Tensor) -> torch.Tensor:
    """Cosine `[B, N]` between each candidate's features `[B, N, D]` and the user's image profile `[B, D]` (the mean
    feature of their history photos): the `history-cosine` rule's score and `config.history_prior`'s term. A zero
    profile (no history photo) gives 0 for every candidate."""
    return torch.einsum("bd,bnd->bn", F.normalize(profile_image, dim=-1), F.normalize(candidate_features, dim=-1))


def cholesky_logdet(matrix: torch.Tensor, jitter: float) -> torch.Tensor:
    """`log det(matrix + jitter * I)` of symmetric positive definite matrices, through Cholesky in float64.

    Args:
        matrix (`torch.Tensor` of shape `(batch_size, N, N)`): SPD matrices.
        jitter (`float`): added to the diagonal before factorising.

    Returns:
        `torch.Tensor` of shape `(batch_size,)`, in `matrix`'s dtype.
    """
    # float64: L + I has eigenvalues from 1 up to N * exp(2c); float32 Cholesky loses them at large pools.
    matrix64 = matrix.double()
    eye = torch.eye(matrix.shape[-1], dtype=torch.float64, device=matrix.device)
    return _CholeskyLogdet.apply(matrix64 + jitter * eye).to(matrix.dtype)


class DPPSelectorMLP(nn.Module):
    """Linear layers with ReLU between them (none after the last), e.g. 1024 -> 512 -> 512 -> 256 -> 128."""

    def __init__(self, input_size: int, hidden_sizes: list[int], output_size: int):
        super().__init__()
        sizes = [input_size, *hidden_sizes, output_size]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    def forward(self, hidden_states: torch.Tensor, output_hidden_states: bool = False) -> BaseModelOutput:
        """`last_hidden_state`: the last layer's output; `hidden_states` (with `output_hidden_states`): the input,
        then every layer's output (after its ReLU; the last one is `last_hidden_state`)."""
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for index, layer in enumerate(self.layers):
            hidden_states = layer(hidden_states)
            if index < len(self.layers) - 1:
                hidden_states = F.relu(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states)


@dataclass
class DPPSelectorOutput(ModelOutput):
    """Output of [`DPPImageSelector.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `target_mask` is given):
            Negative DPP log-likelihood, averaged over the examples that have at least one target.
        log_likelihood (`torch.FloatTensor` of shape `(batch_size,)`, *optional*, with `target_mask`):
            `log det(L_Y) - log det(L + I)` per example; 0 for examples without a target in their pool.
        kernel (`torch.FloatTensor` of shape `(batch_size, num_candidates, num_candidates)`):
            The L-ensemble kernel; rows and columns of padded candidates are zero.
        log_quality (`torch.FloatTensor` of shape `(batch_size, num_candidates)`):
            `log q_i`, the user-image relevance; 0 on padding.
        user_embeds (`torch.FloatTensor` of shape `(batch_size, embed_dim)`):
            Output of the user MLP.
        image_embeds (`torch.FloatTensor` of shape `(batch_size, num_candidates, embed_dim)`):
            Output of the image MLP for every candidate; unspecified on padding (masked everywhere it is used).
        user_encoder_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`
        is passed or when `config.output_hidden_states=True`):
            The user MLP's states, each of shape `(batch_size, size)`: its input, the profile
            `[text ; image]` (the half `input_mode` leaves out is zeros), then the output of each layer (after its
            ReLU); the last is `user_embeds`.
        image_encoder_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned with the user MLP's):
            The image MLP's states for every candidate, each of shape `(batch_size, num_candidates, size)`: the
            candidate features, then the output of each layer; the last is `image_embeds`. Unspecified on padding.
    """

    loss: torch.FloatTensor | None = None
    log_likelihood: torch.FloatTensor | None = None
    kernel: torch.FloatTensor | None = None
    log_quality: torch.FloatTensor | None = None
    user_embeds: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    user_encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    image_encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class DPPSelection(ModelOutput):
    """Output of [`DPPImageSelector.select`].

    Args:
        indices (`torch.LongTensor` of shape `(batch_size, k)`):
            Positions of the chosen candidates in pick order, `-1`-padded when fewer than `k` were chosen.
        counts (`torch.LongTensor` of shape `(batch_size,)`):
            Number of chosen candidates per example.
        ids (`list[list[str]]`, *optional*, returned when `candidate_ids` is given):
            The chosen candidates' ids, in pick order.
        log_quality (`torch.FloatTensor` of shape `(batch_size, num_candidates)`):
            Every candidate's log relevance `log q` from the forward pass the picks came from (the score a
            showcase reports for each chosen photo), so callers need not run the model again.
    """

    indices: torch.LongTensor | None = None
    counts: torch.LongTensor | None = None
    ids: list[list[str]] | None = None
    log_quality: torch.FloatTensor | None = None


class NonFiniteKernelError(ValueError):
    """`DPPImageSelector.select` met a NaN or inf in its kernel. A `ValueError` of this file's own: the file ships as
    the checkpoint's remote code, without the package's `NonFiniteError`."""


class DPPImageSelector(PreTrainedModel):
    """Selects the K candidate images a user cares about, relevant and diverse, with a learned DPP kernel.

    Args:
        config ([`DPPSelectorConfig`]): the model configuration.
    """

    config_class = DPPSelectorConfig
    config: DPPSelectorConfig
    base_model_prefix = "dpp_selector"
    main_input_name = "candidate_features"

    def __init__(self, config: DPPSelectorConfig):
        super().__init__(config)
        self.user_encoder = DPPSelectorMLP(
            config.text_dim + config.image_dim, config.user_hidden_sizes, config.embed_dim
        )
        self.image_encoder = DPPSelectorMLP(config.image_dim, config.image_hidden_sizes, config.embed_dim)
        if config.history_prior:
            # Learnt: the likelihood decides how much the resemblance to the history counts once the MLPs learn.
            self.history_prior_weight = nn.Parameter(torch.tensor(float(config.history_prior)))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # Kaiming for the ReLU MLPs (no config field); `transformers.initialization` leaves loaded tensors alone.
        if isinstance(module, nn.Linear):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            init.zeros_(module.bias)

    def _profile(
        self,
        profile_text: torch.Tensor | None,
        profile_image: torch.Tensor | None,
        batch_size: int,
        reference: torch.Tensor,
    ) -> torch.Tensor:
        """The `[B, text_dim + image_dim]` profile, with the half the input mode excludes set to zeros
        (of `reference`'s dtype and device)."""
        mode = self.config.input_mode
        if mode == "img":
            profile_text = reference.new_zeros(batch_size, self.config.text_dim)
        elif profile_text is None:
            raise ValueError(f"input_mode {mode!r} needs profile_text")
        if mode == "text":
            profile_image = reference.new_zeros(batch_size, self.config.image_dim)
        elif profile_image is None:
            raise ValueError(f"input_mode {mode!r} needs profile_image")
        return torch.cat([profile_text, profile_image], dim=-1)

    @can_return_tuple  # `return_dict=False` (or `config.return_dict=False`): a tuple
    def forward(
        self,
        profile_text: torch.FloatTensor | None,
        profile_image: torch.FloatTensor | None,
        candidate_features: torch.FloatTensor | None = None,
        candidate_mask: torch.BoolTensor | None = None,
        target_mask: torch.BoolTensor | None = None,
        image_features: torch.FloatTensor | None = None,
        candidate_image_index: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> DPPSelectorOutput:
        r"""
        The candidates come either as `candidate_features`, one row per candidate, or as the batch's
        distinct images `image_features` and each candidate's row in it, `candidate_image_index` (what
        `collate_selection(..., distinct_images=True)` returns): the image MLP then runs once per distinct
        image instead of once per (example, candidate) slot, padding included, which is most of a training
        step when several examples share a business's pool. Both give the same outputs.

        Args:
            profile_text (`torch.FloatTensor` of shape `(batch_size, text_dim)`, *optional* in `"img"` mode):
                Mean CLIP text feature of the user's history reviews.
            profile_image (`torch.FloatTensor` of shape `(batch_size, image_dim)`, *optional* in `"text"` mode):
                Mean CLIP image feature of the user's history images.
            candidate_features (`torch.FloatTensor` of shape `(batch_size, num_candidates, image_dim)`, *optional*):
                CLIP image features of the business's candidate images, padded to the longest pool.
            candidate_mask (`torch.BoolTensor` of shape `(batch_size, num_candidates)`, *optional*):
                `True` for real candidates, `False` for padding. Defaults to all real with
                `candidate_features`, to `candidate_image_index >= 0` with `candidate_image_index`.
            target_mask (`torch.BoolTensor` of shape `(batch_size, num_candidates)`, *optional*):
                `True` for the images the user posted. When given, the loss is computed. An example with no
                target in its pool carries no evidence about the user's choice (an empty observed set would
                teach the model to shrink every relevance), so it contributes 0 and is left out of the mean;
                a batch with none gives a zero loss that still depends on the parameters.
            image_features (`torch.FloatTensor` of shape `(num_images, image_dim)`, *optional*):
                CLIP image features of the batch's distinct candidate images, instead of `candidate_features`.
            candidate_image_index (`torch.LongTensor` of shape `(batch_size, num_candidates)`, *optional*):
                With `image_features`: the row of `image_features` of each candidate; padded slots (`-1`,
                or any value where `candidate_mask` is `False`) are ignored.
            output_hidden_states (`bool`, *optional*):
                Return the states of both MLPs (`user_encoder_hidden_states`, `image_encoder_hidden_states`);
                defaults to `config.output_hidden_states`.
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        # A bf16 or fp16 selector reads fp32 features (CLIP's, as cached), as transformers' models cast pixel values.
        profile_text, profile_image, candidate_features, image_features = (
            features.to(self.dtype) if features is not None and features.is_floating_point() else features
            for features in (profile_text, profile_image, candidate_features, image_features)
        )
        if (candidate_features is None) == (image_features is None) or (image_features is None) != (
            candidate_image_index is None
        ):
            raise ValueError(
                "pass either candidate_features or both image_features and candidate_image_index"
            )
        if candidate_features is not None:
            batch_size, num_candidates, _ = candidate_features.shape
            reference = candidate_features
            if candidate_mask is None:
                candidate_mask = torch.ones(
                    batch_size, num_candidates, dtype=torch.bool, device=candidate_features.device
                )
            image_outputs = self.image_encoder(candidate_features, output_hidden_states)
            image_embeds = image_outputs.last_hidden_state  # [B, N, E]
            image_states = image_outputs.hidden_states
        else:
            batch_size, num_candidates = candidate_image_index.shape
            reference = image_features
            if candidate_mask is None:
                candidate_mask = candidate_image_index >= 0
            # Padded slots read row 0; every use of a padded slot below is masked, so its gradient is 0.
            rows = candidate_image_index.masked_fill(~candidate_mask, 0)
            image_outputs = self.image_encoder(image_features, output_hidden_states)
            image_embeds = F.embedding(rows, image_outputs.last_hidden_state)  # [U, E] -> [B, N, E]
            # Each distinct image's states at every candidate slot it fills, as `candidate_features` gives them.
            image_states = None
            if output_hidden_states:
                image_states = tuple(F.embedding(rows, state) for state in image_outputs.hidden_states)
        user_outputs = self.user_encoder(
            self._profile(profile_text, profile_image, batch_size, reference), output_hidden_states
        )
        user_embeds = user_outputs.last_hidden_state  # [B, E]

        # The DPP in float32 with autocast off: under a mixed-precision launch (`accelerate launch --mixed_precision
        # bf16`) the similarity product would round by ~4e-3 near 1, more than `similarity_eps`, and a near-duplicate
        # pair of target photos would leave the target block not positive definite (the Cholesky factorisation fails).
        with torch.autocast(image_embeds.device.type, enabled=False):
            dtype = torch.promote_types(image_embeds.dtype, torch.float32)  # at least float32 (float64 stays)
            user_embeds, image_embeds = user_embeds.to(dtype), image_embeds.to(dtype)
            score = torch.einsum("be,bne->bn", user_embeds, image_embeds) / math.sqrt(self.config.embed_dim)
            if self.config.history_prior:
                candidates = (
                    candidate_features if candidate_features is not None else F.embedding(rows, image_features)
                )
                score = score + self.history_prior_weight * history_cosine(profile_image, candidates)
            bound = self.config.max_log_quality
            log_quality = (bound * torch.tanh(score / bound)).masked_fill(~candidate_mask, 0.0)  # [B, N]
            unit = F.normalize(image_embeds, dim=-1)
            eye = torch.eye(num_candidates, dtype=unit.dtype, device=unit.device)
            similarity = unit @ unit.transpose(-1, -2) + self.config.similarity_eps * eye  # [B, N, N]
            pair_mask = candidate_mask.unsqueeze(-1) & candidate_mask.unsqueeze(-2)  # [B, N, N]
            quality = log_quality.exp()
            kernel = (quality.unsqueeze(-1) * similarity * quality.unsqueeze(-2)).masked_fill(~pair_mask, 0.0)

            loss = log_likelihood = None
            if target_mask is not None:
                log_likelihood = self._log_likelihood(
                    kernel, similarity, log_quality, target_mask, candidate_mask
                )
                has_target = target_mask.any(dim=-1)
                loss = -log_likelihood.sum() / has_target.sum().clamp(min=1)
        return DPPSelectorOutput(
            loss=loss,
            log_likelihood=log_likelihood,
            kernel=kernel,
            log_quality=log_quality,
            user_embeds=user_embeds,
            image_embeds=image_embeds,
            user_encoder_hidden_states=user_outputs.hidden_states,
            image_encoder_hidden_states=image_states,
        )

    def _log_likelihood(
        self,
        kernel: torch.Tensor,
        similarity: torch.Tensor,
        log_quality: torch.Tensor,
        target_mask: torch.BoolTensor,
        candidate_mask: torch.BoolTensor,
    ) -> torch.Tensor:
        """`log det(L_Y) - log det(L + I)` per example, `[B]`; 0 where `Y` is empty."""
        if bool((target_mask & ~candidate_mask).any()):
            raise ValueError("target_mask marks padded candidates: targets must be real candidates")
        eye = torch.eye(kernel.shape[-1], dtype=kernel.dtype, device=kernel.device)
        # Padded rows of the kernel are zero, so their block of L + I is the identity: log det unchanged.
        log_det_normaliser = cholesky_logdet(kernel + eye, self.config.jitter)
        # det(L_Y) = prod_{i in Y} q_i^2 * det(S_Y): factorising S_Y (eigenvalues >= eps) instead of L_Y
        # keeps the Cholesky well conditioned whatever the relevances. Non-targets become identity rows.
        pair_target = target_mask.unsqueeze(-1) & target_mask.unsqueeze(-2)  # [B, N, N]
        similarity_target = torch.where(pair_target, similarity, eye)
        log_det_target = 2.0 * log_quality.masked_fill(~target_mask, 0.0).sum(dim=-1) + cholesky_logdet(
            similarity_target, self.config.jitter
        )
        log_likelihood = log_det_target - log_det_normaliser
        return log_likelihood.masked_fill(~target_mask.any(dim=-1), 0.0)

    @torch.no_grad()
    def select(
        self,
        profile_text: torch.FloatTensor | None,
        profile_image: torch.FloatTensor | None,
        candidate_features: torch.FloatTensor,
        candidate_mask: torch.BoolTensor | None = None,
        k: int | None = None,
        candidate_ids: list[list[str]] | None = None,
    ) -> DPPSelection:
        r"""Greedy MAP selection of `k` images per (user, business) pair under the learned kernel.

        Args:
            profile_text, profile_image, candidate_features, candidate_mask: as in `forward`.
            k (`int`, *optional*, defaults to `config.top_k`):
                Number of images to choose; fewer come back when the pool is smaller.
            candidate_ids (`list[list[str]]`, *optional*):
                The candidates' ids per example (unpadded); when given, the chosen ids are returned too.

        Returns:
            [`DPPSelection`] with `indices` `(batch_size, k)` (`-1`-padded), `counts`, `ids` and `log_quality`.
        """
        output = self(
            profile_text, profile_image, candidate_features, candidate_mask, output_hidden_states=False,
            return_dict=True,
        )  # fmt: skip
        # float64: relevances span exp(+-2c), and float32 round-off would hide the weakest candidates.
        k = self.config.top_k if k is None else k
        if not torch.isfinite(output.kernel).all():  # greedy MAP would silently pick nothing
            raise NonFiniteKernelError(
                "the selector's kernel holds NaN or inf: its weights overflow (a diverged training) or the "
                "candidates' and profile features are not finite"
            )
        selection = greedy_map(output.kernel.double(), k, mask=candidate_mask)
        ids = None
        if candidate_ids is not None:
            ids = [
                [pool[index] for index in row if index >= 0]
                for pool, row in zip(candidate_ids, selection.indices.tolist(), strict=True)
            ]
        return DPPSelection(
            indices=selection.indices, counts=selection.counts, ids=ids, log_quality=output.log_quality
        )


# `save_pretrained` ships this file for `AutoModel.from_pretrained(repo, trust_remote_code=True)`; with the package,
# `import gest_showcases` registers the classes (`gest_showcases._auto_registration`).
DPPImageSelector.register_for_auto_class("AutoModel")

__all__ = ["DPPImageSelector", "DPPSelection", "DPPSelectorOutput", "NonFiniteKernelError"]
