"""The package's subcommands, one module each: argument dataclasses and an importable `main(argv, prog)`.

Every subcommand's `main` lives here, on top of the library layers, which never import this folder
(docs/architecture.md; `tests/test_architecture.py` checks it); `gest_showcases.cli` dispatches to them by name.
Their shared flag groups (`--output_dir`, `--dataset_config_name`, `--dataset`/`--images`) and `--config FILE.yaml`
are in `arguments`. The demo and the experiment chain other commands in-process, as a user would on the command line.
"""
