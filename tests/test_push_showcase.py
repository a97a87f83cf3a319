"""`gest-showcases push --showcase <saved pipeline> --dry_run`: the whole `ShowcasePipeline.save_pretrained` folder
staged as one model repo with its card and no path of this machine, which loads offline, in a fresh process, with
`ShowcasePipeline.from_pretrained` and `pipeline("personalized-showcase")`. Oracle: the pipeline that was saved."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from gest_showcases.cards import showcase_card
from gest_showcases.cli import main as cli_main
from gest_showcases.errors import InputError
from gest_showcases.pipeline import ShowcasePipeline
from gest_showcases.selection.training import write_selection_table
from tiny_assets import few_threads, save_tiny_checkpoints, write_jpegs  # noqa: F401  (few_threads: autouse)

HISTORY = ["Great ramen! The broth was rich.", "Tiny place.\nGood dumplings"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return save_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def original(checkpoints):
    pipeline = ShowcasePipeline.from_pretrained(
        **checkpoints, device="cpu", max_new_tokens=4, k=2, num_beams=1
    )
    # What a trained generator records and `save_pretrained` writes: folders of the machine it was trained on.
    pipeline.generator.config.decoder._name_or_path = str(Path(checkpoints["generator"]).parent / "gpt2")
    pipeline.generator.config.review_feature_model = checkpoints["clip"]
    return pipeline


@pytest.fixture(scope="module")
def saved(original, tmp_path_factory):
    return original.save_pretrained(tmp_path_factory.mktemp("pipeline") / "my-showcase")


@pytest.fixture(scope="module")
def staged(saved, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "out"
    assert cli_main(["push", "--namespace", "me", "--showcase", str(saved), "--output_dir", str(out), "--dry_run"]) == 0
    return out


def files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def test_the_saved_pipeline_is_staged_whole_as_one_model_repo(saved, staged, checkpoints):
    plan = json.loads((staged / "push_plan.json").read_text())
    assert [(entry["repo_id"], entry["repo_type"], entry["folder"]) for entry in plan] == [
        ("me/gest-showcases-showcase", "model", "showcase")
    ]
    folder = staged / "showcase"
    assert set(plan[0]["files"]) == files(folder) == files(saved) | {"README.md"}
    assert {"showcase_config.json", "model.safetensors", "selector/model.safetensors", "clip/model.safetensors",
            "clip/tokenizer.json", "configuration_pc2l.py", "selector/modeling_dpp.py"} <= files(folder)  # fmt: skip
    # The session's temporary root: every folder of this run.
    local = str(Path(checkpoints["clip"]).parents[1])
    for name in files(saved):
        source, published = (saved / name).read_bytes(), (folder / name).read_bytes()
        if name.endswith(".json"):  # the same settings, every path of this machine emptied
            expected = emptied(json.loads(source), local)
            if name.endswith("tokenizer_config.json"):  # how this machine loaded it, not the repo's (session 28)
                expected = {key: value for key, value in expected.items() if key not in ("local_files_only", "is_local")}
                assert "local_files_only" not in json.loads(published)
            assert json.loads(published) == expected
        else:
            assert published == source
    # There were some, and the source keeps them.
    assert local.encode() in (saved / "config.json").read_bytes()
    assert local not in (folder / "README.md").read_text()


def emptied(value, prefix: str):
    """`value` (parsed JSON) with every string that starts with `prefix` emptied."""
    if isinstance(value, dict):
        return {key: emptied(item, prefix) for key, item in value.items()}
    if isinstance(value, list):
        return [emptied(item, prefix) for item in value]
    return "" if isinstance(value, str) and value.startswith(prefix) else value


def test_the_staged_card_says_what_the_pipeline_is(staged):
    card = ModelCard.load(staged / "showcase" / "README.md")
    data = card.data
    assert (data.pipeline_tag, data.library_name, data.license) == (
        "image-text-to-text",
        "transformers",
        "apache-2.0",
    )
    # The task is a tag; a local decoder is no base model.
    assert "personalized-showcase" in data.tags and data.base_model is None
    assert data.eval_results is None and "so this card has no `model-index`" in card.text
    assert 'ShowcasePipeline.from_pretrained("me/gest-showcases-showcase")' in card.text
    assert 'pipeline("personalized-showcase", model="me/gest-showcases-showcase")' in card.text
    assert (
        "| k | 2 |" in card.text
        and "| num_beams | 1 |" in card.text
        and "| max_new_tokens | 4 |" in card.text
    )


def test_the_showcase_card_model_index_comes_from_results_files_in_the_folder(saved, tmp_path):
    folder = tmp_path / "with-results"
    shutil.copytree(saved, folder)
    (folder / "all_results.json").write_text(json.dumps({"eval_loss_ce": 3.21, "train_loss": 4.0}))
    table3 = {"img+text": {"precision@3": 0.25, "recall@3": 0.5, "f1@3": 0.3333, "div@3": 0.2}}
    write_selection_table(table3, 3, folder / "selector", {"train": 10, "test": 4})
    card = showcase_card(folder, "me/showcase", dataset="me/data")
    assert {entry.metric_name: entry.metric_value for entry in card.data.eval_results} == {
        "Validation cross-entropy (L_CE, nats per token)": 3.21,
        "Prec@3 (%)": 25.0, "Recall@3 (%)": 50.0, "F1@3 (%)": 33.33, "Div@3 (%)": 20.0,
    }  # fmt: skip
    assert {entry.task_type for entry in card.data.eval_results} == {"image-text-to-text"}
    assert card.data.datasets == ["me/data"]


def test_a_folder_that_is_no_saved_pipeline_is_refused(checkpoints, tmp_path, capsys):
    argv = [
        "push",
        "--namespace",
        "me",
        "--showcase",
        checkpoints["generator"],
        "--output_dir",
        str(tmp_path / "out"),
        "--dry_run",
    ]
    assert cli_main(argv) == 2
    assert "holds no showcase_config.json: not a folder saved by ShowcasePipeline.save_pretrained" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_the_staged_folder_loads_offline_in_a_fresh_process(original, staged, tmp_path):
    photos = write_jpegs(tmp_path / "images", [f"pic{i}" for i in range(6)], size=(36, 48))
    requests = [
        {"candidates": [str(photos[f"pic{i}"]) for i in range(6)], "history_texts": HISTORY},
        {"candidates": [str(photos[f"pic{i}"]) for i in (1, 3, 5)], "history_images": [str(photos["pic0"])]},
    ]
    script = f"""
        import json
        import gest_showcases
        from gest_showcases import ShowcasePipeline
        from transformers import pipeline
        requests = {requests!r}
        loaded = ShowcasePipeline.from_pretrained({str(staged / "showcase")!r}, device="cpu")
        pipe = pipeline("personalized-showcase", model={str(staged / "showcase")!r}, device="cpu")
        print(json.dumps({{"class": type(pipe).__name__, "loaded": [r.to_dict() for r in loaded(requests)],
                          "pipe": [r.to_dict() for r in pipe(requests)]}}))
        """
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["class"] == "ShowcaseTransformersPipeline"
    expected = [showcase.to_dict() for showcase in original(requests)]
    for got in (out["loaded"], out["pipe"]):
        for result_, oracle in zip(got, expected, strict=True):
            assert [p["id"] for p in result_["photos"]] == [p["id"] for p in oracle["photos"]]
            assert result_["explanation"] == oracle["explanation"]
            torch.testing.assert_close(
                torch.tensor([p["score"] for p in result_["photos"]]),
                torch.tensor([p["score"] for p in oracle["photos"]]),
            )


@pytest.mark.parametrize("link", ["notes.txt", "linked-folder"])
def test_a_symlink_out_of_the_showcase_folder_is_refused_before_staging(saved, tmp_path, capsys, link):
    folder, secret = tmp_path / "with-link", tmp_path / "secret"
    shutil.copytree(saved, folder)
    secret.mkdir()
    (secret / "key.txt").write_text("private")
    (folder / link).symlink_to(secret / "key.txt" if link.endswith(".txt") else secret)
    out = tmp_path / "out"
    assert cli_main(["push", "--namespace", "me", "--showcase", str(folder), "--output_dir", str(out), "--dry_run"]) == 2
    assert f"{link} leads outside the showcase folder" in capsys.readouterr().err
    assert not any(path.name == "key.txt" for path in tmp_path.rglob("*") if out in path.parents)


@pytest.mark.parametrize("broken", ["showcase_config.json", "notes.json"])
def test_a_json_file_that_is_not_json_is_one_line_naming_it(saved, tmp_path, capsys, broken):
    """Session 43's review: "not valid JSON (...); fix the file" named no file, for the pipeline's own config and for
    any other JSON file of a showcase folder that push cleans of local paths."""
    folder = tmp_path / "broken"
    shutil.copytree(saved, folder)
    (folder / broken).write_text('{"format": ')
    out = tmp_path / "out"
    assert cli_main(["push", "--namespace", "me", "--showcase", str(folder), "--output_dir", str(out), "--dry_run"]) == 2
    err = capsys.readouterr().err
    assert f"{folder / broken}: not valid JSON" in err and "Traceback" not in err
    if broken == "showcase_config.json":
        with pytest.raises(InputError, match=f"^{folder / broken}: not valid JSON"):
            ShowcasePipeline.from_pretrained(folder)


def test_a_showcase_whose_part_would_not_load_is_refused_before_staging(saved, tmp_path, capsys):
    """Session 43's review: `push --showcase` copied the folder without loading its parts, so a selector with a NaN
    weight (which --selector refuses) was staged to be published."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "nan-selector"
    shutil.copytree(saved, folder)
    weights = load_file(folder / "selector" / "model.safetensors")
    first = sorted(weights)[0]
    weights[first] = torch.full_like(weights[first], float("nan"))
    save_file(weights, folder / "selector" / "model.safetensors", metadata={"format": "pt"})
    out = tmp_path / "out"
    assert cli_main(["push", "--namespace", "me", "--showcase", str(folder), "--output_dir", str(out), "--dry_run"]) == 2
    err = capsys.readouterr().err
    assert "hold NaN or inf" in err and "Traceback" not in err
    assert not out.exists() or not any(path.is_file() for path in out.rglob("*"))


def test_a_pipeline_that_leaves_decoding_to_its_generator_has_a_card_that_says_what_it_is(checkpoints, tmp_path):
    """The pipeline decodes as the generator's generation_config unless told (session 24); the card names those
    values, not `None`."""
    from gest_showcases.cards import showcase_card

    pipeline = ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", k=2)
    folder = pipeline.save_pretrained(tmp_path / "default-decoding")
    decoding = pipeline.generator.generation_config
    text = showcase_card(folder, "me/x").text
    assert f"| num_beams | {decoding.num_beams} |" in text and f"| max_new_tokens | {decoding.max_new_tokens} |" in text
    assert "| num_beams | None |" not in text


def test_a_chat_template_linked_from_elsewhere_is_neither_published_nor_saved(checkpoints, tmp_path, capsys):
    """Session 26's audit: `chat_template.jinja -> /etc/passwd` in a generator folder was published by `push
    --generator` (the tokenizer copies its template verbatim), and `ShowcasePipeline.save_pretrained` wrote it as a
    plain file that `push --showcase` then published."""
    secret = tmp_path / "secret.txt"
    secret.write_text("private key")
    generator = tmp_path / "generator"
    shutil.copytree(checkpoints["generator"], generator)
    (generator / "chat_template.jinja").symlink_to(secret)
    out = tmp_path / "out"
    assert cli_main(["push", "--namespace", "me", "--generator", str(generator), "--output_dir", str(out), "--dry_run"]) == 2
    assert "chat_template.jinja leads outside the generator folder" in capsys.readouterr().err
    # Loaded for showcases (the user's own call), the pipeline saves no template: PC2L never applies one.
    pipeline = ShowcasePipeline.from_pretrained(**(checkpoints | {"generator": str(generator)}), device="cpu")
    assert pipeline.tokenizer.chat_template == "private key"
    saved = pipeline.save_pretrained(tmp_path / "saved")
    assert pipeline.tokenizer.chat_template == "private key"  # the pipeline's own tokenizer is left as it was
    assert not any(b"private key" in path.read_bytes() for path in saved.rglob("*") if path.is_file())


def test_a_hub_download_whose_files_link_into_its_blobs_is_staged(checkpoints, tmp_path):
    """A `snapshot_download` folder's files are links into its repository's `blobs/`: its own files, not a leak, also
    in a subfolder of the snapshot (a downloaded showcase's generator); a link from a run's subfolder that push does
    not read (a checkpoint) does not stop it."""
    repo = tmp_path / "hub" / "models--me--showcase"
    snapshot, blobs = repo / "snapshots" / "abc123" / "generator", repo / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for index, path in enumerate(sorted(Path(checkpoints["generator"]).iterdir())):
        if path.is_file():
            blob = blobs / f"blob{index}"
            shutil.copy2(path, blob)
            (snapshot / path.name).symlink_to(Path("../../../blobs") / blob.name)
    (snapshot / "checkpoint-5").mkdir()
    (snapshot / "checkpoint-5" / "notes.txt").symlink_to(tmp_path)
    out = tmp_path / "out"
    assert cli_main(["push", "--namespace", "me", "--generator", str(snapshot), "--output_dir", str(out), "--dry_run"]) == 0
    assert (out / "generator" / "model.safetensors").is_file()
    # The same layout outside a Hub cache (no models--ORG--NAME) is refused: its links lead out of the folder.
    shutil.copytree(repo, tmp_path / "mine", symlinks=True)
    elsewhere = tmp_path / "mine" / "snapshots" / "abc123" / "generator"
    assert cli_main(["push", "--namespace", "me", "--generator", str(elsewhere), "--output_dir", str(tmp_path / "out2"), "--dry_run"]) == 2
