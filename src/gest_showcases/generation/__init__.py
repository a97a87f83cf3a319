"""Step 2 of the paper: the PC2L explanation generator (Sections 4.2-4.3).

`PC2LConfig` / `PC2LForConditionalGeneration` (model, `modeling_pc2l.py`), the contrastive losses as pure
functions (`losses.py`), entity-swapped hard negatives (`negatives.py`), the dataset and collator
(`collator.py`), `PC2LTrainer` (`trainer.py`) and optional LoRA (`lora.py`). Names load on first use, so importing
this package costs nothing; `import gest_showcases` registers the model with `AutoConfig` / `AutoModel`, and
`save_pretrained` ships its code for `trust_remote_code=True`.
"""

from gest_showcases._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "PC2LConfig": "configuration_pc2l",
        "PC2LGenerationConfig": "configuration_pc2l",
        "PC2LForConditionalGeneration": "modeling_pc2l",
        "PC2LOutput": "modeling_pc2l",
        "PC2LCollator": "collator",
        "PC2LDataset": "collator",
        "PC2LTrainer": "trainer",
    },
)
