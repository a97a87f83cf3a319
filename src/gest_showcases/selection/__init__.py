"""Step 1 of a showcase: choose the K images a user cares about from a business's photos.

`DPPImageSelector` learns a DPP kernel from CLIP features (relevance to the user's profile times
image similarity); `greedy_map` is the fast greedy MAP inference it selects with. Names load on first
use; `import gest_showcases` registers the model with `AutoConfig` / `AutoModel` (model type
`"dpp_image_selector"`), and `save_pretrained` ships its code for `trust_remote_code=True` loading.
"""

from gest_showcases._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "DPPSelectorConfig": "configuration_dpp",
        "DPPImageSelector": "modeling_dpp",
        "DPPSelection": "modeling_dpp",
        "DPPSelectorOutput": "modeling_dpp",
        "GreedyMapOutput": "greedy",
        "greedy_map": "greedy",
        "SelectionDataset": "dataset",
        "build_selection_dataset": "dataset",
        "collate_selection": "dataset",
        "DPPSelectorTrainer": "training",
    },
)
