"""The outputs of `gest-showcases demo --quick --output_dir demo-output`, made once per test session for the tests
that read them (imported by name, like tiny_assets: a fixture imported into two modules would run twice)."""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


@functools.cache
def quick_demo_output() -> Path:
    """The `demo-output` folder the quick demo wrote, run in a fresh process (the demo sets process-wide state:
    logging, the datasets cache) inside a temporary folder removed when the session ends."""
    root = Path(tempfile.mkdtemp(prefix="gest-showcases-demo-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    command = [sys.executable, "-m", "gest_showcases.cli", "demo", "--quick", "--output_dir", "demo-output"]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{' '.join(command[2:])} failed:\n{result.stderr[-4000:]}"
    (root / "stdout.txt").write_text(result.stdout)  # what the demo printed, beside (not inside) its outputs
    return root / "demo-output"


def quick_demo_stdout() -> str:
    """What that quick demo printed."""
    return (quick_demo_output().parent / "stdout.txt").read_text()
