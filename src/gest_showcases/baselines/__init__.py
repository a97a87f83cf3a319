"""The paper's Table 2 baselines, trained and scored on the same data, trainer and evaluation as PC2L (issue 16).

One model per pair of files, PC2L's layout (`configuration_<name>.py`, `modeling_<name>.py`): Show and Tell, R2Gen,
Ref2Seq, PETER and PEPLER. Around them, one data path and one training path for every Table 2 generator:

- `data.py`: examples from a built dataset's `s2` splits and a feature folder (features as `train-pc2l` reads
  them, id vocabularies of the train split with 0 the unknown id, user and item reference texts);
- `collator.py`: `GeneratorCollator`, the batch of exactly the inputs a model's `conditioning_inputs` names;
- `registry.py`: the generators `gest-showcases train-generator --model` knows, by name;
- `training.py`: `train_baseline` (with `generation.trainer.GeneratorTrainer`), generation for any set of rows
  and photos, and the generations file `gest-showcases evaluate` reads.

Names load on first use, so importing this package costs nothing.
"""

from gest_showcases._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        # The models (one configuration and one modeling file each).
        "ShowAndTellConfig": "configuration_show_and_tell",
        "ShowAndTellForExplanation": "modeling_show_and_tell",
        "R2GenConfig": "configuration_r2gen",
        "R2GenForExplanation": "modeling_r2gen",
        "Ref2SeqConfig": "configuration_ref2seq",
        "Ref2SeqForExplanation": "modeling_ref2seq",
        "PeterConfig": "configuration_peter",
        "PeterForExplanation": "modeling_peter",
        "PeterOutput": "modeling_peter",
        "PeplerConfig": "configuration_pepler",
        "PeplerForExplanation": "modeling_pepler",
        "UserItemEmbeddings": "id_embeddings",
        "BaselineGenerationConfig": "generation_utils",
        # Data and training.
        "ConditioningContext": "data",
        "GeneratorDataArguments": "data",
        "IdVocabulary": "data",
        "GeneratorCollator": "collator",
        "BASELINES": "registry",
        "GeneratorInputs": "training",
        "train_baseline": "training",
    },
)
