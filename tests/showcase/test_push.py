"""`gest-showcases push`, up to the network boundary: offline mode refuses clearly; the dry run stages complete repos."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from huggingface_hub.errors import OfflineModeIsEnabled

from gest_showcases.cli import main as cli_main
from gest_showcases.errors import InputError
from gest_showcases.features.inputs import read_config_rows
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.metrics import module_path
from gest_showcases.push import PushArguments, push
from gest_showcases.selection import DPPImageSelector


def test_offline_mode_fails_with_a_clear_message(checkpoints, capsys):
    with pytest.raises(OfflineModeIsEnabled, match="HF_HUB_OFFLINE is set"):
        push(PushArguments(namespace="me", selector=checkpoints["selector"]))
    assert cli_main(["push", "--namespace", "me", "--selector", checkpoints["selector"]]) == 1
    assert "Hub offline mode" in capsys.readouterr().err


@pytest.fixture
def staged(checkpoints, built_dataset, tmp_path):
    table3 = tmp_path / "table3.md"
    table3.write_text("| Method | P@3 |\n|---|---:|\n| img+text | 21.40 |\n")
    out = tmp_path / "export"
    argv = ["push", "--namespace", "me", "--selector", checkpoints["selector"], "--generator",
            checkpoints["generator"], "--dataset", str(built_dataset), "--dataset_images", str(tmp_path / "images"),
            "--evaluate_modules", "distinct", "div_at_k",
            "--selector_results", str(table3), "--base_model", "gpt2", "--output_dir", str(out), "--dry_run"]  # fmt: skip
    assert cli_main(argv) == 0
    return out


def test_dry_run_writes_complete_repositories(staged, checkpoints, built_dataset):
    plan = {entry["repo_id"]: entry for entry in json.loads((staged / "push_plan.json").read_text())}
    assert {repo: entry["repo_type"] for repo, entry in plan.items()} == {
        "me/gest-showcases-selector": "model",
        "me/gest-showcases-generator": "model",
        "me/gest": "dataset",
        "me/distinct": "space",
        "me/div_at_k": "space",
    }
    selector_files = set(plan["me/gest-showcases-selector"]["files"])
    assert {"config.json", "model.safetensors", "configuration_dpp.py", "modeling_dpp.py", "greedy.py",
            "README.md"} <= selector_files  # fmt: skip
    generator_files = set(plan["me/gest-showcases-generator"]["files"])
    assert {"config.json", "model.safetensors", "configuration_pc2l.py", "modeling_pc2l.py", "generation_config.json",
            "tokenizer.json", "tokenizer_config.json", "README.md"} <= generator_files  # fmt: skip
    for folder, files in (("selector", selector_files), ("generator", generator_files)):
        assert sorted(p.name for p in (staged / folder).iterdir()) == sorted(
            files
        )  # the plan lists every file
        auto_map = json.loads((staged / folder / "config.json").read_text())["auto_map"]
        assert all(f"{target.split('.')[0]}.py" in files for target in auto_map.values())

    # Same weights as the trained checkpoints.
    for cls, name in ((DPPImageSelector, "selector"), (PC2LForConditionalGeneration, "generator")):
        original, exported = cls.from_pretrained(checkpoints[name]), cls.from_pretrained(staged / name)
        for key, value in original.state_dict().items():
            torch.testing.assert_close(exported.state_dict()[key], value)

    cards = {name: ModelCard.load(staged / name / "README.md") for name in ("selector", "generator")}
    assert "| img+text | 21.40 |" in cards["selector"].text
    assert cards["generator"].data.base_model == "gpt2"
    assert cards["selector"].data.datasets == ["me/gest"]

    # The dataset: every file of the folder plus the photos it names (the built one's lie outside it), the same
    # rows with paths into images/ and the photos' bytes as `images`, a card whose configs still load.
    data_files = set(plan["me/gest"]["files"])
    built_files = {str(p.relative_to(built_dataset)) for p in built_dataset.rglob("*") if p.is_file()}
    assert data_files == built_files | {f"images/pic{i}.jpg" for i in range(8)}
    for i in range(8):
        assert (staged / "dataset" / "images" / f"pic{i}.jpg").samefile(built_dataset.parent / "images" / f"pic{i}.jpg")
    paths = ["pic_paths", "candidate_paths", "images"]
    built_rows, staged_rows = read_config_rows(built_dataset, "s1"), read_config_rows(staged / "dataset", "s1")
    assert [{k: v for k, v in row.items() if k not in paths} for row in staged_rows] == [
        {k: v for k, v in row.items() if k not in paths} for row in built_rows
    ]
    # The package's reader leaves the photo bytes out unless asked for them.
    assert all("images" not in row for row in staged_rows)
    photos = read_config_rows(staged / "dataset", "s1", columns=["images"])
    for row, photo_row in zip(staged_rows, photos, strict=True):
        assert row["candidate_paths"] == [f"images/{p}.jpg" for p in row["candidate_pics"]]
        assert [image["bytes"] for image in photo_row["images"]] == [
            (built_dataset.parent / "images" / f"{p}.jpg").read_bytes() for p in row["pics"]
        ]
    assert "## Statistics" in (staged / "dataset" / "README.md").read_text()

    # evaluate modules: the module folders as shipped.
    for name in ("distinct", "div_at_k"):
        shipped = {p.name for p in Path(module_path(name)).iterdir()}
        assert set(plan[f"me/{name}"]["files"]) == shipped - {"__pycache__"}


@pytest.mark.slow
def test_exported_models_load_with_trust_remote_code_without_the_package(staged, tmp_path):
    """A fresh process in which `gest_showcases` cannot be imported loads both repos through AutoModel."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["gest_showcases"] = None  # any import of the package now fails
        import torch
        from transformers import AutoModel, AutoTokenizer
        selector = AutoModel.from_pretrained("{staged / "selector"}", trust_remote_code=True)
        features = torch.nn.functional.normalize(torch.randn(1, 5, 16), dim=-1)
        picks = selector.select(torch.zeros(1, 16), torch.zeros(1, 16), features, k=2)
        generator = AutoModel.from_pretrained("{staged / "generator"}", trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained("{staged / "generator"}", trust_remote_code=True)
        ids = generator.generate(image_features=torch.randn(1, 2, 32), image_mask=torch.ones(1, 2, dtype=torch.bool),
                                 review_features=torch.randn(1, 1, 16), review_mask=torch.ones(1, 1, dtype=torch.bool),
                                 max_new_tokens=3, num_beams=1)
        print(type(selector).__module__, int(picks.counts[0]), type(generator).__module__, ids.shape[1])
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    selector_module, count, generator_module, length = result.stdout.split()
    assert selector_module.startswith("transformers_modules.") and generator_module.startswith(
        "transformers_modules."
    )
    assert count == "2" and int(length) == 4  # BOS + 3 new tokens


def test_dry_run_refuses_a_used_folder_and_nothing_to_push(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "old").write_text("")
    with pytest.raises(InputError, match="is not empty"):
        push(PushArguments(namespace="me", evaluate_modules=["distinct"], dry_run=str(tmp_path / "x")))
    with pytest.raises(InputError, match="nothing to push"):
        push(PushArguments(namespace="me", dry_run=str(tmp_path / "y")))
    with pytest.raises(InputError, match=r"--evaluate_modules: unknown \['bleu'\]"):
        push(PushArguments(namespace="me", evaluate_modules=["bleu"], dry_run=str(tmp_path / "z")))
    assert not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def test_a_stop_while_staging_leaves_the_folder_empty_for_the_rerun(checkpoints, tmp_path, monkeypatch):
    """Session 28's resume audit: `push --output_dir DIR` stopped after staging the selector left it in DIR, and the
    rerun refused DIR as not empty."""
    import gest_showcases.push as push_module

    out = tmp_path / "export"
    args = {"namespace": "me", "selector": checkpoints["selector"], "evaluate_modules": ["distinct"]}

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(push_module, "stage_evaluate_module", stopped)  # staged after the selector
    with pytest.raises(KeyboardInterrupt):
        push(PushArguments(**args, output_dir=str(out), dry_run=str(out)))
    assert out.is_dir() and not any(out.iterdir())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export"]  # nor a staging folder beside it
    monkeypatch.undo()
    folders = push(PushArguments(**args, output_dir=str(out), dry_run=str(out)))
    assert folders == [str(out / "selector"), str(out / "evaluate" / "distinct")]
    assert (out / "selector" / "config.json").is_file() and (out / "push_plan.json").is_file()
    with pytest.raises(InputError, match="is the current folder or holds it"):
        monkeypatch.chdir(out / "selector")
        push(PushArguments(**args, output_dir=str(out), dry_run=str(out)))
    # A mount point cannot be renamed (the review's reproduction: EBUSY on tmpfs): staged in place, as before.
    monkeypatch.chdir(tmp_path)
    mount = tmp_path / "mount"
    mount.mkdir()
    linked_mount = tmp_path / "linked-mount"
    linked_mount.mkdir()
    (tmp_path / "link").symlink_to(linked_mount)
    mounts = {mount.resolve(), linked_mount.resolve()}
    # As the real one: a link is not a mount point, whatever it names.
    monkeypatch.setattr(Path, "is_mount", lambda path: not path.is_symlink() and path.resolve() in mounts)
    monkeypatch.setattr(os, "rename", lambda *names: pytest.fail(f"renamed {names}"))
    folders = push(PushArguments(**args, output_dir=str(mount), dry_run=str(mount)))
    assert folders == [str(mount / "selector"), str(mount / "evaluate" / "distinct")]
    # A link to a mount point (the second review's case): `saving_into` would rename the mount point it names.
    push(PushArguments(**args, output_dir=str(tmp_path / "link"), dry_run=str(tmp_path / "link")))
    assert (linked_mount / "selector" / "config.json").is_file()


@pytest.mark.parametrize(
    ("names", "option"),
    [({"namespace": "bad name!"}, "--namespace/--prefix"), ({"prefix": "-x"}, "--namespace/--prefix"),
     ({"prefix": "a" * 90}, "--namespace/--prefix"), ({"dataset_name": "x/y", "dataset": "d"}, "--namespace/--dataset_name")],
)  # fmt: skip
def test_names_the_hub_would_refuse_are_refused_before_staging(names, option):
    with pytest.raises(InputError, match=f"^{option}: .* is no Hub repository id"):
        PushArguments(**{"namespace": "me", **names})


def test_an_unreachable_hub_is_one_line_and_keeps_staged_files(checkpoints, tmp_path, monkeypatch, capsys):
    from gest_showcases.push import _hub_http_error

    class UnreachableHub:
        def create_repo(self, *args, **kwargs):
            raise _hub_http_error()("[Errno -2] Name or service not known")

    monkeypatch.setattr("gest_showcases.push.HfApi", UnreachableHub)
    monkeypatch.setattr("gest_showcases.push.is_offline_mode", lambda: False)
    staged = tmp_path / "staged"
    argv = ["push", "--namespace", "me", "--selector", checkpoints["selector"], "--output_dir", str(staged)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gest-showcases push: error: pushing me/gest-showcases-selector: HTTPError: [Errno")
    assert err.endswith(f"0 of 1 repositories pushed; the staged files are in {staged}")
    assert (staged / "selector" / "config.json").is_file()
