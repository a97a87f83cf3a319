"""Step 1 of a showcase: choose the K images a user cares about from a business's photos.

`DPPImageSelector` learns a DPP kernel from CLIP features (relevance to the user's profile times
image similarity); `greedy_map` is the fast greedy MAP inference it selects with. Importing this
package registers the model with `AutoConfig` / `AutoModel` (model type `"dpp_image_selector"`) and
marks it so `save_pretrained` ships its code for `trust_remote_code=True` loading.
"""

from transformers import AutoConfig, AutoModel

from .configuration_dpp import DPPSelectorConfig
from .greedy import GreedyMapOutput, greedy_map
from .modeling_dpp import DPPImageSelector, DPPSelection, DPPSelectorOutput

AutoConfig.register(DPPSelectorConfig.model_type, DPPSelectorConfig)
AutoModel.register(DPPSelectorConfig, DPPImageSelector)
DPPSelectorConfig.register_for_auto_class()
DPPImageSelector.register_for_auto_class("AutoModel")

__all__ = [
    "DPPImageSelector",
    "DPPSelection",
    "DPPSelectorConfig",
    "DPPSelectorOutput",
    "GreedyMapOutput",
    "greedy_map",
]
