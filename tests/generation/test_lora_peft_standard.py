"""A `train-pc2l --lora` run folder loads the standard peft ways (issue 15).

The run holds the adapter and, in `base/`, the PC2L checkpoint it applies to; the adapter config names that
base (absolute path) and `transformers.AutoModel` as its class. The oracle is the model the script trained,
captured in place.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from pc2l_fixtures import FEATURE_DIM, FakeFeatureTable, build_tokenizer, write_built_dataset
from transformers import GPT2Config, GPT2LMHeadModel

import gest_showcases.features
from gest_showcases.commands import train_pc2l
from gest_showcases.generation.lora import load_lora_pc2l
from gest_showcases.generation.modeling_pc2l import PC2LForConditionalGeneration
from gest_showcases.generation.trainer import PC2LTrainer
from gest_showcases.pipeline import load_generator


def _inputs() -> dict:
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(2, 2, FEATURE_DIM, generator=generator)
    mask = torch.tensor([[True, True], [True, False]])
    return {"image_features": features, "image_mask": mask, "review_features": features.flip(1),
            "review_mask": mask, "input_ids": torch.tensor([[1, 2, 3], [4, 5, 6]]),
            "attention_mask": torch.ones(2, 3, dtype=torch.long)}  # fmt: skip


@pytest.fixture(scope="module", params=[False, True], ids=["cross-trained-fully", "cross-lora"])
def lora_run(request, tmp_path_factory):
    """A tiny `train-pc2l --lora` run (LoRA on the cross-attention, or the cross-attention trained fully)."""
    root = tmp_path_factory.mktemp("lora")
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(root / "tokenizer")
    torch.manual_seed(0)
    special = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id}
    GPT2LMHeadModel(
        GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64, vocab_size=len(tokenizer), **special)
    ).save_pretrained(root / "gpt2")
    write_built_dataset(root / "dataset")
    argv = ["--dataset", str(root / "dataset"), "--features", "unused", "--tokenizer", str(root / "tokenizer"),
            "--decoder", str(root / "gpt2"), "--output_dir", str(root / "run"), "--encoder_layers", "1",
            "--encoder_attention_heads", "2", "--projection_dim", "8", "--image_kind", "image", "--max_steps", "2",
            "--learning_rate", "1e-2", "--per_device_train_batch_size", "3", "--save_strategy", "steps",
            "--save_steps", "1",
            "--eval_strategy", "no", "--report_to", "none", "--use_cpu", "--disable_tqdm", "True", "--lora",
            "--lora_cross_attention", str(request.param)]  # fmt: skip
    built, base_before_training = [], []
    build_model, train = train_pc2l.build_model, PC2LTrainer.train

    def recording_train(trainer, *args, **kwargs):
        base_before_training.append((root / "run" / "base" / "config.json").is_file())
        return train(trainer, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gest_showcases.features, "load_features", lambda folder, kind: FakeFeatureTable())
        patch.setattr(train_pc2l, "build_model", lambda *args: built.append(build_model(*args)) or built[-1])
        patch.setattr(PC2LTrainer, "train", recording_train)
        assert train_pc2l.main(argv) == 0
    # The base is written before training, so that a stopped run's checkpoints load (the test below).
    assert base_before_training == [True]
    trained = built[0].eval()
    with torch.no_grad():
        expected = trained(**_inputs()).logits
    torch.save(expected, root / "expected_logits.pt")
    return {"root": root, "run": root / "run", "trained": trained, "expected": expected}


def test_peft_model_on_the_saved_base_computes_the_trained_model(lora_run):
    from peft import PeftModel

    run = lora_run["run"]
    base = PC2LForConditionalGeneration.from_pretrained(run / "base")
    model = PeftModel.from_pretrained(base, run).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**_inputs()).logits, lora_run["expected"], rtol=0, atol=0)
    # The base is the starting model (PeftModel wrapped `base` in place: load it again), its decoder the GPT-2
    # checkpoint's, and the adapter matters: the base alone computes other logits.
    base = PC2LForConditionalGeneration.from_pretrained(run / "base").eval()
    gpt2 = GPT2LMHeadModel.from_pretrained(lora_run["root"] / "gpt2")
    torch.testing.assert_close(base.decoder.transformer.h[0].attn.c_attn.weight,
                               gpt2.transformer.h[0].attn.c_attn.weight, rtol=0, atol=0)  # fmt: skip
    with torch.no_grad():
        assert not torch.allclose(base(**_inputs()).logits, lora_run["expected"])
    # The parts trained fully (encoder, heads, cross-attention without LoRA) are there as they started, which
    # peft kept frozen as `original_module`; their trained copies belong to the adapter.
    wrapped = {name: module for name, module in lora_run["trained"].get_base_model().named_modules()
               if hasattr(module, "original_module")}  # fmt: skip
    assert any(name == "encoder" for name in wrapped)
    for name, module in wrapped.items():
        started = module.original_module.state_dict()
        torch.testing.assert_close(base.get_submodule(name).state_dict(), started, rtol=0, atol=0)
    trained_encoder = wrapped["encoder"].modules_to_save["default"].state_dict()
    assert any(
        not torch.equal(trained_encoder[key], value) for key, value in base.encoder.state_dict().items()
    )


def test_adapter_config_names_the_base_and_an_allowlisted_auto_class(lora_run):
    run = lora_run["run"]
    config = json.loads((run / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str((run / "base").resolve())
    assert config["auto_mapping"] == {"base_model_class": "AutoModel", "parent_library": "transformers"}


@pytest.mark.slow  # a fresh interpreter: torch, transformers and peft imports
def test_auto_peft_model_loads_the_run_from_another_directory(lora_run, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, torch
        import gest_showcases
        from peft import AutoPeftModel
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_lora_peft_standard import _inputs

        model = AutoPeftModel.from_pretrained({str(lora_run["run"])!r}).eval()
        assert type(model.get_base_model()).__name__ == "PC2LForConditionalGeneration", type(model.get_base_model())
        with torch.no_grad():
            logits = model(**_inputs()).logits
        torch.testing.assert_close(logits, torch.load({str(lora_run["root"] / "expected_logits.pt")!r}),
                                   rtol=0, atol=0)
        print("same logits")
        """
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "same logits" in result.stdout


def test_load_lora_pc2l_finds_the_base_inside_a_moved_run(lora_run, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(lora_run["run"], moved)
    # The base the adapter config names is gone (the run has moved): the base inside the run is used.
    original_base = lora_run["run"] / "base"
    original_base.rename(tmp_path / "hidden")
    try:
        model = load_lora_pc2l(moved)
    finally:
        (tmp_path / "hidden").rename(original_base)
    assert not model.training
    with torch.no_grad():
        torch.testing.assert_close(model(**_inputs()).logits, lora_run["expected"], rtol=0, atol=0)


def test_a_checkpoint_of_the_run_loads_as_the_model_at_its_step(lora_run, tmp_path):
    """A Trainer `checkpoint-N` of a LoRA run holds the adapter only; it loaded nowhere (no `base/` of its own).
    Oracle: the last checkpoint (step 2 of 2) is the trained model; the first is another."""
    run = lora_run["run"]
    with torch.no_grad():
        torch.testing.assert_close(load_lora_pc2l(run / "checkpoint-2")(**_inputs()).logits, lora_run["expected"],
                                   rtol=0, atol=0)  # fmt: skip
        assert not torch.allclose(load_lora_pc2l(run / "checkpoint-1")(**_inputs()).logits, lora_run["expected"])
    merged = load_generator(run / "checkpoint-2")  # the pipeline's loader (`showcase --generator`) takes it too
    with torch.no_grad():
        torch.testing.assert_close(merged(**_inputs()).logits, lora_run["expected"], rtol=1e-5, atol=1e-5)
    # A checkpoint whose run has no base (moved alone, or the run of an older version, stopped): one clear error.
    shutil.copytree(run / "checkpoint-1", tmp_path / "checkpoint-1")
    with pytest.raises(FileNotFoundError, match="is a checkpoint of a `train-pc2l --lora` run without .*finish the run"):
        load_lora_pc2l(tmp_path / "checkpoint-1")


def test_load_lora_pc2l_refuses_a_folder_without_a_base(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a `train-pc2l --lora` output"):
        load_lora_pc2l(tmp_path)


def test_push_stages_the_base_and_an_adapter_that_names_it(lora_run, tmp_path):
    """`push --generator <lora run>`: two repositories; the staged adapter on the staged base is the trained model."""
    from peft import PeftModel

    from gest_showcases.push import PushArguments, push

    staged = push(PushArguments(namespace="me", generator=str(lora_run["run"]), dry_run=str(tmp_path / "out")))
    assert [Path(folder).name for folder in staged] == ["generator-base", "generator"]
    base_folder, adapter_folder = map(Path, staged)
    config = json.loads((adapter_folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "me/gest-showcases-generator-base"
    assert not (adapter_folder / "base").exists() and not (adapter_folder / "model.safetensors").exists()
    card = (adapter_folder / "README.md").read_text()
    assert "library_name: peft" in card and "base_model: me/gest-showcases-generator-base" in card
    plan = json.loads((tmp_path / "out" / "push_plan.json").read_text())
    assert [repo["repo_id"] for repo in plan] == ["me/gest-showcases-generator-base", "me/gest-showcases-generator"]
    base = PC2LForConditionalGeneration.from_pretrained(base_folder)
    model = PeftModel.from_pretrained(base, adapter_folder).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**_inputs()).logits, lora_run["expected"], rtol=0, atol=0)


def test_push_refuses_an_adapter_that_links_out_of_the_run(lora_run, tmp_path):
    """Session 24's audit: `adapter_model.safetensors -> /etc/passwd` in a run folder was copied into the staged
    repository, to be published."""
    from gest_showcases.errors import InputError
    from gest_showcases.push import PushArguments, push

    run = tmp_path / "run"
    shutil.copytree(lora_run["run"], run, symlinks=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (run / "adapter_model.safetensors").unlink()
    (run / "adapter_model.safetensors").symlink_to(secret)
    with pytest.raises(InputError, match="leads outside the generator folder"):
        push(PushArguments(namespace="me", generator=str(run), dry_run=str(tmp_path / "out")))
    assert not any(path.read_bytes() == b"private" for path in (tmp_path / "out").rglob("*") if path.is_file())


def test_push_refuses_a_base_folder_that_links_out_of_the_run(lora_run, tmp_path):
    """Session 43's review: `base -> /elsewhere/other-model` passed the check of the files in `base` (each inside
    `base` once resolved), and another folder's model was staged as PREFIX-generator-base, to be published."""
    from gest_showcases.errors import InputError
    from gest_showcases.push import PushArguments, push

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    shutil.copytree(lora_run["run"], run, symlinks=True)
    shutil.move(run / "base", elsewhere)
    (run / "base").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InputError, match=f"^{run / 'base'} leads outside the generator folder"):
        push(PushArguments(namespace="me", generator=str(run), dry_run=str(tmp_path / "out")))
    weights = (elsewhere / "model.safetensors").read_bytes()
    assert not any(path.read_bytes() == weights for path in (tmp_path / "out").rglob("*") if path.is_file())


def _rename_base_weights(run: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(run / "base" / "model.safetensors")
    save_file({f"other.{index}": value for index, value in enumerate(weights.values())}, run / "base" / "model.safetensors")


def _damage_config(**changes):
    def damage(run: Path):
        config = json.loads((run / "adapter_config.json").read_text())
        (run / "adapter_config.json").write_text(json.dumps(config | changes))

    return damage


@pytest.mark.parametrize(
    ("damage", "refusal"),
    [
        (lambda run: (run / "adapter_config.json").write_text("[1]"), "not a LoRA adapter config"),
        (lambda run: (run / "adapter_config.json").write_text("{"), "not JSON"),
        (_damage_config(peft_type="NOPE"), r"peft_type 'NOPE'"),
        (_damage_config(r=10**9), r"r 1000000000 is not a LoRA rank in \[1, 1024\]"),  # was a 128 GB allocation
        (_damage_config(r=True), "is not a LoRA rank"),
        (_damage_config(rank_pattern={"c_attn": 10**9}), r"rank_pattern\['c_attn'\] 1000000000 is not a LoRA rank"),
        (_damage_config(target_modules="nothing_here"), "No modules were targeted"),
        (lambda run: (run / "adapter_model.safetensors").unlink(), "has no adapter weights"),
        (lambda run: (run / "base" / "config.json").write_text('{"model_type": "gpt2"}'), "holds a 'gpt2' model"),
        (
            lambda run: (run / "base" / "config.json").write_text('{"model_type": "pc2l", "encoder_layers": "x"}'),
            "encoder_layers",
        ),
        (_rename_base_weights, "its weights do not fit the model"),  # random weights, before load_whole
    ],
    ids=["list", "not-json", "peft-type", "huge-rank", "bool-rank", "huge-rank-pattern", "no-target", "no-weights",
         "gpt2-base", "bad-base", "base-weights-renamed"],  # fmt: skip
)
def test_a_damaged_lora_run_is_one_line_naming_the_generator(lora_run, tmp_path, damage, refusal):
    """Session 26's audit: each of these was a traceback (TypeError, KeyError, HFValidationError, peft's error) or an
    allocation of the adapter config's rank, when given to `showcase --generator` or the pipeline."""
    from gest_showcases.errors import InputError

    run = tmp_path / "run"
    shutil.copytree(lora_run["run"], run)
    damage(run)
    with pytest.raises(InputError, match=rf"^--generator {run}: .*{refusal}"):
        load_generator(run, "--generator")


@pytest.mark.parametrize("damage", ["nan", "missing"])
def test_an_adapter_with_a_nan_or_a_missing_weight_is_refused(lora_run, tmp_path, damage):
    """Session 43's review: peft loaded both without a word; the NaN adapter generated '#', the one without its
    lora_B weights was the base model itself."""
    from safetensors.torch import load_file, save_file

    from gest_showcases.numerics import NonFiniteError

    run = tmp_path / "run"
    shutil.copytree(lora_run["run"], run, symlinks=True)
    assert load_lora_pc2l(run) is not None  # as trained, it loads
    path = run / "adapter_model.safetensors"
    weights = load_file(path)
    first = sorted(weights)[0]
    if damage == "nan":
        weights[first] = torch.full_like(weights[first], float("nan"))
        expected, error = rf"^{path}: 1 of \d+ weight tensors hold NaN or inf", NonFiniteError
    else:
        del weights[first]
        expected, error = rf"^{path}: lacks 1 of the adapter's weights \({first}\); retrain the run", ValueError
    save_file(weights, path, metadata={"format": "pt"})
    with pytest.raises(error, match=expected):
        load_lora_pc2l(run)


def test_push_refuses_a_lora_run_whose_adapter_would_not_load(lora_run, tmp_path):
    """Session 43's review: push copied the adapter without loading it, so one with a NaN weight was staged."""
    from safetensors.torch import load_file, save_file

    from gest_showcases.errors import InputError
    from gest_showcases.push import PushArguments, push

    run = tmp_path / "run"
    shutil.copytree(lora_run["run"], run, symlinks=True)
    path = run / "adapter_model.safetensors"
    weights = load_file(path)
    first = sorted(weights)[0]
    weights[first] = torch.full_like(weights[first], float("nan"))
    save_file(weights, path, metadata={"format": "pt"})
    with pytest.raises(InputError, match=rf"^--generator {run}: {path}: 1 of \d+ weight tensors hold NaN or inf"):
        push(PushArguments(namespace="me", generator=str(run), dry_run=str(tmp_path / "out")))
    assert not (tmp_path / "out" / "generator" / "adapter_model.safetensors").exists()
