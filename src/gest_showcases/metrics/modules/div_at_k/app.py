"""Hub Space entry point: the standard evaluate widget for this module."""

import evaluate
from evaluate.utils import launch_gradio_widget

launch_gradio_widget(evaluate.load("div_at_k.py"))
