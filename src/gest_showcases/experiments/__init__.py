"""Experiments: the generated world and the paper's comparison grid over seeds, with intervals.

`world` (the world's sizes and the stand-in models' settings, shared by `gest-showcases demo` and
`gest-showcases experiment`), `grid` (the grid's cells), `summary` (statistics across seeds and the tables),
`oracle` (oracle features). The commands that run them are `gest_showcases.commands.demo` and
`gest_showcases.commands.experiment`.
"""
