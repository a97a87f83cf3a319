"""Selector data, training loop, random baseline and the Table 3 ablation, on synthetic CLIP-like features.

In the synthetic world every image belongs to one of a few topics; a user likes one topic, posts the
pool's images of that topic, and their history images (and, more noisily, their history reviews) point
at it. A selector that learns the profile -> topic link must beat random selection by a wide margin.
"""

import json
import random
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from gest_showcases.errors import InputError
from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig, training
from gest_showcases.selection.dataset import (
    SelectionDataset,
    build_selection_dataset,
    collate_selection,
    training_pool_pics,
)
from gest_showcases.selection.training import (
    DPPSelectorTrainer,
    SelectorTrainingArguments,
    compute_selection_metrics,
    evaluate_selection,
    format_selection_table,
    history_cosine_select,
    model_selector,
    random_select,
    run_selection_ablation,
    train_selector,
)
from gest_showcases.testing.built_folder import write_built_folder

DIM, TEXT_DIM, NUM_TOPICS = 16, 12, 6


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny matrices: extra threads only add contention on a shared 2-core machine (10x slower here).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic_world(num_rows: int, seed: int):
    """s1-like rows plus `image` and `review` feature tables (objects with `ids` and `embeddings`)."""
    world = torch.Generator().manual_seed(0)  # topics and the text map are shared by every split
    topics = F.normalize(torch.randn(NUM_TOPICS, DIM, generator=world), dim=-1)
    text_map = torch.randn(DIM, TEXT_DIM, generator=world) / DIM**0.5
    generator = torch.Generator().manual_seed(seed)
    rows, image_ids, image_rows, review_ids, review_rows = [], [], [], [], []

    def add_images(prefix: str, image_topics: torch.Tensor) -> list[str]:
        noise = 0.35 * torch.randn(len(image_topics), DIM, generator=generator)
        image_rows.append(F.normalize(topics[image_topics] + noise, dim=-1))
        ids = [f"{prefix}{i}" for i in range(len(image_topics))]
        image_ids.extend(ids)
        return ids

    for row in range(num_rows):
        topic = int(torch.randint(NUM_TOPICS, (), generator=generator))
        size = int(torch.randint(6, 14, (), generator=generator))
        pool_topics = torch.randint(NUM_TOPICS, (size,), generator=generator)
        pool_topics[: int(torch.randint(1, 4, (), generator=generator))] = topic
        pool_topics = pool_topics[torch.randperm(size, generator=generator)]
        candidates = add_images(f"s{seed}r{row}c", pool_topics)
        history = add_images(f"s{seed}r{row}h", torch.full((2,), topic))
        texts = topics[topic] @ text_map + 0.8 * torch.randn(2, TEXT_DIM, generator=generator) / TEXT_DIM**0.5
        review_rows.append(F.normalize(texts, dim=-1))
        review_ids.extend([f"s{seed}r{row}t0", f"s{seed}r{row}t1"])
        rows.append(
            {
                "pics": [pic for pic, t in zip(candidates, pool_topics.tolist(), strict=True) if t == topic],
                "candidate_pics": candidates,
                "history_pics": history,
                "history_review_ids": review_ids[-2:],
            }
        )
    image_table = SimpleNamespace(ids=image_ids, embeddings=torch.cat(image_rows))
    review_table = SimpleNamespace(ids=review_ids, embeddings=torch.cat(review_rows))
    return rows, image_table, review_table


def tiny_config() -> DPPSelectorConfig:
    return DPPSelectorConfig(
        text_dim=TEXT_DIM,
        image_dim=DIM,
        user_hidden_sizes=[32, 32],
        image_hidden_sizes=[32, 32],
        embed_dim=16,
    )


def test_build_selection_dataset_by_hand():
    image_table = SimpleNamespace(ids=["a", "b", "c", "d"], embeddings=torch.arange(8.0).view(4, 2))
    review_table = SimpleNamespace(
        ids=["r1", "r2"], embeddings=torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    )
    rows = [
        # "x" has no features: dropped from the pool and the history.
        {"pics": ["b", "x"], "candidate_pics": ["a", "x", "b", "c"], "history_pics": ["c", "d", "x"],
         "history_review_ids": ["r1", "r2"]},
        {"pics": ["x"], "candidate_pics": ["a", "b"], "history_pics": [], "history_review_ids": []},  # no target
        {"pics": ["a"], "candidate_pics": ["x"], "history_pics": [], "history_review_ids": []},  # no pool
        {"pics": ["d"], "candidate_pics": ["d", "a"], "history_pics": [], "history_review_ids": ["r2"]},
    ]  # fmt: skip
    dataset = build_selection_dataset(rows, image_table, review_table)
    assert len(dataset) == 2
    assert [pool.tolist() for pool in dataset.candidates] == [[0, 1, 2], [3, 0]]
    assert [target.tolist() for target in dataset.targets] == [[1], [0]]
    torch.testing.assert_close(dataset.profile_image, torch.tensor([[5.0, 6.0], [0.0, 0.0]]))  # mean of c, d
    torch.testing.assert_close(dataset.profile_text, torch.tensor([[0.5, 1.5, 0.0], [0.0, 3.0, 0.0]]))
    assert dataset.candidate_ids(torch.tensor([1])) == [["d", "a"]]
    item = dataset[0]
    torch.testing.assert_close(item["candidate_features"], image_table.embeddings[[0, 1, 2]])
    assert item["target_mask"].tolist() == [False, True, False]

    # Training pools: only the images posted in these rows ("b", "x", "a", "d"); "c" is left out.
    assert training_pool_pics(rows) == {"a", "b", "d", "x"}
    restricted = build_selection_dataset(rows, image_table, review_table, training_pool_pics(rows))
    assert [pool.tolist() for pool in restricted.candidates] == [[0, 1], [3, 0]]
    assert [target.tolist() for target in restricted.targets] == [[1], [0]]


def test_build_selection_dataset_without_usable_rows():
    table = SimpleNamespace(ids=["a"], embeddings=torch.ones(1, 2))
    with pytest.raises(InputError, match="no usable rows"):
        build_selection_dataset([{"pics": ["b"], "candidate_pics": ["a"], "history_pics": [],
                                  "history_review_ids": []}], table, table)  # fmt: skip


def test_collate_pads_to_the_longest_pool():
    rows, image_table, review_table = synthetic_world(3, seed=1)
    dataset = build_selection_dataset(rows, image_table, review_table)
    batch = collate_selection([dataset[i] for i in range(3)])
    lengths = [len(pool) for pool in dataset.candidates]
    assert batch["candidate_features"].shape == (3, max(lengths), DIM)
    assert batch["candidate_mask"].sum(dim=1).tolist() == lengths
    assert (batch["candidate_index"][~batch["candidate_mask"]] == -1).all()
    assert not batch["target_mask"][~batch["candidate_mask"]].any()
    assert (batch["candidate_features"][~batch["candidate_mask"]] == 0).all()


def test_random_select_draws_distinct_real_candidates():
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([[6], [2], [0], [4]])
    indices, counts = random_select(mask, 3, torch.Generator().manual_seed(0))
    assert counts.tolist() == [3, 2, 0, 3]
    for row, count in enumerate(counts.tolist()):
        picks = indices[row, :count]
        assert len(set(picks.tolist())) == count and mask[row, picks].all()
        assert (indices[row, count:] == -1).all()
    # uniform: over many draws every real candidate of a pool of 4 is picked about 3/4 of the time
    many = random_select(mask[3:].expand(4000, 6), 3, torch.Generator().manual_seed(1)).indices
    frequency = torch.bincount(many.flatten(), minlength=6)[:4] / 4000
    torch.testing.assert_close(frequency, torch.full((4,), 0.75), atol=0.03, rtol=0)


def test_history_cosine_select_against_a_loop_over_pools():
    generator = torch.Generator().manual_seed(0)
    profile = torch.randn(5, 4, generator=generator)
    candidates = torch.randn(5, 7, 4, generator=generator) * torch.rand(5, 7, 1, generator=generator) * 3
    lengths = [7, 3, 1, 0, 5]
    mask = torch.arange(7).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    profile[4] = 0.0  # no history photo: every candidate ties, the pool's first k in order
    indices, counts = history_cosine_select(profile, candidates, mask, 3)
    assert counts.tolist() == [3, 3, 1, 0, 3]
    for row, length in enumerate(lengths[:4]):  # oracle: cosine, one pool at a time, highest first
        cosine = [F.cosine_similarity(profile[row], candidates[row, i], dim=0).item() for i in range(length)]
        expected = sorted(range(length), key=lambda i: -cosine[i])[:3]
        assert indices[row].tolist() == expected + [-1] * (3 - len(expected))
    assert indices[4].tolist() == [0, 1, 2]
    # the length of a feature does not matter, only its direction
    scales = torch.rand(5, 7, 1, generator=generator) + 0.1
    assert torch.equal(history_cosine_select(profile * 7, candidates * scales, mask, 3).indices, indices)


def test_parameters_change_after_training_steps():
    rows, image_table, review_table = synthetic_world(40, seed=1)
    dataset = build_selection_dataset(rows, image_table, review_table)
    torch.manual_seed(0)
    model = DPPImageSelector(tiny_config())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = SelectorTrainingArguments(batch_size=16, num_train_epochs=1)
    output = train_selector(model, dataset, args, use_cpu=True)
    trained, losses = output.model, output.losses
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert output.best_epoch is None  # no validation set: the last epoch's weights
    for name, parameter in trained.named_parameters():
        assert not torch.equal(parameter, before[name]), f"{name} did not change"


def test_validation_keeps_the_best_epoch(monkeypatch, tmp_path):
    rows, image_table, review_table = synthetic_world(60, seed=1)
    dataset = build_selection_dataset(rows, image_table, review_table)
    validation = build_selection_dataset(*synthetic_world(30, seed=3))
    torch.manual_seed(0)
    model = DPPImageSelector(tiny_config())
    # Scripted validation scores: epoch 2 is the best; the weights seen at each epoch's check are kept.
    scores, snapshots = iter([0.1, 0.5, 0.2, 0.5, 0.4]), []

    def scripted_metrics(eval_prediction, k):
        assert len(eval_prediction.label_ids) == len(validation)  # every validation example is scored
        snapshots.append({name: p.detach().clone() for name, p in model.state_dict().items()})
        return {f"f1@{k}": next(scores)}

    monkeypatch.setattr(training, "compute_selection_metrics", scripted_metrics)
    args = SelectorTrainingArguments(batch_size=16, num_train_epochs=5, learning_rate=3e-3)
    output = train_selector(model, dataset, args, validation, output_dir=tmp_path / "run", use_cpu=True)
    assert len(snapshots) == 5
    assert (output.best_epoch, output.best_metric) == (2, 0.5)  # the earliest of the ties
    for name, parameter in output.model.state_dict().items():
        torch.testing.assert_close(parameter, snapshots[1][name], rtol=0, atol=0)
    assert not torch.equal(
        snapshots[1]["image_encoder.layers.0.weight"], snapshots[4]["image_encoder.layers.0.weight"]
    )
    assert not (tmp_path / "run").exists()  # the checkpoints went with the run


def test_trainer_validation_f1_is_evaluate_selections(tmp_path):
    """`compute_selection_metrics` on the Trainer's picks is F1@K of the greedy picks, as Table 3 scores them."""
    train = build_selection_dataset(*synthetic_world(40, seed=1))
    validation = build_selection_dataset(*synthetic_world(30, seed=3))
    torch.manual_seed(0)
    args = SelectorTrainingArguments(batch_size=16, num_train_epochs=1, learning_rate=3e-2, eval_batch_size=8)
    trained = train_selector(DPPImageSelector(tiny_config()), train, args, use_cpu=True).model
    trainer = DPPSelectorTrainer(
        model=trained,
        args=args.to_training_arguments(tmp_path, use_cpu=True),
        eval_dataset=validation,
        compute_metrics=partial(compute_selection_metrics, k=3),
        top_k=3,
    )
    metrics = trainer.evaluate()
    expected = evaluate_selection(model_selector(trained, 3), validation, 3, 8)
    for name in ("precision@3", "recall@3", "f1@3"):
        assert metrics[f"eval_{name}"] == expected[name], name
    assert 0 < expected["f1@3"] < 1


def test_trainer_works_with_default_training_arguments_and_keeps_the_best_f1(tmp_path):
    """Session 28's audit: the default `remove_unused_columns=True` stripped `candidate_index` before the collator
    (a KeyError at the first evaluation), and `load_best_model_at_end` looked for an `eval_loss` this trainer has
    not."""
    from transformers import TrainingArguments

    train = build_selection_dataset(*synthetic_world(40, seed=1))
    validation = build_selection_dataset(*synthetic_world(30, seed=3))
    args = TrainingArguments(output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=16,
                             eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
                             report_to="none", use_cpu=True, disable_tqdm=True)  # fmt: skip
    torch.manual_seed(0)
    trainer = DPPSelectorTrainer(model=DPPImageSelector(tiny_config()), args=args, train_dataset=train,
                                 eval_dataset=validation, compute_metrics=partial(compute_selection_metrics, k=3))  # fmt: skip
    trainer.train()
    assert args.metric_for_best_model == "f1@3" and args.greater_is_better
    scores = [log["eval_f1@3"] for log in trainer.state.log_history if "eval_f1@3" in log]
    assert len(scores) == 2 and trainer.state.best_metric == max(scores)


def hand_written_loop(model: DPPImageSelector, dataset, validation, args) -> tuple[list[float], int]:
    """The selector's training before `DPPSelectorTrainer` (one process): the losses of every step and the epoch
    kept; `model` ends with that epoch's weights. The Trainer must reproduce it exactly."""
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=partial(collate_selection, distinct_images=True),
        generator=torch.Generator().manual_seed(args.seed),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    losses, best_score, best_state, best_epoch = [], -1.0, None, None
    for epoch in range(1, args.num_train_epochs + 1):
        model.train()
        for batch in loader:
            batch.pop("candidate_index")
            loss = model(**batch).loss
            loss.backward()
            losses.append(loss.item())
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        select = model_selector(model, args.top_k)
        score = evaluate_selection(select, validation, args.top_k, args.eval_batch_size, show_progress=False)
        if score[f"f1@{args.top_k}"] > best_score:
            best_score, best_epoch = score[f"f1@{args.top_k}"], epoch
            best_state = {name: p.detach().clone() for name, p in model.state_dict().items()}
    model.load_state_dict(best_state)
    return losses, best_epoch


def global_random_state() -> tuple:
    """Python's, NumPy's and torch's global generators, comparable with `==`."""
    kind, keys, *rest = np.random.get_state()
    return random.getstate(), (kind, keys.tolist(), *rest), torch.random.get_rng_state().tolist()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def test_trainer_reproduces_the_hand_written_loop(tmp_path):
    train = build_selection_dataset(*synthetic_world(30, seed=1))
    validation = build_selection_dataset(*synthetic_world(30, seed=3))
    # A high rate on few examples: validation F1 goes up and down, and the best epoch is neither end.
    args = SelectorTrainingArguments(batch_size=8, num_train_epochs=8, learning_rate=0.1, eval_batch_size=8)
    seed_everything(0)
    reference = DPPImageSelector(tiny_config())
    reference_losses, reference_epoch = hand_written_loop(reference, train, validation, args)
    seed_everything(0)
    model = DPPImageSelector(tiny_config())
    before = global_random_state()
    output = train_selector(model, train, args, validation, output_dir=tmp_path / "run", use_cpu=True)
    # The training draws from its own generator; `Trainer` re-seeds the global ones: they are given back untouched.
    assert global_random_state() == before
    assert 1 < reference_epoch < args.num_train_epochs
    assert output.best_epoch == reference_epoch
    assert len(output.losses) == len(reference_losses) == 4 * args.num_train_epochs  # 30 examples, 8 a batch
    assert output.losses == pytest.approx(reference_losses, abs=1e-6, rel=0)
    reference_state = reference.state_dict()
    for name, parameter in output.model.state_dict().items():
        torch.testing.assert_close(parameter, reference_state[name], atol=1e-6, rtol=0)


@pytest.mark.slow
def test_ablation_learned_modes_beat_random():
    train = build_selection_dataset(*synthetic_world(480, seed=1))
    test = build_selection_dataset(*synthetic_world(200, seed=2))
    args = SelectorTrainingArguments(
        batch_size=64, num_train_epochs=12, learning_rate=3e-3, eval_batch_size=128
    )
    results, models = run_selection_ablation(train, test, tiny_config(), args, use_cpu=True)
    assert list(results) == ["random", "history-cosine", "img", "text", "img+text"]
    assert set(models) == {"img", "text", "img+text"}
    random_precision = results["random"]["precision@3"]
    for mode in ("img", "img+text"):
        assert results[mode]["precision@3"] > random_precision + 0.25, results
        assert results[mode]["recall@3"] > results["random"]["recall@3"] + 0.25, results
    assert results["text"]["precision@3"] > random_precision + 0.1, results
    table = format_selection_table(results, 3).splitlines()
    assert table[0] == "| Method | Prec@3 | Recall@3 | F1@3 | Div@3 |"
    assert [line.split(" | ")[0] for line in table[2:]] == [
        "| random", "| history-cosine", "| img", "| text", "| img+text"
    ]  # fmt: skip


def write_s1_folder(root, splits: dict[str, list[dict]]) -> None:
    write_built_folder(root, {"s1": splits})


def test_train_selector_command_end_to_end(tmp_path, monkeypatch):
    from transformers import AutoModel

    from gest_showcases.commands import train_selector as command

    train_rows, image_a, review_a = synthetic_world(64, seed=1)
    test_rows, image_b, review_b = synthetic_world(32, seed=2)
    tables = {
        "image": SimpleNamespace(ids=image_a.ids + image_b.ids, embeddings=torch.cat([image_a.embeddings, image_b.embeddings]),
                                 checkpoint="clip", fingerprint="fp"),
        "review": SimpleNamespace(ids=review_a.ids + review_b.ids, embeddings=torch.cat([review_a.embeddings, review_b.embeddings]),
                                  checkpoint="clip", fingerprint="fp"),
    }  # fmt: skip
    write_s1_folder(tmp_path / "data", {"train": train_rows, "test": test_rows})
    monkeypatch.setattr(command, "load_features", lambda root, kind: tables[kind])

    output = tmp_path / "runs"
    argv = ["--dataset", str(tmp_path / "data"), "--features", "unused", "--output_dir", str(output),
            "--methods", "random", "img", "--num_train_epochs", "2", "--batch_size", "32", "--use_cpu"]  # fmt: skip
    assert command.main(argv) == 0
    table = json.loads((output / "table3.json").read_text())
    assert table["unit"] == "percent" and table["examples"] == {"train": 64, "test": 32}
    assert set(table["results"]) == {"random", "img"}
    assert set(table["results"]["img"]) == {"precision@3", "recall@3", "f1@3", "div@3"}
    assert (output / "table3.md").read_text().startswith("| Method | Prec@3")
    reloaded = AutoModel.from_pretrained(output / "selector-img")
    assert reloaded.config.input_mode == "img" and reloaded.config.image_dim == DIM

    # --history_prior: the img selector starts with the prior and saves its learnt weight; text cannot and keeps 0.
    argv = ["--dataset", str(tmp_path / "data"), "--features", "unused", "--output_dir", str(tmp_path / "prior"),
            "--methods", "img", "text", "--num_train_epochs", "2", "--batch_size", "32", "--use_cpu", "--history_prior", "2.0"]  # fmt: skip
    assert command.main(argv) == 0
    image, text = (AutoModel.from_pretrained(tmp_path / "prior" / f"selector-{mode}") for mode in ("img", "text"))
    assert image.config.history_prior == 2.0 and image.history_prior_weight.item() != 2.0  # trained
    assert text.config.history_prior == 0.0 and not hasattr(text, "history_prior_weight")


def test_train_selector_refuses_image_and_review_features_of_two_clips(tmp_path, monkeypatch):
    from gest_showcases.commands import train_selector as command

    rows, image, review = synthetic_world(16, seed=1)
    tables = {"image": SimpleNamespace(ids=image.ids, embeddings=image.embeddings, checkpoint="clip-a", fingerprint="a"),
              "review": SimpleNamespace(ids=review.ids, embeddings=review.embeddings, checkpoint="clip-b", fingerprint="b")}  # fmt: skip
    write_s1_folder(tmp_path / "data", {"train": rows, "test": rows})
    monkeypatch.setattr(command, "load_features", lambda root, kind: tables[kind])
    argv = ["--dataset", str(tmp_path / "data"), "--features", "f", "--output_dir", str(tmp_path / "runs")]
    with pytest.raises(InputError, match="its image features come from 'clip-a' and its review features from 'clip-b'"):
        command.main(argv)
    assert not (tmp_path / "runs").exists()


def test_train_selector_command_with_validation_leaves_no_checkpoint(tmp_path, monkeypatch):
    from gest_showcases.commands import train_selector as command

    worlds = {"train": synthetic_world(48, seed=1), "validation": synthetic_world(16, seed=3),
              "test": synthetic_world(16, seed=2)}  # fmt: skip
    tables = {
        kind: SimpleNamespace(
            ids=[i for _, image, review in worlds.values() for i in (image, review)[index].ids],
            embeddings=torch.cat([(image, review)[index].embeddings for _, image, review in worlds.values()]),
            checkpoint="clip",
            fingerprint="fp",
        )
        for index, kind in enumerate(("image", "review"))
    }
    write_s1_folder(tmp_path / "data", {split: rows for split, (rows, _, _) in worlds.items()})
    monkeypatch.setattr(command, "load_features", lambda root, kind: tables[kind])
    output = tmp_path / "runs"
    argv = ["--dataset", str(tmp_path / "data"), "--features", "unused", "--output_dir", str(output),
            "--methods", "img", "--num_train_epochs", "2", "--batch_size", "16", "--use_cpu"]  # fmt: skip
    assert command.main(argv) == 0
    # The best epoch's checkpoint lived in the output folder while the selector trained, and went with the run.
    assert sorted(path.name for path in output.iterdir()) == ["selector-img", "table3.json", "table3.md"]
    assert not [path for path in output.rglob("*") if "checkpoint" in path.name]


def _command_world(tmp_path, monkeypatch):
    from gest_showcases.commands import train_selector as command

    rows, image, review = synthetic_world(32, seed=1)
    tables = {"image": SimpleNamespace(ids=image.ids, embeddings=image.embeddings, checkpoint="clip", fingerprint="fp"),
              "review": SimpleNamespace(ids=review.ids, embeddings=review.embeddings, checkpoint="clip", fingerprint="fp")}  # fmt: skip
    write_s1_folder(tmp_path / "data", {"train": rows, "test": rows[:8]})
    monkeypatch.setattr(command, "load_features", lambda root, kind: tables[kind])
    return command, ["--dataset", str(tmp_path / "data"), "--features", "f", "--output_dir", str(tmp_path / "runs"),
                     "--methods", "img", "--num_train_epochs", "1", "--use_cpu"]  # fmt: skip


def test_train_selector_diverging_at_its_last_step_saves_nothing(tmp_path, monkeypatch):
    """Session 28's audit: one step at a learning rate of 1e37 overflowed the weights after the last gradient check;
    the NaN selector was saved (exit 0), Table 3 read 0.00 and `showcase` picked no photo."""
    from gest_showcases.numerics import NonFiniteError

    command, argv = _command_world(tmp_path, monkeypatch)
    with pytest.raises(NonFiniteError, match=r"the model after step 1 computes loss nan on its last training batch"):
        command.main([*argv, "--batch_size", "1000", "--learning_rate", "1e37"])
    assert not (tmp_path / "runs" / "selector-img").exists()


def test_train_selector_refuses_a_mode_folder_holding_another_model_before_training(tmp_path, monkeypatch):
    command, argv = _command_world(tmp_path, monkeypatch)
    other = tmp_path / "runs" / "selector-img"
    other.mkdir(parents=True)
    (other / "config.json").write_text(json.dumps({"model_type": "pc2l"}))
    with pytest.raises(InputError, match=r"selector-img: holds a 'pc2l' model, which train-selector would overwrite"):
        command.main(argv)
    assert sorted(path.name for path in other.iterdir()) == ["config.json"]


def test_a_rerun_stopped_while_saving_leaves_no_table_of_the_previous_run(tmp_path, monkeypatch):
    """Session 28's resume audit: killed while saving its selectors, a rerun left the previous run's Table 3 beside
    the new selectors, a folder that read as finished."""
    command, argv = _command_world(tmp_path, monkeypatch)
    assert command.main(argv) == 0
    assert (tmp_path / "runs" / "table3.md").is_file()

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(DPPImageSelector, "save_pretrained", killed)
    with pytest.raises(KeyboardInterrupt):
        command.main([*argv, "--seed", "1"])
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["selector-img"]  # the previous one, whole
    assert (tmp_path / "runs" / "selector-img" / "model.safetensors").is_file()


def test_select_refuses_a_non_finite_kernel():
    model = DPPImageSelector(tiny_config()).eval()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    features = torch.randn(1, 4, DIM)
    with pytest.raises(ValueError, match="kernel holds NaN or inf"):
        model.select(torch.randn(1, TEXT_DIM), torch.randn(1, DIM), features, torch.ones(1, 4, dtype=torch.bool))


def test_evaluating_a_selector_that_computes_nan_is_one_line():
    from gest_showcases.commands.running import user_error_message
    from gest_showcases.selection.modeling_dpp import NonFiniteKernelError

    model = DPPImageSelector(tiny_config()).eval()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteKernelError) as caught:
        evaluate_selection(model_selector(model, 3), build_selection_dataset(*synthetic_world(8, seed=1)), 3, 8)
    assert user_error_message(caught.value).startswith("the selector's kernel holds NaN or inf")


def test_dataset_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="must match"):
        SelectionDataset(torch.zeros(3, 2), torch.zeros(2, 2), torch.zeros(1, 2), [], [])
