"""PC2LTrainer: eq. 11 composition, lambda = 0, training moves the weights, gradient accumulation, logging, DDP."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pc2l_fixtures import (
    CORPUS,
    assert_train_pc2l_refuses_in_one_line,
    pc2l_dataset,
    sgd_pc2l_trainer,
    sgd_training_args,
    synthetic_examples,
    tiny_config,
    train_pc2l_argv,
)
from transformers import AutoConfig, TrainingArguments

from gest_showcases.cards import generator_card
from gest_showcases.commands import train_pc2l
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.losses import (
    cross_modal_contrastive_loss,
    personalized_contrastive_loss,
    total_loss,
)
from gest_showcases.generation.modeling_pc2l import masked_mean
from gest_showcases.generation.trainer import PC2LTrainer


def _model(tokenizer, seed=0, **overrides):
    torch.manual_seed(seed)
    return PC2LForConditionalGeneration(tiny_config(tokenizer, **overrides))


def test_total_loss_is_eq11(tokenizer):
    model = _model(tokenizer, lambda1=0.3, lambda2=0.7)
    batch = PC2LCollator(tokenizer, with_negatives=True)(synthetic_examples(4))
    out = model(**batch)
    loss, parts = total_loss(model.config, out, batch)
    assert set(parts) == {"loss_ce", "loss_ccl", "loss_pcl"}
    ccl = cross_modal_contrastive_loss(out.image_embeds, out.target_embeds, out.negative_embeds, 0.1)
    means = masked_mean(batch["review_features"], batch["review_mask"])
    pcl = personalized_contrastive_loss(
        out.review_embeds, out.target_embeds, means, model.config.pcl_alpha, 0.1
    )
    torch.testing.assert_close(loss, out.loss + 0.3 * ccl + 0.7 * pcl)


def test_lambda_zero_equals_ce_only(tokenizer):
    batch = PC2LCollator(tokenizer, with_negatives=True)(synthetic_examples(4))
    pc2l = _model(tokenizer, lambda1=0.0, lambda2=0.0)
    baseline = _model(tokenizer, image_contrastive="none", review_contrastive="none")
    baseline.load_state_dict(pc2l.state_dict(), strict=False)  # the baseline has no projection heads
    loss, parts = total_loss(pc2l.config, pc2l(**batch), batch)
    baseline_batch = {key: value for key, value in batch.items() if not key.startswith("negative")}
    baseline_loss = baseline(**baseline_batch).loss
    torch.testing.assert_close(loss, baseline_loss)
    loss.backward()
    baseline_loss.backward()
    baseline_grads = dict(baseline.named_parameters())
    for name, parameter in pc2l.named_parameters():
        if name in baseline_grads:
            torch.testing.assert_close(parameter.grad, baseline_grads[name].grad, msg=name)


def test_training_changes_every_parameter_and_logs_each_part(tokenizer, tmp_path):
    model = _model(tokenizer)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    trainer = PC2LTrainer(
        model=model,
        args=sgd_training_args(tmp_path, max_steps=3),
        train_dataset=pc2l_dataset(synthetic_examples(6)),
        data_collator=PC2LCollator(tokenizer, with_negatives=True),
    )
    trainer.train()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p.detach(), before[name])]
    assert unchanged == []
    logged = [entry for entry in trainer.state.log_history if "loss_ce" in entry]
    assert len(logged) == 3
    for entry in logged:
        assert {"loss", "loss_ce", "loss_ccl", "loss_pcl"} <= set(entry)
        expected = entry["loss_ce"] + 0.2 * entry["loss_ccl"] + 0.2 * entry["loss_pcl"]
        assert entry["loss"] == pytest.approx(expected, rel=1e-4)


def test_ccl_without_negatives_in_the_batch_is_a_clear_error(tokenizer, tmp_path):
    trainer = PC2LTrainer(
        model=_model(tokenizer),
        args=sgd_training_args(tmp_path),
        train_dataset=pc2l_dataset(synthetic_examples(4)),
        data_collator=PC2LCollator(tokenizer, with_negatives=False),
    )
    with pytest.raises(ValueError, match="negative_input_ids"):
        trainer.train()


def _train_one_step(model, tokenizer, tmp_path, examples, batch_size, accumulation):
    trainer = PC2LTrainer(
        model=model,
        args=sgd_training_args(
            tmp_path,
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
        ),  # fmt: skip
        train_dataset=pc2l_dataset(examples),
        data_collator=PC2LCollator(tokenizer, with_negatives=True),
    )
    trainer.train()
    return {name: parameter.detach() for name, parameter in model.named_parameters()}


def test_gradient_accumulation_4x1_matches_1x4(tokenizer, tmp_path):
    # Equal target lengths: then the mean of micro-batch token means is the token mean of the whole batch.
    examples = [dict(example, target=CORPUS[0]) for example in synthetic_examples(4)]
    config = {"image_contrastive": "none", "review_contrastive": "none"}
    one_batch = _train_one_step(_model(tokenizer, **config), tokenizer, tmp_path / "a", examples, 4, 1)
    accumulated = _train_one_step(_model(tokenizer, **config), tokenizer, tmp_path / "b", examples, 1, 4)
    for name, value in one_batch.items():
        torch.testing.assert_close(accumulated[name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_gradient_accumulation_does_not_scale_the_contrastive_parts(tokenizer, tmp_path):
    examples = synthetic_examples(4)
    model = _model(tokenizer)
    reference = copy.deepcopy(model)
    trained = _train_one_step(model, tokenizer, tmp_path, examples, 2, 2)
    # Reference: one SGD step on the mean over the two micro-batches of eq. 11.
    collator = PC2LCollator(tokenizer, with_negatives=True)
    reference.train()
    for micro_batch in (examples[:2], examples[2:]):
        batch = collator(micro_batch)
        (total_loss(reference.config, reference(**batch), batch)[0] / 2).backward()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter -= 0.1 * parameter.grad
    for name, parameter in reference.named_parameters():
        torch.testing.assert_close(trained[name], parameter.detach(), rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        # Session 30's review: the projection heads get no gradient in a warm-up step, and under activation
        # checkpointing Trainer told DDP that every parameter gets one (an error at the second step).
        {"config": {"contrastive_warmup_ratio": 0.5}, "args": {"max_steps": 4, "gradient_checkpointing": True}},
    ],
    ids=["paper", "warmup-with-activation-checkpointing"],
)
def test_two_process_cpu_training(tmp_path, overrides):
    script = Path(__file__).with_name("ddp_train_synthetic.py")
    # TMPDIR: torch.distributed.run leaves its `torchelastic_*` folder behind; in tmp_path it goes with the test.
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TMPDIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(tmp_path), json.dumps(overrides)],
        capture_output=True, text=True, env=env, timeout=600, cwd=script.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert all(rank["world_size"] == 2 for rank in ranks)
    assert ranks[0]["checksum"] == pytest.approx(ranks[1]["checksum"], rel=1e-6)  # DDP kept replicas in sync
    assert all(rank["changed"] for rank in ranks)
    assert all({"loss_ce", "loss_ccl", "loss_pcl"} <= set(rank["logged"]) for rank in ranks)


def test_label_smoothing_is_refused_not_ignored(tokenizer, tmp_path):
    """The stock Trainer smooths labels in the `compute_loss` that PC2LTrainer replaces: `--label_smoothing_factor`
    trained an unsmoothed model without a word (session 25's audit of TrainingArguments)."""
    from gest_showcases.errors import InputError

    args = TrainingArguments(output_dir=str(tmp_path), label_smoothing_factor=0.1, use_cpu=True, report_to="none")
    with pytest.raises(InputError, match="--label_smoothing_factor 0.1: not applied to a generator's loss"):
        PC2LTrainer(model=_model(tokenizer), args=args)


def test_the_trainer_works_with_default_training_arguments(tokenizer, tmp_path):
    """Session 28's audit: with `remove_unused_columns=True` (transformers' default) the Trainer stripped the
    examples' `target` before the collator saw it (a KeyError). The examples reach the collator whole now."""
    examples = synthetic_examples(4)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, report_to="none", use_cpu=True, disable_tqdm=True)
    assert args.remove_unused_columns
    trainer = PC2LTrainer(model=_model(tokenizer), args=args, train_dataset=pc2l_dataset(examples),
                          eval_dataset=pc2l_dataset(examples), data_collator=PC2LCollator(tokenizer, with_negatives=True))  # fmt: skip
    trainer.train()
    assert {"eval_loss", "eval_loss_ccl"} <= set(trainer.evaluate())


CONTRASTIVE_OUTPUTS = ("image_embeds", "review_embeds", "target_embeds", "negative_embeds")


def test_contrastive_warmup_trains_on_cross_entropy_alone_then_eq11(tokenizer, tmp_path):
    """`contrastive_warmup_ratio` (H15): the first half of 4 SGD steps on cross-entropy alone, without running the
    hard negatives, then eq. 11; checked against the same 4 steps taken by hand, and evaluation scores eq. 11."""
    examples = synthetic_examples(8)
    model = _model(tokenizer, contrastive_warmup_ratio=0.5)
    reference = copy.deepcopy(model)
    contrastive_outputs = []
    forward = model.forward

    def recording_forward(*args, **kwargs):
        output = forward(*args, **kwargs)
        if model.training:  # not the finite-loss check of the last batch, in eval mode, after training
            # What only the contrastive losses read: in a warm-up step none of it is computed.
            contrastive_outputs.append(sorted(name for name in CONTRASTIVE_OUTPUTS if getattr(output, name) is not None))
        return output

    model.forward = recording_forward
    trainer = sgd_pc2l_trainer(model, tokenizer, tmp_path, examples, examples[:2], max_steps=4, eval_strategy="steps",
                               eval_steps=1)  # fmt: skip
    trainer.train()
    assert contrastive_outputs == [[]] * 2 + [sorted(CONTRASTIVE_OUTPUTS)] * 2
    logged = [entry for entry in trainer.state.log_history if "loss_ce" in entry]
    assert [sorted(entry) for entry in logged][:2] == [sorted(logged[0])] * 2
    assert "loss_ccl" not in logged[0] and logged[0]["loss"] == pytest.approx(logged[0]["loss_ce"], rel=1e-5)
    assert all({"loss_ccl", "loss_pcl"} <= set(entry) for entry in logged[2:])
    # Evaluated after every step, in the warm-up too: always eq. 11.
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluations) == 4 and all({"eval_loss_ccl", "eval_loss_pcl"} <= set(entry) for entry in evaluations)

    collator = PC2LCollator(tokenizer, with_negatives=True)
    reference.train()
    for step in range(4):
        batch = collator(examples[2 * step : 2 * step + 2])
        if step < 2:
            ce_batch = {key: value for key, value in batch.items() if not key.startswith("negative")}
            loss = reference(**ce_batch).loss
        else:
            loss = total_loss(reference.config, reference(**batch), batch)[0]
        reference.zero_grad()
        loss.backward()
        with torch.no_grad():
            for parameter in reference.parameters():
                if parameter.grad is not None:
                    parameter -= 0.1 * parameter.grad
    for name, parameter in reference.named_parameters():
        torch.testing.assert_close(dict(model.named_parameters())[name], parameter, rtol=1e-4, atol=1e-6, msg=name)
    assert {"eval_loss_ccl", "eval_loss_pcl"} <= set(trainer.evaluate())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"contrastive_warmup_ratio": 1.0}, r"must be in \[0, 1\)"),
        ({"contrastive_warmup_ratio": -0.1}, r"must be in \[0, 1\)"),
        ({"contrastive_warmup_ratio": float("nan")}, r"must be in \[0, 1\)"),
        ({"contrastive_warmup_ratio": 0.5, "image_contrastive": "none", "review_contrastive": "none"},
         "needs at least one of them"),
    ],
)  # fmt: skip
def test_contrastive_warmup_ratio_out_of_range_is_refused(tokenizer, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(tokenizer, **overrides)


def test_train_pc2l_warms_up_records_the_option_and_refuses_a_bad_one_in_one_line(command_assets, capsys):
    argv = train_pc2l_argv(command_assets, "--contrastive_warmup_ratio", "0.5", "--logging_steps", "1")
    assert train_pc2l.main(argv) == 0
    config = AutoConfig.from_pretrained(command_assets / "run")
    assert config.contrastive_warmup_ratio == 0.5
    assert "| contrastive_warmup_ratio | 0.5 |" in str(generator_card(config, "user/run", results_dir=command_assets))
    # The run's log history, kept in trainer_state.json as HF's scripts keep it: 3 epochs of 2 batches.
    history = json.loads((command_assets / "run" / "trainer_state.json").read_text())["log_history"]
    steps = [entry for entry in history if "loss_ce" in entry]
    assert [entry["step"] for entry in steps] == [1, 2, 3, 4, 5, 6]
    assert [("loss_ccl" in entry) for entry in steps] == [False] * 3 + [True] * 3
    assert_train_pc2l_refuses_in_one_line(command_assets, capsys, "--contrastive_warmup_ratio", "1")
