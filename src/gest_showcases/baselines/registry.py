"""The generators `gest-showcases train-generator --model NAME` trains, by name.

`"pc2l"` and `"gpt2-ce"` (PC2L without contrastive losses: the GPT-2 rows of Table 2) are trained by
`train-pc2l` (`PC2L_RUNS` holds the options that make each); the five baselines (`BASELINES`) by
`baselines.training.train_baseline`. A baseline's classes are imported only when asked for, so listing the names
costs no torch import.
"""

from dataclasses import dataclass, field
from importlib import import_module

# train-pc2l options of each PC2L run.
PC2L_RUNS = {
    "pc2l": (),
    "gpt2-ce": ("--image_contrastive", "none", "--review_contrastive", "none"),
}


@dataclass(frozen=True)
class Baseline:
    """One baseline row of Table 2.

    Args:
        row (`str`): its name in the tables.
        input (`str`): the paper's input column: `"img"`, `"text"` or `"ids"`.
        configuration (`str`), config_class (`str`): module (in this package) and name of its configuration.
        modeling (`str`), model_class (`str`): module and name of its model.
        defaults (`dict`): configuration values `train-generator` starts from before `--config_overrides`: the
            package trains these rows on about a thousand examples on CPU.
        pretrained_decoder (`bool`): whether the model can start its decoder from a GPT-2 checkpoint
            (`train-generator --decoder`, through the model class's `from_decoder_pretrained`).
    """

    row: str
    input: str
    configuration: str
    config_class_name: str
    modeling: str
    model_class_name: str
    defaults: dict = field(default_factory=dict)
    pretrained_decoder: bool = False

    def config_class(self) -> type:
        return getattr(import_module(f"{__package__}.{self.configuration}"), self.config_class_name)

    def model_class(self) -> type:
        return getattr(import_module(f"{__package__}.{self.modeling}"), self.model_class_name)


PEPLER_DECODER = {"n_embd": 256, "n_layer": 2, "n_head": 4, "n_positions": 128}

BASELINES = {
    "st": Baseline("ST", "img", "configuration_show_and_tell", "ShowAndTellConfig", "modeling_show_and_tell",
                   "ShowAndTellForExplanation"),
    "r2gen": Baseline("R2Gen", "img", "configuration_r2gen", "R2GenConfig", "modeling_r2gen",
                      "R2GenForExplanation"),
    "ref2seq": Baseline("Ref2Seq", "text", "configuration_ref2seq", "Ref2SeqConfig", "modeling_ref2seq",
                        "Ref2SeqForExplanation"),
    "peter": Baseline("PETER", "ids", "configuration_peter", "PeterConfig", "modeling_peter",
                      "PeterForExplanation"),
    # A GPT-2 of the other rows' width when no checkpoint is given (GPT-2 small is the configuration's default).
    "pepler": Baseline("PEPLER", "ids", "configuration_pepler", "PeplerConfig", "modeling_pepler",
                       "PeplerForExplanation", {"decoder": PEPLER_DECODER}, pretrained_decoder=True),
}  # fmt: skip

MODEL_NAMES = (*PC2L_RUNS, *BASELINES)

__all__ = ["BASELINES", "MODEL_NAMES", "PC2L_RUNS", "Baseline"]
