"""`python -m gest_showcases.setup_assets`: the spelling of older releases of `gest-showcases setup-assets`.

It runs that command, with a `FutureWarning`, for one release. The functions that lived here are in
`gest_showcases.metrics.assets`.
"""

from __future__ import annotations

import sys
import warnings

from gest_showcases.cli import main as cli_main

if __name__ == "__main__":
    warnings.warn(
        "`python -m gest_showcases.setup_assets` is deprecated and will be removed in the next release; "
        "use `gest-showcases setup-assets`",
        FutureWarning,
        stacklevel=1,
    )
    sys.exit(cli_main(["setup-assets", *sys.argv[1:]]))
