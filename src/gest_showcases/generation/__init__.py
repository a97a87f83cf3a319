"""Step 2 of the paper: the PC2L explanation generator (Sections 4.2-4.3).

`PC2LConfig` / `PC2LForConditionalGeneration` (model, `modeling_pc2l.py`), the contrastive losses as pure
functions (`losses.py`), entity-swapped hard negatives (`negatives.py`), the dataset and collator
(`collator.py`), `PC2LTrainer` (`trainer.py`) and optional LoRA (`lora.py`). Importing this package registers
the model with `AutoConfig` / `AutoModel`, and marks it for `register_for_auto_class` so `save_pretrained`
ships the code for `trust_remote_code=True`. The trainer, negatives and LoRA modules are not imported here:
they pull in heavier dependencies (spaCy, peft) and are imported where used.
"""

from transformers import AutoConfig, AutoModel

from .configuration_pc2l import PC2LConfig
from .modeling_pc2l import PC2LForConditionalGeneration, PC2LOutput

AutoConfig.register(PC2LConfig.model_type, PC2LConfig)
AutoModel.register(PC2LConfig, PC2LForConditionalGeneration)
PC2LConfig.register_for_auto_class()
PC2LForConditionalGeneration.register_for_auto_class("AutoModel")

__all__ = ["PC2LConfig", "PC2LForConditionalGeneration", "PC2LOutput"]
