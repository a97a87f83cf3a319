"""Each distinct image of a batch embedded once: same loss and gradients as one row per candidate slot.

Batches where several examples share a business's pool (and one image sits in two pools), padded to the
longest pool, checked against the likelihood computed by its definition one example at a time.
"""

import pytest
import torch
from torch.nn import functional as F

from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig
from gest_showcases.selection.dataset import SelectionDataset, collate_selection
from gest_showcases.selection.modeling_dpp import cholesky_logdet
from gest_showcases.selection.training import SelectorTrainingArguments, train_selector

TEXT_DIM, IMAGE_DIM = 6, 8
POOLS = [[0, 1, 2, 3, 4], [5, 6, 7, 2], [8, 9, 10, 11, 12, 13]]  # image 2 is in two businesses' pools
BUSINESSES = [0, 1, 0, 2, 0, 1, 2, 0, 1]  # example -> business: every pool repeats
TARGETS = [[1, 3], [0], [4], [2, 5], [], [3], [0, 1, 2], [0], [1, 2]]  # example 4 has none


def shared_pool_dataset(dtype: torch.dtype = torch.float32) -> SelectionDataset:
    generator = torch.Generator().manual_seed(0)
    num_examples = len(BUSINESSES)
    return SelectionDataset(
        image_features=torch.randn(14, IMAGE_DIM, generator=generator).to(dtype),
        profile_text=torch.randn(num_examples, TEXT_DIM, generator=generator).to(dtype),
        profile_image=torch.randn(num_examples, IMAGE_DIM, generator=generator).to(dtype),
        candidates=[torch.tensor(POOLS[business]) for business in BUSINESSES],
        targets=[torch.tensor(target, dtype=torch.long) for target in TARGETS],
    )


def selector(**overrides) -> DPPImageSelector:
    torch.manual_seed(0)
    config = DPPSelectorConfig(text_dim=TEXT_DIM, image_dim=IMAGE_DIM, user_hidden_sizes=[16, 12],
                               image_hidden_sizes=[16, 12], embed_dim=8, **overrides)  # fmt: skip
    return DPPImageSelector(config)


def loss_and_gradients(model: DPPImageSelector, loss: torch.Tensor) -> tuple[torch.Tensor, dict]:
    model.zero_grad()
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


def per_slot_loss(model: DPPImageSelector, batch: dict) -> torch.Tensor:
    return model(batch["profile_text"], batch["profile_image"], batch["candidate_features"],
                 candidate_mask=batch["candidate_mask"], target_mask=batch["target_mask"]).loss  # fmt: skip


def distinct_images_loss(model: DPPImageSelector, batch: dict) -> torch.Tensor:
    return model(batch["profile_text"], batch["profile_image"], candidate_mask=batch["candidate_mask"],
                 target_mask=batch["target_mask"], image_features=batch["image_features"],
                 candidate_image_index=batch["candidate_image_index"]).loss  # fmt: skip


def oracle_loss(model: DPPImageSelector, dataset: SelectionDataset) -> torch.Tensor:
    """The negative DPP log-likelihood by its definition, one example at a time, every candidate in its own
    row: `log det(L_Y) - log det(L + I)`, `L = diag(q) S diag(q)`, averaged over examples with a target."""
    config = model.config
    bound, terms = config.max_log_quality, []
    for index in range(len(dataset)):
        item = dataset[index]
        if not item["target_mask"].any():
            continue
        profile = torch.cat([item["profile_text"], item["profile_image"]])
        user = model.user_encoder(profile).last_hidden_state  # [E]
        images = model.image_encoder(item["candidate_features"]).last_hidden_state  # [n, E]
        score = images @ user / config.embed_dim**0.5  # [n]
        if config.history_prior:  # the option's prior: its learnt weight times cos(candidate, image profile)
            score = score + model.history_prior_weight * F.cosine_similarity(
                item["candidate_features"], item["profile_image"][None], dim=-1
            )
        log_quality = bound * torch.tanh(score / bound)  # [n]
        unit = F.normalize(images, dim=-1)
        eye = torch.eye(len(images), dtype=images.dtype)
        kernel = (
            log_quality.exp()[:, None] * (unit @ unit.T + config.similarity_eps * eye) * log_quality.exp()
        )
        target = item["target_mask"]
        terms.append(torch.logdet(kernel[target][:, target]) - torch.logdet(kernel + eye))
    return -torch.stack(terms).mean()


def test_collate_distinct_images_sends_each_image_once():
    dataset = shared_pool_dataset()
    items = [dataset[i] for i in range(len(dataset))]
    padded = collate_selection(items)
    batch = collate_selection(items, distinct_images=True)
    assert "candidate_features" not in batch
    real = batch["candidate_mask"]
    assert batch["image_features"].shape == (14, IMAGE_DIM)  # 14 distinct images in 44 real slots
    torch.testing.assert_close(batch["image_features"], dataset.image_features, rtol=0, atol=0)
    gathered = batch["image_features"][batch["candidate_image_index"][real]]
    torch.testing.assert_close(gathered, padded["candidate_features"][real], rtol=0, atol=0)
    assert (batch["candidate_image_index"][~real] == -1).all()
    for name in ("profile_text", "profile_image", "candidate_mask", "target_mask", "candidate_index"):
        assert torch.equal(batch[name], padded[name]), name

    # A sub-batch: only its own images, renumbered in increasing dataset-row order.
    sub = collate_selection([dataset[1], dataset[5]], distinct_images=True)
    torch.testing.assert_close(sub["image_features"], dataset.image_features[[2, 5, 6, 7]], rtol=0, atol=0)
    assert sub["candidate_image_index"].tolist() == [[1, 2, 3, 0], [1, 2, 3, 0]]


@pytest.mark.parametrize("history_prior", [0.0, 1.5])
def test_distinct_images_match_the_per_example_oracle(history_prior):
    # float64 and no jitter: the oracle is the exact definition, so the tolerance only absorbs round-off.
    model = selector(jitter=0.0, history_prior=history_prior).double()
    dataset = shared_pool_dataset(torch.float64)
    items = [dataset[i] for i in range(len(dataset))]
    expected_loss, expected_gradients = loss_and_gradients(model, oracle_loss(model, dataset))
    for path, batch in ((distinct_images_loss, collate_selection(items, distinct_images=True)),
                        (per_slot_loss, collate_selection(items))):  # fmt: skip
        loss, gradients = loss_and_gradients(model, path(model, batch))
        torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-5)
        for name, gradient in gradients.items():
            torch.testing.assert_close(gradient, expected_gradients[name], rtol=1e-5, atol=1e-5, msg=name)


def test_distinct_images_equal_per_slot_rows_in_float32():
    model = selector()  # default jitter, float32: the training configuration
    dataset = shared_pool_dataset()
    items = [dataset[i] for i in range(len(dataset))]
    expected_loss, expected_gradients = loss_and_gradients(
        model, per_slot_loss(model, collate_selection(items))
    )
    loss, gradients = loss_and_gradients(
        model, distinct_images_loss(model, collate_selection(items, distinct_images=True))
    )
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-5)
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, expected_gradients[name], rtol=1e-5, atol=1e-5, msg=name)


def test_forward_takes_one_form_of_the_candidates():
    model = selector()
    batch = collate_selection([shared_pool_dataset()[0]], distinct_images=True)
    features = batch["image_features"][batch["candidate_image_index"]]
    with pytest.raises(ValueError, match="either candidate_features or both"):
        model(batch["profile_text"], batch["profile_image"], features, image_features=batch["image_features"],
              candidate_image_index=batch["candidate_image_index"])  # fmt: skip
    with pytest.raises(ValueError, match="either candidate_features or both"):
        model(batch["profile_text"], batch["profile_image"], image_features=batch["image_features"])
    with pytest.raises(ValueError, match="either candidate_features or both"):
        model(batch["profile_text"], batch["profile_image"])
    # Without candidate_mask, the padding of candidate_image_index (-1) is the mask.
    padded = collate_selection([shared_pool_dataset()[i] for i in (0, 1)], distinct_images=True)
    unmasked = model(padded["profile_text"], padded["profile_image"], image_features=padded["image_features"],
                     candidate_image_index=padded["candidate_image_index"])  # fmt: skip
    assert (unmasked.kernel[1, 4] == 0).all() and (unmasked.log_quality[1, 4] == 0)


def test_cholesky_logdet_gradient_is_the_inverse():
    generator = torch.Generator().manual_seed(0)
    factor = torch.randn(2, 4, 4, generator=generator, dtype=torch.float64, requires_grad=True)

    def logdet(factor):
        return cholesky_logdet(factor @ factor.transpose(-1, -2) + torch.eye(4, dtype=torch.float64), 1e-6)

    torch.testing.assert_close(
        logdet(factor), torch.logdet(factor @ factor.transpose(-1, -2) + (1 + 1e-6) * torch.eye(4))
    )
    assert torch.autograd.gradcheck(logdet, (factor,))


def test_training_embeds_each_distinct_image_once_with_the_per_slot_loss(monkeypatch):
    calls = []
    forward = DPPImageSelector.forward

    def spy(self, profile_text, profile_image, candidate_features=None, **kwargs):
        output = forward(self, profile_text, profile_image, candidate_features, **kwargs)
        index, mask = kwargs["candidate_image_index"], kwargs["candidate_mask"]
        with torch.no_grad():
            slots = kwargs["image_features"][index.clamp(min=0)] * mask.unsqueeze(-1)  # the per-slot input
            reference = forward(self, profile_text, profile_image, slots, mask, kwargs["target_mask"])
        calls.append(
            (len(kwargs["image_features"]), int(mask.sum()), output.loss.item(), reference.loss.item())
        )
        return output

    monkeypatch.setattr(DPPImageSelector, "forward", spy)
    args = SelectorTrainingArguments(batch_size=5, num_train_epochs=2)
    train_selector(selector(), shared_pool_dataset(), args, use_cpu=True)
    assert len(calls) == 5  # 4 steps, then the check of the model the last one made (FiniteTrainer.train)
    for distinct, real_slots, loss, reference in calls:
        assert distinct < real_slots  # shared pools: fewer rows through the image MLP than candidates
        assert loss == pytest.approx(reference, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("distinct", [False, True])
@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_dataloader_batch_gathers_once_and_equals_the_items_one_at_a_time(distinct, num_workers):
    """`DataLoader` fetches a batch through `SelectionDataset.__getitems__` (pools' rows and the shared matrix, no
    per-example copies), and `collate_selection` gathers the batch's rows once: the same batch as collating
    `dataset[i]` items, each with a copy of its pool's features (also from a worker process)."""
    from functools import partial

    from torch.utils.data import DataLoader

    dataset = shared_pool_dataset()
    items = dataset.__getitems__([0, 1, 2])
    assert all(item["image_features"] is dataset.image_features for item in items)  # shared, not copied
    loader = DataLoader(dataset, batch_size=4, num_workers=num_workers,
                        collate_fn=partial(collate_selection, distinct_images=distinct))  # fmt: skip
    for start, batch in zip(range(0, len(dataset), 4), loader, strict=True):
        one_at_a_time = [dataset[i] for i in range(start, min(start + 4, len(dataset)))]
        expected = collate_selection(one_at_a_time, distinct_images=distinct)
        assert batch.keys() == expected.keys()
        for key in expected:
            torch.testing.assert_close(batch[key], expected[key], rtol=0, atol=0)
