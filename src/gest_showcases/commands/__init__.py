"""The package's subcommands, one module each: argument dataclasses and an importable `main(argv, prog)`.

This folder is where every subcommand's `main` will live (issue 14), on top of the library layers, which never
import it; `gest_showcases.cli` dispatches to them by name. So far: `train_generator` (issue 16), `build`,
`stats`, `features`, `diversity`, `train_clip`, `distill`, `synth`, `train_selector`, `finetune_lm`,
`evaluate`; their shared flag groups and `--config FILE.yaml` are in `arguments`.
"""
