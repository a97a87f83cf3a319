"""`gest-showcases features` in-process, and on two CPU processes under torchrun (accelerate splits and gathers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from gest_showcases.commands.features import main
from gest_showcases.features.cache import load_features


def _tables(folder):
    return {kind: load_features(folder, kind) for kind in ("image", "review", "sentence", "vision")}


def test_features_command_writes_every_kind(tmp_path, built_dataset, image_dir, tiny_clip, capsys):
    out = tmp_path / "f"
    assert main(["--dataset", str(built_dataset), "--images", str(image_dir), "--output_dir", str(out), "--clip_model", tiny_clip, "--num_workers", "0",
                 "--batch_size", "3", "--shard_size", "3"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["image"]["written"] == 8 and summary["vision"]["written"] == 8
    tables = _tables(out)
    assert len(tables["review"]) == 5  # every review is someone's target; histories are reviews too
    assert "u1_b1#2" in tables["sentence"] and "u1_b1#3" not in tables["sentence"]
    assert tables["image"].embeddings.shape[1] == 16 and tables["vision"].embeddings.shape[1] == 32


@pytest.mark.slow
def test_two_cpu_processes_match_one(tmp_path, built_dataset, image_dir, tiny_clip):
    single, double = tmp_path / "one", tmp_path / "two"
    args = ["--dataset", str(built_dataset), "--images", str(image_dir), "--clip_model", tiny_clip, "--num_workers", "0", "--batch_size", "2",
            "--shard_size", "2"]  # fmt: skip
    assert main([*args, "--output_dir", str(single)]) == 0
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(
            f"""
            import json, sys
            import torch
            torch.set_num_threads(1)
            from accelerate import PartialState
            from gest_showcases import cli
            from gest_showcases.commands import features
            run = features.run

            def recording_run(*parsed):  # the command's own run, recording what each rank returned
                summary = run(*parsed)
                state = PartialState()
                with open(f"{tmp_path}/rank{{state.process_index}}.json", "w") as handle:
                    json.dump({{"num_processes": state.num_processes, "summary": summary}}, handle)
                return summary

            features.run = recording_run
            # Through the CLI entry point, so the launch also checks how the command closes the gloo group.
            sys.exit(cli.main(["features", *sys.argv[1:]]))
            """
        )
    )
    # TMPDIR: torch.distributed.run leaves its `torchelastic_*` folder behind; in tmp_path it goes with the test.
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(driver), *args, "--output_dir", str(double)]  # fmt: skip
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    assert [r["num_processes"] for r in ranks] == [2, 2]
    assert ranks[0]["summary"]["image"]["written"] == 8  # the main process gathered both halves
    one, two = _tables(single), _tables(double)
    for kind in one:
        assert sorted(one[kind].ids) == sorted(two[kind].ids)
        got, found = two[kind].lookup(one[kind].ids)
        assert found.all()
        torch.testing.assert_close(got, one[kind].embeddings, atol=1e-5, rtol=1e-4)
