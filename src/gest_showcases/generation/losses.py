"""The contrastive losses of PC2L (Section 4.3) as pure functions of projected embeddings.

Notation of the paper: `s_ij = sim(H~^X_i, H~^Y_j) / tau`, `sim` the cosine similarity, `i, j` examples of the
mini-batch; the other targets of the batch are the negatives `K` of example `i`. The paper sums over examples;
these functions average, so that the weights `lambda1`, `lambda2` do not depend on the batch size. All are
computed in float32 (safe under bf16 autocast) and are finite for any input (`F.normalize` has an epsilon).

- `info_nce` (eq. 7, "CL"): `-log exp(s_ii) / sum_j exp(s_ij)`.
- `cross_modal_contrastive_loss` (eq. 8, "CCL"): image-to-target InfoNCE with one extra negative per example,
  the target with its entities swapped: `-log exp(s_ii) / (sum_j exp(s_ij) + exp(s_i,ent_i))`.
- `personalized_contrastive_loss` (eq. 9, "PCL"): review-to-target InfoNCE whose negatives are weighted by
  `f(i, j) = alpha ** (1 - sim(R~_i, R~_j))` (eq. 10, `personality_weights`), `R~` the mean history-review
  features: `-log exp(s_ii) / (exp(s_ii) + sum_{j != i} f(i, j) exp(s_ij))`.

Lower is better for all three. `total_loss` composes eq. 11 from a model output and the model's config.

`shared_content` (optional, [B, B] bool, from [`PC2LCollator`] when the examples carry `content_labels`): pairs of
examples that show the same content (their labels intersect). Such a target is no negative of the other example, so
each of the three losses leaves it out of the other's denominator (a label-aware contrast, as supervised contrastive
learning does); the positive pair and CCL's entity-swapped negative are never left out. None: every other target is a
negative, as in the paper.

With `config.contrastive_score="likelihood"` (a documented deviation, docs/experiments.md) the same losses score
with the decoder's log-likelihood of the target instead of embedding similarities: `likelihood_contrastive_loss`,
a softmax over `log p(Y_i | X_i)` and its negatives' log-likelihoods (the entity-swapped target, the target under
another example's photos or history reviews), with eq. 10's weights on PCL's negative.
"""

import math

import torch
import torch.nn.functional as F

from .configuration_pc2l import PC2LConfig
from .modeling_pc2l import PC2LOutput, masked_mean

# Log names of the contrastive parts, by config value.
IMAGE_LOSS_NAMES = {"cl": "loss_img_cl", "ccl": "loss_ccl"}
REVIEW_LOSS_NAMES = {"cl": "loss_text_cl", "pcl": "loss_pcl"}


def cosine_similarity_matrix(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cosine similarities [B_s, B_t] between the rows of `source` [B_s, D] and `target` [B_t, D], in float32."""
    return F.normalize(source.float(), dim=-1) @ F.normalize(target.float(), dim=-1).T


def without_shared_content(logits: torch.Tensor, shared_content: torch.Tensor | None) -> torch.Tensor:
    """`logits` [B, B + k] with the in-batch columns of `shared_content` [B, B] (off the diagonal) set to -inf, so
    those targets leave the softmax's denominator; unchanged when `shared_content` is None."""
    if shared_content is None:
        return logits
    size = logits.shape[0]
    if shared_content.shape != (size, size):
        raise ValueError(f"shared_content {tuple(shared_content.shape)} must be [batch, batch] = {(size, size)}")
    excluded = shared_content.to(device=logits.device, dtype=torch.bool)
    excluded = excluded & ~torch.eye(size, dtype=torch.bool, device=logits.device)  # the positive always counts
    excluded = F.pad(excluded, (0, logits.shape[1] - size))  # columns after the batch's (CCL's hard negative) count
    return logits.masked_fill(excluded, float("-inf"))


def info_nce(
    source_embeds: torch.Tensor,
    target_embeds: torch.Tensor,
    temperature: float,
    shared_content: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 7: InfoNCE from a source modality to the target sequences, the other targets as negatives.

    Args:
        source_embeds (`torch.Tensor` of shape `(batch_size, dim)`): `H~^X`, e.g. `phi_V(H^V)`.
        target_embeds (`torch.Tensor` of shape `(batch_size, dim)`): `H~^Y`.
        temperature (`float`): `tau`.
        shared_content (`torch.BoolTensor` of shape `(batch_size, batch_size)`, *optional*): pairs that are not
            each other's negatives (see the module docstring).

    Returns:
        `torch.Tensor` of shape `()`: the mean over the batch.
    """
    logits = cosine_similarity_matrix(source_embeds, target_embeds) / temperature  # [B, B]
    logits = without_shared_content(logits, shared_content)
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def cross_modal_contrastive_loss(
    image_embeds: torch.Tensor,
    target_embeds: torch.Tensor,
    negative_embeds: torch.Tensor,
    temperature: float,
    shared_content: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 8 (CCL): image-to-target InfoNCE plus each example's entity-swapped target as a hard negative.

    Args:
        image_embeds (`torch.Tensor` of shape `(batch_size, dim)`): `H~^V`.
        target_embeds (`torch.Tensor` of shape `(batch_size, dim)`): `H~^Y`.
        negative_embeds (`torch.Tensor` of shape `(batch_size, dim)`): `H~^Y_ent`, row `i` the hard negative of
            example `i` only.
        temperature (`float`): `tau`.
        shared_content (`torch.BoolTensor` of shape `(batch_size, batch_size)`, *optional*): pairs that are not
            each other's in-batch negatives (see the module docstring); the hard negatives always count.

    Returns:
        `torch.Tensor` of shape `()`: the mean over the batch.
    """
    logits = cosine_similarity_matrix(image_embeds, target_embeds) / temperature  # [B, B]
    hard = F.cosine_similarity(image_embeds.float(), negative_embeds.float(), dim=-1) / temperature  # [B]
    logits = torch.cat([logits, hard.unsqueeze(1)], dim=1)  # [B, B + 1]
    logits = without_shared_content(logits, shared_content)
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def personality_log_weights(review_means: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 10 in log space, the one place it is computed: `log f(i, j) = (1 - sim(R~_i, R~_j)) * log(alpha)` [B, B],
    0 on the diagonal (positive pairs). Log space because PCL adds the weights inside its softmax, where they stay
    stable.

    Args:
        review_means (`torch.Tensor` of shape `(batch_size, feature_dim)`): `R~`, each user's mean
            history-review feature.
        alpha (`float`): the base, > 1; users with distinct histories get heavier negatives.
    """
    log_weights = (1.0 - cosine_similarity_matrix(review_means, review_means)) * math.log(alpha)
    return log_weights.fill_diagonal_(0.0)


def personality_weights(review_means: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 10: `f(i, j) = alpha ** (1 - sim(R~_i, R~_j))` [B, B]; the diagonal (positive pairs) is 1.

    Args: as [`personality_log_weights`], whose exponential this is.
    """
    return personality_log_weights(review_means, alpha).exp()


def personalized_contrastive_loss(
    review_embeds: torch.Tensor,
    target_embeds: torch.Tensor,
    review_means: torch.Tensor,
    alpha: float,
    temperature: float,
    shared_content: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 9 (PCL): review-to-target InfoNCE with the negatives weighted by `personality_weights`.

    Args:
        review_embeds (`torch.Tensor` of shape `(batch_size, dim)`): `H~^R`.
        target_embeds (`torch.Tensor` of shape `(batch_size, dim)`): `H~^Y`.
        review_means (`torch.Tensor` of shape `(batch_size, feature_dim)`): `R~` (input features, no gradient).
        alpha (`float`): base of the weights, > 1.
        temperature (`float`): `tau`.
        shared_content (`torch.BoolTensor` of shape `(batch_size, batch_size)`, *optional*): pairs that are not
            each other's negatives (see the module docstring).

    Returns:
        `torch.Tensor` of shape `()`: the mean over the batch.
    """
    logits = cosine_similarity_matrix(review_embeds, target_embeds) / temperature  # [B, B]
    log_weights = personality_log_weights(review_means, alpha).detach()  # log f of eq. 10, inside the softmax
    logits = without_shared_content(logits + log_weights, shared_content)
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def likelihood_contrastive_loss(
    positive: torch.Tensor, negatives: list[torch.Tensor], log_weights: list[torch.Tensor] | None = None
) -> torch.Tensor:
    """`-log p_i / (p_i + sum_k w_ik q_ik)` from log-likelihoods, averaged over the batch.

    Args:
        positive (`torch.Tensor` of shape `(batch_size,)`): `log p(Y_i | X_i)`.
        negatives (list of `torch.Tensor` of shape `(batch_size,)`): each negative's log-likelihood `log q_ik`.
        log_weights (list of `torch.Tensor` of shape `(batch_size,)`, *optional*): `log w_ik` (0 when omitted).

    Returns:
        `torch.Tensor` of shape `()`. With temperature 1 and equal weights it is the cross-entropy of the posterior
        "which of these produced `Y_i`" under a uniform prior, so it falls only by making the decoder prefer the
        target under its own inputs, and is flat (no gradient) once it does so by a wide margin.
    """
    scores = [positive.float()] + [negative.float() for negative in negatives]
    if log_weights is not None:
        scores = scores[:1] + [score + weight.float() for score, weight in zip(scores[1:], log_weights, strict=True)]
    logits = torch.stack(scores, dim=1)  # [B, 1 + K], the positive in column 0
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def image_contrastive_loss(config: PC2LConfig, outputs: PC2LOutput, inputs: dict | None = None) -> torch.Tensor:
    """`L_CL` (eq. 7) or `L_CCL` (eq. 8) between `phi_V(H^V)` and `phi_Y(H^Y)`, as `config.image_contrastive` says;
    the batch's `shared_content` (in `inputs`, optional) leaves pairs out of each other's negatives.

    With `config.contrastive_score="likelihood"`: the target against itself under the next example's photos, and
    (CCL) against its entity-swapped version under its own inputs; with `likelihood_image_negatives="entity"`, against
    that version alone.
    """
    shared_content = _shared_content(config, inputs)
    if config.contrastive_score == "likelihood":
        # likelihood_image_negatives="entity" (H7): the entity-swapped target alone; no photo-swapped copy was scored.
        negatives = [outputs.image_swapped_log_likelihood] if config.likelihood_image_negatives == "all" else []
        if config.image_contrastive == "ccl":
            if outputs.negative_log_likelihood is None:
                raise ValueError(
                    "image_contrastive='ccl' needs negative_input_ids in the batch (collator with_negatives)"
                )
            negatives.append(outputs.negative_log_likelihood)
        return likelihood_contrastive_loss(outputs.target_log_likelihood, negatives)
    if config.image_contrastive == "cl":
        return info_nce(outputs.image_embeds, outputs.target_embeds, config.contrastive_temperature, shared_content)
    if outputs.negative_embeds is None:
        raise ValueError(
            "image_contrastive='ccl' needs negative_input_ids in the batch (collator with_negatives)"
        )
    return cross_modal_contrastive_loss(
        outputs.image_embeds,
        outputs.target_embeds,
        outputs.negative_embeds,
        config.contrastive_temperature,
        shared_content,
    )


def review_contrastive_loss(config: PC2LConfig, outputs: PC2LOutput, inputs: dict) -> torch.Tensor:
    """`L_CL` (eq. 7) or `L_PCL` (eq. 9) between `phi_R(H^R)` and `phi_Y(H^Y)`, as `config.review_contrastive` says;
    the batch's `shared_content` (in `inputs`, optional) leaves pairs out of each other's negatives.

    With `config.contrastive_score="likelihood"`: the target against itself under the next example's history
    reviews, that negative weighted by `f(i, i + 1)` of eq. 10 for PCL.
    """
    shared_content = _shared_content(config, inputs)
    if config.contrastive_score == "likelihood":
        log_weights = None
        if config.review_contrastive == "pcl":
            review_means = masked_mean(inputs["review_features"], inputs["review_mask"])  # R~ of eq. 10
            rows = torch.arange(review_means.shape[0], device=review_means.device)
            # log f(i, i + 1) of eq. 10: the next example's reviews are example i's one negative
            log_weights = [personality_log_weights(review_means, config.pcl_alpha)[rows, rows.roll(-1)].detach()]
        return likelihood_contrastive_loss(
            outputs.target_log_likelihood, [outputs.review_swapped_log_likelihood], log_weights
        )
    if config.review_contrastive == "cl":
        return info_nce(outputs.review_embeds, outputs.target_embeds, config.contrastive_temperature, shared_content)
    review_means = masked_mean(inputs["review_features"], inputs["review_mask"])  # R~ of eq. 10
    return personalized_contrastive_loss(
        outputs.review_embeds,
        outputs.target_embeds,
        review_means,
        config.pcl_alpha,
        config.contrastive_temperature,
        shared_content,
    )


def _shared_content(config: PC2LConfig, inputs: dict | None) -> torch.Tensor | None:
    """The batch's `shared_content`, None without one; refused for the likelihood score, which has no in-batch
    negatives to leave out (its negatives are the next example's inputs)."""
    shared_content = (inputs or {}).get("shared_content")
    if shared_content is not None and config.contrastive_score == "likelihood":
        raise ValueError(
            "shared_content leaves pairs out of the in-batch negatives of the embedding score; "
            "contrastive_score='likelihood' has none: drop the examples' content_labels"
        )
    return shared_content


def total_loss(config: PC2LConfig, outputs: PC2LOutput, inputs: dict) -> tuple[torch.Tensor, dict]:
    """Eq. 11, `L_CE + lambda1 * L_img + lambda2 * L_text`, and its parts by log name.

    Args:
        config ([`PC2LConfig`]): says which contrastive losses are on and their weights.
        outputs ([`PC2LOutput`]): the model output for `inputs` (with `labels`).
        inputs (`dict`): the batch (`review_features`, `review_mask` are read for PCL; `shared_content`, if there, by
            every in-batch loss).

    Returns:
        `(loss, parts)`: parts has `loss_ce` and the active ones of `loss_img_cl` / `loss_ccl`,
        `loss_text_cl` / `loss_pcl`.
    """
    loss, parts = outputs.loss, {"loss_ce": outputs.loss}
    if config.image_contrastive != "none":
        image_loss = image_contrastive_loss(config, outputs, inputs)
        parts[IMAGE_LOSS_NAMES[config.image_contrastive]] = image_loss
        loss = loss + config.lambda1 * image_loss
    if config.review_contrastive != "none":
        review_loss = review_contrastive_loss(config, outputs, inputs)
        parts[REVIEW_LOSS_NAMES[config.review_contrastive]] = review_loss
        loss = loss + config.lambda2 * review_loss
    return loss, parts


def contrastive_loss(config: PC2LConfig, parts: dict) -> torch.Tensor:
    """Eq. 11 less cross-entropy, `lambda1 * L_img + lambda2 * L_text`, from [`total_loss`]'s `parts`.

    A graph of its own, so that the options that take its gradient apart from cross-entropy's
    (`generation/gradients.py`) do not backpropagate through the LM head, as `total - loss_ce` would (to a zero
    gradient, at the cost of the LM head's backward pass: 40 GFLOP at GPT-2-small size, batch 4, a sixth of a
    CE-only step's).
    """
    terms = []
    if config.image_contrastive != "none":
        terms.append(config.lambda1 * parts[IMAGE_LOSS_NAMES[config.image_contrastive]])
    if config.review_contrastive != "none":
        terms.append(config.lambda2 * parts[REVIEW_LOSS_NAMES[config.review_contrastive]])
    if not terms:
        raise ValueError("contrastive_loss: the configuration has no contrastive loss")
    return sum(terms[1:], terms[0])


__all__ = [
    "contrastive_loss",
    "cosine_similarity_matrix",
    "cross_modal_contrastive_loss",
    "image_contrastive_loss",
    "info_nce",
    "likelihood_contrastive_loss",
    "personality_log_weights",
    "personality_weights",
    "personalized_contrastive_loss",
    "review_contrastive_loss",
    "total_loss",
    "without_shared_content",
]
