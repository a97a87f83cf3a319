"""gest-showcases: personalized showcases for recommendations (Yan et al., SIGIR 2023).

For a user and a recommended business, pick the few business photos this user cares about
(`DPPImageSelector`) and write a short explanation grounded in them
(`PC2LForConditionalGeneration`); `ShowcasePipeline` does both from raw photos and texts.

Importing the package is cheap: every public name below loads its module on first use, and the
models register with transformers' `AutoConfig` / `AutoModel` when transformers loads those
(`_auto_registration`), so `AutoModel.from_pretrained(pc2l_folder)` works after `import gest_showcases`.
"""

from gest_showcases import _auto_registration
from gest_showcases._lazy import lazy_exports

__version__ = "0.1.0.dev0"

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "InputError": "errors",
        # Step 1: image selection (Section 4.1).
        "DPPSelectorConfig": "selection.configuration_dpp",
        "DPPImageSelector": "selection.modeling_dpp",
        "DPPSelection": "selection.modeling_dpp",
        "DPPSelectorOutput": "selection.modeling_dpp",
        "greedy_map": "selection.greedy",
        "GreedyMapOutput": "selection.greedy",
        "SelectionDataset": "selection.dataset",
        "build_selection_dataset": "selection.dataset",
        "collate_selection": "selection.dataset",
        "DPPSelectorTrainer": "selection.training",
        # Step 2: explanation generation (Sections 4.2-4.3).
        "PC2LConfig": "generation.configuration_pc2l",
        "PC2LForConditionalGeneration": "generation.modeling_pc2l",
        "PC2LOutput": "generation.modeling_pc2l",
        "PC2LCollator": "generation.collator",
        "PC2LDataset": "generation.collator",
        "PC2LTrainer": "generation.trainer",
        # Table 2's baselines (Section 5), trained by `gest-showcases train-generator`.
        "ShowAndTellConfig": "baselines.configuration_show_and_tell",
        "ShowAndTellForExplanation": "baselines.modeling_show_and_tell",
        "R2GenConfig": "baselines.configuration_r2gen",
        "R2GenForExplanation": "baselines.modeling_r2gen",
        "Ref2SeqConfig": "baselines.configuration_ref2seq",
        "Ref2SeqForExplanation": "baselines.modeling_ref2seq",
        "PeterConfig": "baselines.configuration_peter",
        "PeterForExplanation": "baselines.modeling_peter",
        "PeplerConfig": "baselines.configuration_pepler",
        "PeplerForExplanation": "baselines.modeling_pepler",
        # Features and the explanation classifier (Section 3.3).
        "ExplanationClassifierConfig": "features.configuration_explanation",
        "ExplanationClassifier": "features.modeling_explanation",
        "ExplanationClassifierOutput": "features.modeling_explanation",
        "ConvImageTowerConfig": "features.configuration_conv_tower",
        "ConvImageTower": "features.modeling_conv_tower",
        "ExplanationFilter": "features.distill",
        "ExplanationClassifierTrainer": "features.distill",
        "FeatureTable": "features.cache",
        "load_features": "features.cache",
        "load_clip": "features.clip",
        "load_vision_backbone": "features.clip",
        # Showcases from raw inputs.
        "ShowcasePipeline": "pipeline",
        "ShowcaseInput": "pipeline",
        "Showcase": "pipeline",
        "ShowcasePhoto": "pipeline",
        # Metrics (Section 5).
        "bleu": "metrics.text",
        "meteor": "metrics.text",
        "nist": "metrics.text",
        "distinct": "metrics.text",
        "bert_score": "metrics.text",
        "text_metrics": "metrics.text",
        "clip_align": "metrics.grounding",
        "clip_score": "metrics.grounding",
        "clip_align_from_embeddings": "metrics.grounding",
        "clip_score_from_embeddings": "metrics.grounding",
        "precision_at_k": "metrics.selection",
        "recall_at_k": "metrics.selection",
        "f1_score": "metrics.selection",
        "diversity_at_k": "metrics.selection",
        "selection_metrics": "metrics.selection",
        "module_path": "metrics",
    },
)

_auto_registration.install()
