"""The `train-pc2l` and `finetune-lm` scripts on a tiny built dataset folder and fake feature tables."""

import json

import pytest
import torch
import yaml
from pc2l_fixtures import FEATURE_DIM, FakeFeatureTable, build_tokenizer, write_built_dataset
from transformers import AutoModel, GPT2Config, GPT2LMHeadModel

import gest_showcases.features
from gest_showcases.commands import finetune_lm, train_pc2l
from gest_showcases.generation import training_run
from gest_showcases.generation.finetune_lm import pack_texts


@pytest.fixture
def assets(tmp_path, monkeypatch):
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    torch.manual_seed(0)
    special = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id}
    gpt2 = GPT2LMHeadModel(
        GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64, vocab_size=len(tokenizer), **special)
    )
    gpt2.save_pretrained(tmp_path / "gpt2")
    write_built_dataset(tmp_path / "dataset")
    monkeypatch.setattr(gest_showcases.features, "load_features", lambda root, kind: FakeFeatureTable())
    return tmp_path


def test_yaml_config_gives_defaults_that_the_command_line_overrides(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump({"lambda1": 0.5, "report_to": ["none"], "dataset": "d", "features": "f"})
    )
    model_args, data_args, training_args = train_pc2l.parse_pc2l_args(
        ["--config", str(config), "--lambda1", "0.7", "--tokenizer", "t", "--output_dir", str(tmp_path)]
    )
    assert model_args.lambda1 == 0.7
    assert data_args.dataset == "d" and training_args.report_to == []


@pytest.mark.slow
def test_train_pc2l_runs_end_to_end_and_saves_an_auto_model(assets):
    config = assets / "pc2l.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "encoder_layers": 1,
                "encoder_attention_heads": 2,
                "projection_dim": 8,
                "image_kind": "image",
                "max_steps": 2,
                "per_device_train_batch_size": 3,
                "per_device_eval_batch_size": 2,
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": ["none"],
                "use_cpu": True,
                "disable_tqdm": True,
            }
        )
    )
    argv = ["--config", str(config), "--dataset", str(assets / "dataset"), "--features", "unused",
            "--tokenizer", str(assets / "tokenizer"), "--decoder", str(assets / "gpt2"),
            "--output_dir", str(assets / "run")]  # fmt: skip
    assert train_pc2l.main(argv) == 0
    results = json.loads((assets / "run" / "all_results.json").read_text())
    assert {"eval_loss", "eval_loss_ce", "eval_loss_ccl", "eval_loss_pcl", "train_loss"} <= set(results)
    model = AutoModel.from_pretrained(assets / "run")
    assert model.config.image_feature_dim == FEATURE_DIM and model.config.encoder_layers == 1
    gpt2 = GPT2LMHeadModel.from_pretrained(assets / "gpt2")
    assert not torch.equal(
        model.decoder.transformer.h[0].attn.c_attn.weight, gpt2.transformer.h[0].attn.c_attn.weight
    )


@pytest.mark.slow
@pytest.mark.parametrize("validation", ["absent", "one example"])
def test_train_pc2l_trains_without_a_usable_validation_split(assets, validation):
    # The builder writes no empty split, so a small s2 can have train only, or a validation split too small for
    # in-batch contrastive losses: train, evaluate nothing.
    import datasets

    path = assets / "dataset" / "s2" / "validation-00000-of-00001.parquet"
    if validation == "absent":
        path.unlink()
        card = assets / "dataset" / "README.md"
        card.write_text(
            card.read_text().replace("  - split: validation\n    path: s2/validation-*.parquet\n", "")
        )
    else:
        datasets.Dataset.from_parquet(str(path)).select(range(1)).to_parquet(str(path))
    argv = ["--dataset", str(assets / "dataset"), "--features", "unused", "--tokenizer", str(assets / "tokenizer"),
            "--decoder", str(assets / "gpt2"), "--output_dir", str(assets / "run"), "--encoder_layers", "1",
            "--encoder_attention_heads", "2", "--projection_dim", "8", "--image_kind", "image", "--max_steps", "1",
            "--per_device_train_batch_size", "3", "--save_strategy", "no", "--report_to", "none", "--use_cpu",
            "--disable_tqdm", "True"]  # fmt: skip
    assert train_pc2l.main(argv) == 0
    results = json.loads((assets / "run" / "all_results.json").read_text())
    assert "train_loss" in results and not any(key.startswith("eval_") for key in results)


def test_pack_texts_closes_each_text_with_eos_and_drops_the_tail():
    assert pack_texts([[1, 2], [3], [4, 5, 6]], eos_token_id=0, block_size=4) == [[1, 2, 0, 3], [0, 4, 5, 6]]


@pytest.mark.slow
def test_finetune_lm_continues_pretraining_the_decoder(assets):
    argv = ["--dataset", str(assets / "dataset"), "--tokenizer", str(assets / "tokenizer"),
            "--decoder", str(assets / "gpt2"), "--block_size", "16", "--output_dir", str(assets / "ft"),
            "--max_steps", "2", "--per_device_train_batch_size", "4", "--report_to", "none",
            "--use_cpu", "True", "--save_strategy", "no", "--disable_tqdm", "True"]  # fmt: skip
    assert finetune_lm.main(argv) == 0
    before = GPT2LMHeadModel.from_pretrained(assets / "gpt2")
    after = GPT2LMHeadModel.from_pretrained(assets / "ft")
    assert not torch.equal(before.transformer.wte.weight, after.transformer.wte.weight)
    assert (assets / "ft" / "tokenizer.json").exists()


@pytest.mark.parametrize(
    ("name", "image_loss", "review_loss"),
    [("baseline", "none", "none"), ("img_cl_text_cl", "cl", "cl"), ("ccl_text_cl", "ccl", "cl"),
     ("img_cl_pcl", "cl", "pcl"), ("pc2l", "ccl", "pcl")],
)  # fmt: skip
def test_example_configs_are_the_table4_rows(tmp_path, name, image_loss, review_loss):
    from pathlib import Path

    from gest_showcases.generation import PC2LConfig

    path = Path(__file__).parents[2] / "examples" / "configs" / f"{name}.yaml"
    model_args, data_args, training_args = train_pc2l.parse_pc2l_args(
        ["--config", str(path), "--dataset", "d", "--features", "f", "--output_dir", str(tmp_path)]
    )
    config = PC2LConfig(**training_run.config_kwargs(model_args, data_args))
    assert (config.image_contrastive, config.review_contrastive) == (image_loss, review_loss)
    assert (config.lambda1, config.lambda2, config.contrastive_temperature) == (0.2, 0.2, 0.1)
    assert training_args.learning_rate == 1e-4 and training_args.per_device_train_batch_size == 32
    assert (data_args.max_length, data_args.max_images, data_args.max_reviews) == (64, 5, 10)


@pytest.mark.parametrize(("flag", "expected"), [([], "tanh"), (["--cross_attention_gate", "none"], "none")])
def test_the_cross_attention_gate_flag_reaches_the_config(tmp_path, flag, expected):
    from gest_showcases.generation import PC2LConfig

    model_args, data_args, _ = train_pc2l.parse_pc2l_args(
        ["--dataset", "d", "--features", "f", "--tokenizer", "t", "--output_dir", str(tmp_path), *flag]
    )
    assert PC2LConfig(**training_run.config_kwargs(model_args, data_args)).cross_attention_gate == expected


def test_an_unknown_cross_attention_gate_is_one_line_before_any_loading(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_pc2l.parse_pc2l_args(["--dataset", "d", "--features", "f", "--tokenizer", "t", "--output_dir",
                                    str(tmp_path), "--cross_attention_gate", "sigmoid"])  # fmt: skip
    assert exit_info.value.code == 2
    assert "invalid choice: 'sigmoid'" in capsys.readouterr().err


@pytest.mark.slow
def test_train_pc2l_with_lora_saves_an_adapter_that_reloads(assets, monkeypatch):
    from peft import PeftModel
    from safetensors.torch import load_file

    from gest_showcases.generation.lora import BASE_FOLDER, load_lora_pc2l

    argv = ["--dataset", str(assets / "dataset"), "--features", "unused", "--tokenizer", str(assets / "tokenizer"),
            "--decoder", str(assets / "gpt2"), "--output_dir", str(assets / "run"), "--encoder_layers", "1",
            "--encoder_attention_heads", "2", "--projection_dim", "8", "--image_kind", "image", "--max_steps", "2",
            "--per_device_train_batch_size", "3", "--save_strategy", "no", "--report_to", "none", "--use_cpu",
            "--disable_tqdm", "True", "--lora", "--lora_cross_attention", "True"]  # fmt: skip
    built = []
    build_model = train_pc2l.build_model
    monkeypatch.setattr(train_pc2l, "build_model", lambda *args: built.append(build_model(*args)) or built[-1])
    assert train_pc2l.main(argv) == 0
    run = assets / "run"
    assert {"adapter_config.json", "adapter_model.safetensors", BASE_FOLDER} <= {
        path.name for path in run.iterdir()
    }
    model = load_lora_pc2l(run)
    assert isinstance(model, PeftModel) and model.get_base_model().config.encoder_layers == 1
    # The decoder's pretrained weights came back from the GPT-2 checkpoint, the trained parts from the run.
    gpt2 = GPT2LMHeadModel.from_pretrained(assets / "gpt2")
    decoder = model.get_base_model().decoder
    torch.testing.assert_close(decoder.transformer.wte.weight, gpt2.transformer.wte.weight)
    adapter = load_file(str(run / "adapter_model.safetensors"))
    name = next(key for key in adapter if "crossattention.c_attn.lora_B" in key)
    reloaded = dict(model.named_parameters())[name.replace(".weight", ".default.weight")]
    torch.testing.assert_close(reloaded, adapter[name])
    assert adapter[name].abs().sum() > 0  # LoRA B starts at zero: training moved it
    # The rebuilt model computes what the trained one (trained in place by the script) computes.
    trained = built[0].eval()
    features = torch.randn(2, 2, FEATURE_DIM)
    mask = torch.ones(2, 2, dtype=torch.bool)
    inputs = {"image_features": features, "image_mask": mask, "review_features": features, "review_mask": mask,
              "input_ids": torch.tensor([[1, 2, 3], [4, 5, 6]]), "attention_mask": torch.ones(2, 3)}  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, trained(**inputs).logits)


def test_train_pc2l_refuses_lora_without_a_pretrained_decoder(assets):
    argv = ["--dataset", str(assets / "dataset"), "--features", "unused", "--tokenizer", str(assets / "tokenizer"),
            "--output_dir", str(assets / "run"), "--lora"]  # fmt: skip
    with pytest.raises(ValueError, match="pass --decoder"):
        train_pc2l.main(argv)
