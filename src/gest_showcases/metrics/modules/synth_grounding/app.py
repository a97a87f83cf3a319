"""Hub Space entry point: the standard evaluate widget for this module."""

import evaluate
from evaluate.utils import launch_gradio_widget

launch_gradio_widget(evaluate.load("synth_grounding.py"))
