"""Mined hard negatives (H8): located entities, the likeliest swap against brute force, the callback, the command."""

import json
from types import SimpleNamespace

import pytest
import torch
from pc2l_fixtures import synthetic_examples, tiny_config, train_pc2l_argv
from transformers import (
    AutoConfig,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

import gest_showcases.features
from gest_showcases import cli
from gest_showcases.commands import train_pc2l
from gest_showcases.generation import PC2LCollator, PC2LDataset, PC2LForConditionalGeneration, mined_negatives
from gest_showcases.generation.mined_negatives import (
    NegativeMiningCallback,
    entity_slots,
    mine_hard_negatives,
)
from gest_showcases.generation.modeling_pc2l import sequence_log_likelihood
from gest_showcases.generation.negatives import fallback_entity_spans, make_hard_negatives


def _dataset(count=8, seed=0):
    examples = synthetic_examples(count, seed=seed)
    return PC2LDataset(
        [e["target"] for e in examples],
        [e["image_features"] for e in examples],
        [e["review_features"] for e in examples],
        [e["negative"] for e in examples],
    )


def _model(tokenizer, seed=0):
    torch.manual_seed(seed)
    return PC2LForConditionalGeneration(tiny_config(tokenizer)).eval()


def _log_likelihood(model, collator, example, text):
    """The oracle: one example, one forward call, `log p(text | its inputs)` summed over its tokens."""
    batch = PC2LCollator(collator.tokenizer, max_length=collator.max_length)([example | {"target": text}])
    labels = batch.pop("labels")
    with torch.no_grad():
        logits = model(**batch).logits
    return sequence_log_likelihood(logits, batch["input_ids"], labels != -100).item()


def _all_swaps(text, slots, pool):
    return [
        text[: slot.start] + entity + text[slot.end :]
        for slot in slots
        for entity in pool
        if entity != text[slot.start : slot.end].lower()
    ]


def test_slots_point_at_each_entitys_first_token_in_the_collated_ids(tokenizer):
    texts = ["sushi was great and the spicy tuna roll too.", "We loved the ramen, the broth is rich."]
    spans = [[(0, 5), (24, 39)], [(13, 18), (24, 29)]]
    collator = PC2LCollator(tokenizer)
    ids = collator([{"target": t, "image_features": torch.zeros(1, 8)} for t in texts])["input_ids"]
    slots = entity_slots(texts, spans, tokenizer, max_length=64)
    assert [[(s.start, s.end) for s in row] for row in slots] == spans
    for row, text in enumerate(texts):
        for slot in slots[row]:
            entity = (" " if slot.leading_space else "") + text[slot.start : slot.end]
            assert ids[row, slot.position] == tokenizer(entity, add_special_tokens=False)["input_ids"][0]
    assert slots[0][0].leading_space is False and slots[0][1].leading_space is True
    # An entity cut off by max_length cannot be scored: it is dropped, the earlier one kept.
    short = entity_slots(texts[:1], spans[:1], tokenizer, max_length=6)
    assert [(s.start, s.end) for s in short[0]] == [(0, 5)]


def test_an_entity_starting_inside_a_token_is_not_a_slot(tokenizer):
    # The "e" of "the" lies inside the token " the": no position holds its first token, so it cannot be swapped.
    assert " the" in [token.replace("\u0120", " ") for token in tokenizer.tokenize("I like the sushi.")]
    assert entity_slots(["I like the sushi."], [[(9, 10)]], tokenizer, max_length=64) == [[]]


def test_with_every_swap_shortlisted_the_negative_is_the_brute_force_likeliest(tokenizer):
    dataset = _dataset(count=4)
    model = _model(tokenizer)
    collator = PC2LCollator(tokenizer, with_negatives=True)
    # The callback locates the entities (fallback chunker) and gathers the pool, as train-pc2l's does.
    located = NegativeMiningCallback(dataset, collator, candidates=1)
    slots, pool = located.slots, located.pool
    negatives, summary = mine_hard_negatives(
        model, dataset, collator, slots, pool, candidates=10_000, batch_size=3
    )
    assert summary["mined"] == sum(1 for row in slots if row)
    margins = []
    for index, text in enumerate(dataset.columns["target"]):
        if not slots[index]:
            assert negatives[index] == dataset.columns["negative"][index]
            continue
        scored = {
            swap: _log_likelihood(model, collator, dataset[index], swap)
            for swap in _all_swaps(text, slots[index], pool)
        }
        best = max(scored, key=scored.get)
        assert scored[negatives[index]] == pytest.approx(scored[best], abs=1e-4)
        margins.append(_log_likelihood(model, collator, dataset[index], text) - scored[best])
    assert summary["margin"] == pytest.approx(sum(margins) / len(margins), abs=1e-3)


def test_a_keep_test_limits_the_shortlist_to_the_swaps_it_passes(tokenizer):
    dataset = _dataset(count=3)
    model = _model(tokenizer, seed=2)
    collator = PC2LCollator(tokenizer, with_negatives=True)
    located = NegativeMiningCallback(dataset, collator, candidates=1)

    def keep(target, swap):
        return "pizza" not in swap and "sushi" not in swap

    negatives, _ = mine_hard_negatives(
        model, dataset, collator, located.slots, located.pool, candidates=10_000, keep=keep
    )
    for index, text in enumerate(dataset.columns["target"]):
        allowed = [swap for swap in _all_swaps(text, located.slots[index], located.pool) if keep(text, swap)]
        scored = {swap: _log_likelihood(model, collator, dataset[index], swap) for swap in allowed}
        assert keep(text, negatives[index])
        assert scored[negatives[index]] == pytest.approx(max(scored.values()), abs=1e-4)


def _assert_first_token_argmax(model, tokenizer, dataset, slots, pool, negatives):
    """The oracle of one candidate: each negative's first swapped token is the likeliest of every allowed swap's."""
    for index, text in enumerate(dataset.columns["target"]):
        batch = PC2LCollator(tokenizer)([dataset[index]])
        batch.pop("labels")
        with torch.no_grad():
            log_probs = model(**batch).logits[0].log_softmax(-1)
        scores = {}
        for slot in slots[index]:
            for entity in pool:
                if entity == text[slot.start : slot.end].lower():
                    continue
                spaced = (" " if slot.leading_space else "") + entity
                first = tokenizer(spaced, add_special_tokens=False)["input_ids"][0]
                swap = text[: slot.start] + entity + text[slot.end :]
                scores[swap] = log_probs[slot.position - 1, first].item()
        assert scores[negatives[index]] == pytest.approx(max(scores.values()), abs=1e-5)


def test_one_candidate_is_the_swap_whose_first_token_is_likeliest(tokenizer):
    dataset = _dataset(count=4)
    model = _model(tokenizer, seed=1)
    collator = PC2LCollator(tokenizer, with_negatives=True)
    # The callback locates the entities (fallback chunker) and gathers the pool, as train-pc2l's does.
    located = NegativeMiningCallback(dataset, collator, candidates=1)
    negatives, _ = mine_hard_negatives(model, dataset, collator, located.slots, located.pool, candidates=1)
    _assert_first_token_argmax(model, tokenizer, dataset, located.slots, located.pool, negatives)


def test_an_entity_opening_the_target_is_scored_by_its_first_token_without_a_space(tokenizer):
    texts = ["sushi was great here.", "ramen was rich and the broth hot.", "pizza had a thin crust."]
    spans = [[(0, 5)], [(0, 5), (23, 28)], [(0, 5), (12, 22)]]
    examples = synthetic_examples(3)
    features = [e["image_features"] for e in examples], [e["review_features"] for e in examples]
    dataset = PC2LDataset(texts, *features, ["a negative"] * 3)
    slots = entity_slots(texts, spans, tokenizer, max_length=64)
    assert all(row[0].leading_space is False for row in slots)
    pool = ["broth", "pizza", "ramen", "sushi", "thin crust"]
    model = _model(tokenizer, seed=3)
    negatives, _ = mine_hard_negatives(model, dataset, PC2LCollator(tokenizer), slots, pool, candidates=1)
    _assert_first_token_argmax(model, tokenizer, dataset, slots, pool, negatives)


class _Prefers(torch.nn.Module):
    """A fake decoder that gives every position's next token of `ids` a logit of 10 (others 0)."""

    def __init__(self, ids: torch.Tensor, vocab_size: int):
        super().__init__()
        self.ids, self.vocab_size = ids, vocab_size
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, **batch):
        logits = torch.zeros(*input_ids.shape, self.vocab_size)
        steps = min(input_ids.shape[1], len(self.ids)) - 1
        logits[:, torch.arange(steps), self.ids[1 : steps + 1]] = 10.0
        return SimpleNamespace(logits=logits)


def test_a_swap_longer_than_max_length_is_never_the_negative(tokenizer):
    # At max_length 16 (14 tokens of text) the short swap fits and the long one would be cut. The fake decoder
    # prefers the long swap's tokens: cut to 15 tokens it would score near 0 and win, were it scored.
    texts = ["the sushi was great.", "the ramen was rich."]
    examples = synthetic_examples(2)
    features = [e["image_features"] for e in examples], [e["review_features"] for e in examples]
    dataset = PC2LDataset(texts, *features, ["keep me", "keep me too"])
    collator = PC2LCollator(tokenizer, max_length=16)
    slots = entity_slots(texts, [[(4, 9)], [(4, 9)]], tokenizer, max_length=16)
    long_swap = "the spicy tuna roll with the fresh basil on top was great."
    pool = ["pizza", "spicy tuna roll with the fresh basil on top", "ramen", "sushi"]
    lengths = [
        len(tokenizer(texts[0].replace("sushi", e), add_special_tokens=False)["input_ids"]) for e in pool
    ]
    assert lengths[0] <= 14 < lengths[1]
    model = _Prefers(
        collator([{"target": long_swap, "image_features": torch.zeros(1, 8)}])["input_ids"][0], len(tokenizer)
    )
    negatives, _ = mine_hard_negatives(model, dataset, collator, slots, pool, candidates=4)
    assert negatives[0] in (texts[0].replace("sushi", "pizza"), texts[0].replace("sushi", "ramen"))


def test_an_example_no_swap_of_which_passes_keep_keeps_its_negative(tokenizer):
    dataset = _dataset(count=3)
    collator = PC2LCollator(tokenizer, with_negatives=True)
    located = NegativeMiningCallback(dataset, collator, candidates=2)
    negatives, summary = mine_hard_negatives(
        _model(tokenizer), dataset, collator, located.slots, located.pool, keep=lambda target, swap: False
    )
    assert negatives == dataset.columns["negative"] and summary["mined"] == 0


def test_training_mode_is_restored_when_mining_fails(tokenizer, monkeypatch):
    dataset = _dataset(count=3)
    model = _model(tokenizer).train()
    collator = PC2LCollator(tokenizer, with_negatives=True)
    located = NegativeMiningCallback(dataset, collator, candidates=2)

    def fail(**batch):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(model, "forward", fail)
    with pytest.raises(RuntimeError, match="out of memory"):
        mine_hard_negatives(model, dataset, collator, located.slots, located.pool)
    assert model.training


def test_mining_draws_no_random_numbers_and_restores_training_mode(tokenizer):
    dataset = _dataset(count=4)
    model = _model(tokenizer).train()
    collator = PC2LCollator(tokenizer, with_negatives=True)
    callback = NegativeMiningCallback(dataset, collator, candidates=2)
    state = torch.get_rng_state()
    mine_hard_negatives(model, dataset, collator, callback.slots, callback.pool, candidates=2)
    assert torch.equal(state, torch.get_rng_state()) and model.training


def test_the_callback_mines_from_the_second_epoch_on_in_place(tokenizer, tmp_path):
    dataset = _dataset()
    before = list(dataset.columns["negative"])
    collator = PC2LCollator(tokenizer, with_negatives=True)
    callback = NegativeMiningCallback(dataset, collator, candidates=2)
    args, control, model = TrainingArguments(tmp_path, report_to=[]), TrainerControl(), _model(tokenizer)
    callback.on_epoch_begin(args, TrainerState(epoch=0.0), control, model=model)
    assert dataset.columns["negative"] == before and callback.history == []
    callback.on_epoch_begin(args, TrainerState(epoch=1.0), control, model=model)
    expected, _ = mine_hard_negatives(
        model, _dataset(), collator, callback.slots, callback.pool, candidates=2
    )
    assert dataset.columns["negative"] == expected != before
    assert [row["epoch"] for row in callback.history] == [1.0]
    assert [dataset[i]["negative"] for i in range(len(dataset))] == expected


def test_the_callback_needs_negatives(tokenizer):
    examples = synthetic_examples(3, with_negatives=False)
    dataset = PC2LDataset([e["target"] for e in examples], [e["image_features"] for e in examples])
    with pytest.raises(ValueError, match="negative"):
        NegativeMiningCallback(dataset, PC2LCollator(tokenizer), candidates=2)


def test_train_pc2l_mines_each_epoch_after_the_first_and_reports_the_margins(command_assets, monkeypatch):
    calls, mined, batched = [], [], []

    def counted(model, dataset, *args, **kwargs):
        calls.append(len(dataset))
        mined.append(mine_hard_negatives(model, dataset, *args, **kwargs)[0])
        return mined[-1], {"mined": len(dataset), "margin": 0.5}

    def spy(collator, examples):
        if collator.with_negatives:  # the training and evaluation batches (mining batches have none)
            batched.append([example["negative"] for example in examples])
        return collate(collator, examples)

    collate = PC2LCollator.__call__
    monkeypatch.setattr(mined_negatives, "mine_hard_negatives", counted)
    monkeypatch.setattr(PC2LCollator, "__call__", spy)
    argv = train_pc2l_argv(command_assets, "--mined_negative_candidates", "2", "--contrastive_score", "likelihood",
                 "--likelihood_image_negatives", "entity", "--review_contrastive", "none")  # fmt: skip
    assert train_pc2l.main(argv) == 0
    # Three epochs: mined before the second and the third, over the 5 training examples with a photo.
    assert calls == [5, 5]
    # 3 epochs of 2 training batches (5 examples, 3 a batch), then one of the 2 validation examples: the last
    # epoch's training batches hold exactly the last mined negatives.
    assert [len(batch) for batch in batched] == [3, 2] * 3 + [2]
    last_epoch = [negative for batch in batched[-3:-1] for negative in batch]
    assert sorted(last_epoch) == sorted(mined[-1])
    results = json.loads((command_assets / "run" / "all_results.json").read_text())
    assert results["mined_negative_margin_first"] == results["mined_negative_margin_last"] == 0.5
    assert AutoConfig.from_pretrained(command_assets / "run").mined_negative_candidates == 2


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--mined_negative_candidates", "2", "--image_contrastive", "cl"], "mined_negative_candidates=2"),
        # Any pair of options PC2LConfig refuses is one line too (this one was a traceback before).
        (["--likelihood_image_negatives", "entity"], "likelihood_image_negatives='entity'"),
    ],
)
def test_options_that_do_not_fit_together_are_one_line_before_any_data_is_read(
    command_assets, options, named, capsys, monkeypatch
):
    def unreachable(root, kind):
        raise AssertionError("features were read before the options were checked")

    monkeypatch.setattr(gest_showcases.features, "load_features", unreachable)
    assert cli.main(["train-pc2l", *train_pc2l_argv(command_assets, *options)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and "do not fit together" in err[0]
    assert not (command_assets / "run").exists()


def test_mining_with_persistent_dataloader_workers_is_one_line(command_assets, capsys):
    options = ["--mined_negative_candidates", "2", "--dataloader_num_workers", "1",
               "--dataloader_persistent_workers", "true"]  # fmt: skip
    assert cli.main(["train-pc2l", *train_pc2l_argv(command_assets, *options)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dataloader_persistent_workers" in err[0]


def test_random_negatives_from_spans_already_parsed_equal_those_parsed_again():
    texts = [example["target"] for example in synthetic_examples(8)]
    spans = fallback_entity_spans(texts)
    assert make_hard_negatives(texts, seed=3, spans=spans) == make_hard_negatives(texts, seed=3)
    # Spans that differ give different negatives: the argument is read, not ignored.
    assert make_hard_negatives(texts, seed=3, spans=[row[:1] for row in spans]) != make_hard_negatives(
        texts, seed=3
    )


def test_first_token_ties_go_to_the_first_slot_and_pool_entity(tokenizer):
    # A decoder with uniform logits ties every swap: one candidate is then the first slot's first other entity.
    dataset = _dataset(count=3)
    collator = PC2LCollator(tokenizer, with_negatives=True)
    located = NegativeMiningCallback(dataset, collator, candidates=1)
    uniform = _Prefers(torch.tensor([0]), len(tokenizer))
    negatives, _ = mine_hard_negatives(uniform, dataset, collator, located.slots, located.pool, candidates=1)
    for index, text in enumerate(dataset.columns["target"]):
        slot = located.slots[index][0]
        entity = next(e for e in located.pool if e != text[slot.start : slot.end].lower())
        assert negatives[index] == text[: slot.start] + entity + text[slot.end :]
