"""Experiments: the paper's comparison grid over seeds, with intervals (`gest-showcases experiment`)."""
