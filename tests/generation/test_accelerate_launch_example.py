"""Issue 15's used-by line `accelerate launch examples/train_pc2l.py --config examples/configs/pc2l.yaml ...`, typed as
the README shows it, in a fresh process: accelerate starts the example script, which trains on a built folder and a
feature folder on disk, and the run loads back with `AutoModel` after `import gest_showcases`."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from pc2l_fixtures import FEATURE_DIM, FakeFeatureTable, build_tokenizer, write_built_dataset
from transformers import GPT2Config, GPT2LMHeadModel

from gest_showcases.features.cache import FeatureCache

REPO = Path(__file__).resolve().parents[2]


def _write_features(root: Path) -> None:
    """The fixture's features as a real feature folder (what `gest-showcases features` writes)."""
    fake = FakeFeatureTable()
    ids = {
        "image": [f"p{i}{side}" for i in range(8) for side in "ab"],
        "review": [f"u{i}_h{j}" for i in range(8) for j in range(3)],
    }
    for kind, keys in ids.items():
        cache = FeatureCache(root, kind, fake.checkpoint, fake.fingerprint, normalized=False)
        cache.write(keys, fake.lookup(keys)[0])


@pytest.mark.slow
def test_accelerate_launch_of_the_example_script_trains_a_loadable_model(tmp_path):
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    special = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id}
    torch.manual_seed(0)
    GPT2LMHeadModel(
        GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=64, vocab_size=len(tokenizer), **special)
    ).save_pretrained(tmp_path / "gpt2")
    write_built_dataset(tmp_path / "dataset")
    _write_features(tmp_path / "features")

    # The README's command; the paper-sized encoder and schedule of the config are shrunk on the command line.
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "examples/train_pc2l.py", "--config", "examples/configs/pc2l.yaml",
        "--dataset", str(tmp_path / "dataset"), "--features", str(tmp_path / "features"),
        "--tokenizer", str(tmp_path / "tokenizer"), "--decoder", str(tmp_path / "gpt2"), "--image_kind", "image",
        "--encoder_layers", "1", "--encoder_attention_heads", "2", "--projection_dim", "8",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2", "--max_steps", "2",
        "--save_strategy", "no", "--eval_strategy", "no", "--output_dir", str(tmp_path / "run"),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]

    script = textwrap.dedent(
        f"""
        import gest_showcases
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / "run")!r})
        print(type(model).__name__, model.config.image_kind, model.config.image_feature_dim, model.config.lambda1)
        """
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.split() == ["PC2LForConditionalGeneration", "image", str(FEATURE_DIM), "0.2"]
