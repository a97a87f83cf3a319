"""`import gest_showcases`: free, every public name at the top level, and the models known to transformers' Auto
classes without importing a subpackage (each checked from a fresh process)."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

import gest_showcases


def run_fresh(script: str, cwd) -> str:
    """stdout of `script` in a new interpreter (no module of this test process is loaded there)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_importing_the_package_loads_neither_torch_nor_transformers(tmp_path):
    loaded = json.loads(
        run_fresh(
            """
            import json, sys
            import gest_showcases
            print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "numpy"))))
            """,
            tmp_path,
        )
    )
    assert loaded == []


def test_every_public_name_is_exported_from_its_module():
    import importlib

    assert {"PC2LConfig", "PC2LForConditionalGeneration", "PC2LTrainer", "DPPSelectorConfig", "DPPImageSelector",
            "ExplanationClassifierConfig", "ExplanationClassifier", "ShowcasePipeline", "PC2LCollator",
            "collate_selection", "bleu", "clip_align", "precision_at_k", "DPPSelectorTrainer",
            "ExplanationClassifierTrainer"} <= set(gest_showcases.__all__)  # fmt: skip
    assert set(gest_showcases.__all__) <= set(dir(gest_showcases))
    for package in ("gest_showcases", "gest_showcases.generation", "gest_showcases.selection",
                    "gest_showcases.features", "gest_showcases.metrics", "gest_showcases.baselines"):  # fmt: skip
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) or callable(value):
                # The object itself, re-exported: defined where its module says.
                assert getattr(importlib.import_module(value.__module__), name) is value
    with pytest.raises(AttributeError, match="no attribute 'PC2LModel'"):
        gest_showcases.PC2LModel  # noqa: B018


def test_top_level_import_as_a_user_types_it():
    from gest_showcases import DPPImageSelector, PC2LConfig, PC2LForConditionalGeneration
    from gest_showcases.generation.modeling_pc2l import PC2LForConditionalGeneration as defined
    from gest_showcases.selection.modeling_dpp import DPPImageSelector as selector

    assert PC2LForConditionalGeneration is defined and DPPImageSelector is selector
    assert PC2LForConditionalGeneration.config_class is PC2LConfig


def _save_tiny_models(root) -> dict:
    from gest_showcases import (
        ConvImageTower,
        ConvImageTowerConfig,
        DPPImageSelector,
        DPPSelectorConfig,
        ExplanationClassifier,
        ExplanationClassifierConfig,
        PC2LConfig,
        PC2LForConditionalGeneration,
    )
    from gest_showcases.features.tiny import save_tiny_clip

    torch.manual_seed(0)
    decoder = {"n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 32, "vocab_size": 40}
    models = {
        "pc2l": PC2LForConditionalGeneration(
            PC2LConfig(
                decoder=decoder,
                encoder_layers=1,
                encoder_attention_heads=2,
                encoder_ffn_dim=32,
                image_feature_dim=4,
                review_feature_dim=4,
                projection_dim=8,
            )
        ),
        "dpp": DPPImageSelector(
            DPPSelectorConfig(
                text_dim=4, image_dim=4, user_hidden_sizes=[8], image_hidden_sizes=[8], embed_dim=4
            )
        ),
        "classifier": ExplanationClassifier(ExplanationClassifierConfig(text_dim=4, image_dim=4)),
    }
    # Table 2's baselines, with the vocabulary's last id as BOS/EOS.
    from gest_showcases import (
        PeplerConfig,
        PeplerForExplanation,
        PeterConfig,
        PeterForExplanation,
        R2GenConfig,
        R2GenForExplanation,
        Ref2SeqConfig,
        Ref2SeqForExplanation,
        ShowAndTellConfig,
        ShowAndTellForExplanation,
    )

    special = {"vocab_size": 40, "bos_token_id": 39, "eos_token_id": 39, "pad_token_id": 39}
    models |= {
        "st": ShowAndTellForExplanation(
            ShowAndTellConfig(image_feature_dim=4, embedding_size=8, hidden_size=8, **special)
        ),
        "r2gen": R2GenForExplanation(
            R2GenConfig(image_feature_dim=4, hidden_size=8, ffn_dim=8, num_layers=1, num_attention_heads=2,
                        memory_slots=1, memory_attention_heads=2, **special)  # fmt: skip
        ),
        "ref2seq": Ref2SeqForExplanation(Ref2SeqConfig(hidden_size=8, num_layers=1, **special)),
        "peter": PeterForExplanation(
            PeterConfig(num_users=3, num_items=3, hidden_size=8, intermediate_size=8, **special)
        ),
        "pepler": PeplerForExplanation(PeplerConfig(decoder=decoder, num_users=3, num_items=3)),
    }
    for name, model in models.items():
        model.save_pretrained(root / name)
    # The stand-in CLIP's CNN tower, alone and inside transformers' dual encoder (as `train-clip` saves it).
    models["conv tower"] = ConvImageTower(ConvImageTowerConfig(widths=[4, 8]))
    models["conv tower"].save_pretrained(root / "conv tower")
    save_tiny_clip(root / "cnn clip", image_tower="cnn")
    return {name: str(root / name) for name in [*models, "cnn clip"]}


# What a user types after `import gest_showcases`, with transformers imported in several orders: first by the
# user's own code ("plain"), from the middle of another model's import ("gpt2"), by peft, or before the package.
IMPORT_ORDERS = {
    "plain": "import gest_showcases\nfrom transformers import AutoConfig, AutoModel",
    "gpt2": "import gest_showcases\nfrom transformers import GPT2LMHeadModel\nfrom transformers import AutoConfig, AutoModel",
    "peft": "import gest_showcases\nimport peft\nfrom transformers import AutoConfig, AutoModel",
    "transformers first": "from transformers import AutoConfig, AutoModel\nimport gest_showcases",
}


@pytest.mark.slow
@pytest.mark.parametrize("order", list(IMPORT_ORDERS))
def test_auto_classes_know_the_models_after_importing_the_package(tmp_path, order):
    saved = _save_tiny_models(tmp_path)
    script = IMPORT_ORDERS[order] + textwrap.dedent(
        f"""
        import json, sys, warnings
        warnings.simplefilter("error", RuntimeWarning)  # a failed registration warns
        config = AutoConfig.for_model("pc2l", decoder={{"n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 40}},
                                      encoder_attention_heads=2, image_feature_dim=4, review_feature_dim=4)
        models = {{"new pc2l": AutoModel.from_config(config)}}
        models |= {{name: AutoModel.from_pretrained(path) for name, path in {saved!r}.items()}}
        print(json.dumps({{name: f"{{type(m).__module__}}.{{type(m).__name__}}" for name, m in models.items()}}))
        """
    )
    classes = json.loads(run_fresh(script, tmp_path).strip().splitlines()[-1])
    # The package's own classes (not `transformers_modules` copies of the saved code, which need trust_remote_code).
    assert classes == {
        "new pc2l": "gest_showcases.generation.modeling_pc2l.PC2LForConditionalGeneration",
        "pc2l": "gest_showcases.generation.modeling_pc2l.PC2LForConditionalGeneration",
        "dpp": "gest_showcases.selection.modeling_dpp.DPPImageSelector",
        "classifier": "gest_showcases.features.modeling_explanation.ExplanationClassifier",
        "st": "gest_showcases.baselines.modeling_show_and_tell.ShowAndTellForExplanation",
        "r2gen": "gest_showcases.baselines.modeling_r2gen.R2GenForExplanation",
        "ref2seq": "gest_showcases.baselines.modeling_ref2seq.Ref2SeqForExplanation",
        "peter": "gest_showcases.baselines.modeling_peter.PeterForExplanation",
        "pepler": "gest_showcases.baselines.modeling_pepler.PeplerForExplanation",
        "conv tower": "gest_showcases.features.modeling_conv_tower.ConvImageTower",
        "cnn clip": "transformers.models.vision_text_dual_encoder.modeling_vision_text_dual_encoder."
        "VisionTextDualEncoderModel",
    }
