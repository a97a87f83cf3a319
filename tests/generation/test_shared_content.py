"""Label-aware in-batch negatives: examples whose `content_labels` intersect are left out of each other's negatives
in eqs. 7-9 (H20's mechanism), against the losses written out with those terms dropped."""

import math

import pytest
import torch
from pc2l_fixtures import synthetic_examples, tiny_config, train_pc2l_argv
from transformers import AutoConfig, TrainingArguments

from gest_showcases.cards import generator_card
from gest_showcases.commands import train_pc2l
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator, PC2LDataset, shared_content
from gest_showcases.generation.losses import (
    cross_modal_contrastive_loss,
    info_nce,
    personalized_contrastive_loss,
    total_loss,
)
from gest_showcases.generation.modeling_pc2l import masked_mean
from gest_showcases.generation.negatives import (
    entity_labels,
    entity_spans,
    fallback_entity_spans,
    load_parser,
)
from gest_showcases.generation.trainer import PC2LTrainer

# Example 0 shares a label with 2, example 1 with 3 and 2; example 4 has no label at all.
LABELS = [{"ramen"}, {"tacos", "interior"}, {"ramen", "interior"}, {"tacos"}, set()]
SHARED = {(0, 2), (2, 0), (1, 2), (2, 1), (1, 3), (3, 1)}


def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def _reference(source, target, tau, hard=None, weight=lambda i, j: 1.0):
    """mean_i -log e(i, i) / (e(i, i) + sum_{j != i, (i, j) not shared} w(i, j) e(i, j) [+ hard_i])."""
    total = 0.0
    for i in range(len(source)):
        positive = math.exp(_cos(source[i], target[i]) / tau)
        negatives = sum(
            weight(i, j) * math.exp(_cos(source[i], target[j]) / tau)
            for j in range(len(source))
            if j != i and (i, j) not in SHARED
        )
        if hard is not None:
            negatives += math.exp(_cos(source[i], hard[i]) / tau)
        total -= math.log(positive / (positive + negatives))
    return torch.tensor(total / len(source))


def _embeddings(seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(len(LABELS), 6, generator=generator, dtype=torch.float64) for _ in range(4)]


def test_shared_content_marks_the_pairs_whose_labels_intersect():
    mask = shared_content(LABELS)
    expected = {(i, j) for i in range(5) for j in range(5) if i != j and LABELS[i] & LABELS[j]}
    assert {(i, j) for i, j in torch.nonzero(mask).tolist() if i != j} == expected == SHARED
    assert mask.diagonal().tolist() == [True, True, True, True, False]  # the losses never read the diagonal
    assert not shared_content([set(), set()]).any()


@pytest.mark.parametrize("seed", [0, 1])
def test_each_in_batch_loss_drops_exactly_the_shared_pairs(seed):
    source, target, hard, means = _embeddings(seed)
    mask = shared_content(LABELS)
    torch.testing.assert_close(info_nce(source, target, 0.1, mask), _reference(source, target, 0.1))
    torch.testing.assert_close(
        cross_modal_contrastive_loss(source, target, hard, 0.1, mask), _reference(source, target, 0.1, hard=hard)
    )
    alpha = 5.0
    torch.testing.assert_close(
        personalized_contrastive_loss(source, target, means, alpha, 0.1, mask),
        _reference(source, target, 0.1, weight=lambda i, j: alpha ** (1 - _cos(means[i], means[j]))),
    )
    # Nothing shared: the paper's losses, unchanged.
    nothing = torch.zeros(len(LABELS), len(LABELS), dtype=torch.bool)
    torch.testing.assert_close(info_nce(source, target, 0.1, nothing), info_nce(source, target, 0.1))


def test_everything_shared_leaves_the_positive_and_the_hard_negative():
    source, target, hard, _ = _embeddings(2)
    everything = torch.ones(len(LABELS), len(LABELS), dtype=torch.bool)
    assert info_nce(source, target, 0.1, everything).item() == pytest.approx(0.0, abs=1e-6)
    loss = cross_modal_contrastive_loss(source, target, hard, 0.1, everything)
    expected = sum(
        -math.log(1 / (1 + math.exp((_cos(source[i], hard[i]) - _cos(source[i], target[i])) / 0.1)))
        for i in range(len(LABELS))
    ) / len(LABELS)
    assert loss.item() == pytest.approx(expected, rel=1e-6)  # the losses compute in float32


def test_a_mask_of_another_batch_size_is_refused():
    source, target, _, _ = _embeddings(3)
    with pytest.raises(ValueError, match="shared_content"):
        info_nce(source, target, 0.1, torch.zeros(3, 3, dtype=torch.bool))


def _labelled_examples():
    examples = synthetic_examples(len(LABELS))
    for example, labels in zip(examples, LABELS, strict=True):
        example["content_labels"] = labels
    return examples


def test_the_collator_batches_the_labels_and_total_loss_reads_them(tokenizer):
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(tiny_config(tokenizer, lambda1=0.3, lambda2=0.7))
    batch = PC2LCollator(tokenizer, with_negatives=True)(_labelled_examples())
    assert torch.equal(batch["shared_content"], shared_content(LABELS))
    model_inputs = {name: value for name, value in batch.items() if name != "shared_content"}
    out = model(**model_inputs)
    loss, _ = total_loss(model.config, out, batch)
    means = masked_mean(batch["review_features"], batch["review_mask"])
    mask = batch["shared_content"]
    ccl = cross_modal_contrastive_loss(out.image_embeds, out.target_embeds, out.negative_embeds, 0.1, mask)
    pcl = personalized_contrastive_loss(out.review_embeds, out.target_embeds, means, model.config.pcl_alpha, 0.1, mask)
    torch.testing.assert_close(loss, out.loss + 0.3 * ccl + 0.7 * pcl)
    unmasked, _ = total_loss(model.config, out, model_inputs)
    assert not torch.allclose(loss, unmasked)  # the labels changed the loss


def test_the_likelihood_score_refuses_labels(tokenizer):
    config = tiny_config(tokenizer, contrastive_score="likelihood")
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(config)
    batch = PC2LCollator(tokenizer, with_negatives=True)(_labelled_examples())
    out = model(**{name: value for name, value in batch.items() if name != "shared_content"})
    with pytest.raises(ValueError, match="shared_content"):
        total_loss(config, out, batch)


def test_the_trainer_keeps_the_mask_from_the_model_and_gives_it_to_the_losses(tokenizer, tmp_path):
    examples = _labelled_examples()
    dataset = PC2LDataset(
        targets=[example["target"] for example in examples],
        image_features=[example["image_features"] for example in examples],
        review_features=[example["review_features"] for example in examples],
        negatives=[example["negative"] for example in examples],
        content_labels=LABELS,
    )
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no", logging_steps=1,
        per_device_train_batch_size=len(LABELS), max_steps=1, train_sampling_strategy="sequential",
        dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(tiny_config(tokenizer))
    trainer = PC2LTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=PC2LCollator(tokenizer, with_negatives=True)
    )
    batch = PC2LCollator(tokenizer, with_negatives=True)(examples)
    model.eval()  # the probe's loss is the training loss without dropout (tiny_config has none anyway)
    expected, _ = total_loss(model.config, model(**{k: v for k, v in batch.items() if k != "shared_content"}), batch)
    # The model's forward would take the mask silently into its **kwargs: check that it never gets it.
    given = []
    model.register_forward_pre_hook(lambda module, args, kwargs: given.append(set(kwargs)), with_kwargs=True)
    torch.testing.assert_close(trainer.probe_loss(batch), expected)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss_ccl" in entry]
    assert len(logged) == 1 and math.isfinite(logged[0]["loss"])
    assert given and all("input_ids" in names and "shared_content" not in names for names in given)


def test_entity_labels_are_each_targets_lowercased_chunks():
    texts = ["The Sushi was great and the miso soup too.", "Their sushi is fresh.", "It was fine."]
    spans = fallback_entity_spans(texts)
    assert entity_labels(texts, spans) == [{"sushi", "miso soup"}, {"sushi"}, set()]
    assert shared_content(entity_labels(texts, spans)).tolist() == [
        [True, True, False], [True, True, False], [False, False, False],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"in_batch_labels": "nouns"}, "in_batch_labels must be one of"),
        ({"in_batch_labels": "noun_chunks", "contrastive_score": "likelihood"}, "contrastive_score='embedding'"),
        ({"in_batch_labels": "noun_chunks", "image_contrastive": "none", "review_contrastive": "none"},
         "contrastive_score='embedding'"),
    ],
)  # fmt: skip
def test_in_batch_labels_that_cannot_apply_are_refused(tokenizer, overrides, message):
    assert tiny_config(tokenizer).in_batch_labels == "none"  # the paper: every other target a negative
    with pytest.raises(ValueError, match=message):
        tiny_config(tokenizer, **overrides)


def test_train_pc2l_labels_each_example_with_its_targets_chunks(command_assets, monkeypatch, capsys):
    made = []

    class RecordingDataset(PC2LDataset):
        def __init__(self, targets, **columns):
            made.append((list(targets), columns.get("content_labels")))
            super().__init__(targets, **columns)

    monkeypatch.setattr(train_pc2l, "PC2LDataset", RecordingDataset)
    assert train_pc2l.main(train_pc2l_argv(command_assets, "--in_batch_labels", "noun_chunks")) == 0
    assert made and all(labels is not None for _, labels in made)
    for targets, labels in made:
        assert labels == entity_labels(targets, entity_spans(targets, load_parser()))
    assert any(labels for _, labels in made for labels in labels)  # the targets do name entities
    config = AutoConfig.from_pretrained(command_assets / "run")
    assert config.in_batch_labels == "noun_chunks"
    assert "| in_batch_labels | noun_chunks |" in str(generator_card(config, "user/run", results_dir=command_assets))
    # Without the option (the paper), no labels reach the examples.
    made.clear()
    capsys.readouterr()
    argv = train_pc2l_argv(command_assets)
    argv[argv.index("--output_dir") + 1] = str(command_assets / "run-paper")
    assert train_pc2l.main(argv) == 0
    assert made and all(labels is None for _, labels in made)
