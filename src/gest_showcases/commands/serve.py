"""`gest-showcases serve`: personalized showcases in the browser (Gradio; `pip install gest-showcases[demo]`).

    gest-showcases serve --dataset DIR --images PHOTOS --selector runs/selector-img+text \\
        --generator runs/pc2l --clip_model openai/clip-vit-base-patch32 [--host 127.0.0.1] [--port 7860] \\
        [--auth USER:PASSWORD] [--output_dir DIR] [--dataset_config_name s1] [--config FILE.yaml]

The app is `gest_showcases.app`'s (its module says what the page shows, which files it shares and to whom).
The models load once, before the server starts; a dataset with a stored image path outside the dataset folder
and `--images`, a photo folder that would share more than photos, or a malformed `--auth` stops the command
first.
`--output_dir DIR` also writes every showcase the page shows into DIR, one self-contained HTML file per user
and business (`showcase.USER.BUSINESS.html`, as `gest-showcases showcase --output_dir` writes it); without it,
the command writes nothing.
Options come from the command line, a YAML file (`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

from gest_showcases.app import (
    DatasetCatalog,
    ServeArguments,
    ShowcaseApp,
    check_can_listen,
    exposure_warning,
    launch_options,
    parse_auth,
    url_host,
)

from .arguments import DatasetArguments, DatasetConfigArguments, OutputArguments, parse_args
from .showcase import PipelineArguments

logger = logging.getLogger(__name__)


@dataclass
class ServeOutputArguments(OutputArguments):
    """`--output_dir DIR`: where the app also writes the showcases it shows (nothing is written without it)."""

    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "also write every showcase the page shows there, as a self-contained HTML file "
            "(showcase.USER.BUSINESS.html); default: nothing is written"
        },
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    dataset, data, pipeline_args, serve, output = parse_args(
        (DatasetArguments, DatasetConfigArguments, PipelineArguments, ServeArguments, ServeOutputArguments),
        argv,
        prog,
        description=__doc__.split("\n")[0],
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Read when gradio is imported: no telemetry and no version check against the network.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio  # noqa: F401  (the optional `demo` extra)
    except ImportError as error:
        raise ImportError(
            "`gest-showcases serve` needs Gradio: pip install 'gest-showcases[demo]'"
        ) from error
    parse_auth(serve.auth)  # a malformed --auth stops the command before any model is loaded
    check_can_listen(serve.host, serve.port)
    catalog = DatasetCatalog(dataset.dataset, data.dataset_config_name, images=dataset.images)
    options = launch_options(serve, catalog)
    details = {
        "selector": pipeline_args.selector,
        "generator": pipeline_args.generator,
        "CLIP": pipeline_args.clip_model,
    }
    app = ShowcaseApp(
        pipeline_args.load_pipeline(),
        catalog,
        k=pipeline_args.k,
        output_dir=output.output_dir,
        report_details=details,
    )
    page = app.build()
    warning = exposure_warning(serve)
    if warning:
        logger.warning(warning)
    logger.info(
        "serving %s (config %s) on http://%s:%d; photos shared from %s",
        dataset.dataset, data.dataset_config_name, url_host(serve.host), serve.port, ", ".join(options["allowed_paths"]),
    )  # fmt: skip
    if app.output_dir is not None:
        logger.info("every showcase shown is also written into %s (one HTML file each)", app.output_dir)
    page.launch(**options)
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "serve"))
