"""Shared by the train-generator tests (imported by name): a built s2 folder with train/validation/test splits, and
stand-in generators that satisfy the baselines' contract (docs: /tmp/s5/baselines-spec.md, `baselines.collator`)
for each kind of conditioning input, so the data path and the command are tested apart from the real models."""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

sys.path.insert(0, str(Path(__file__).parents[1] / "generation"))
from pc2l_fixtures import CORPUS, FEATURE_DIM, FakeFeatureTable, build_tokenizer  # noqa: E402

from gest_showcases.baselines.registry import Baseline  # noqa: E402
from gest_showcases.testing.built_folder import write_built_folder  # noqa: E402

__all__ = ["CORPUS", "FEATURE_DIM", "FakeFeatureTable", "build_tokenizer"]

# (review_id, user, business, pics, split); explanations come from CORPUS in order.
ROWS = [
    ("r0", "ua", "b1", ["p0a", "p0b"], "train"),
    ("r1", "ub", "b1", ["p1a"], "train"),
    ("r2", "uc", "b2", ["p2a", "p2b"], "train"),
    ("r3", "ua", "b2", ["missing"], "train"),  # no photo with a feature
    ("r4", "ub", "b3", ["p4a"], "train"),
    ("r5", "uc", "b1", ["p5a"], "train"),
    ("r6", "ua", "b3", ["p6a"], "validation"),
    ("r7", "ud", "b1", ["p7a"], "validation"),  # a user never in train
    ("r8", "ub", "b2", ["p8a", "p8b"], "test"),
    ("r9", "ue", "b9", ["p9a"], "test"),  # a user and a business never in train
    ("r10", "uc", "b1", ["missing-too", "p10a"], "test"),
]


def s2_rows() -> dict[str, list[dict]]:
    """Per split, the s2 rows of ROWS: a user's history is their other reviews (ids and texts)."""
    splits: dict[str, list[dict]] = {}
    for index, (review_id, user, business, pics, split) in enumerate(ROWS):
        history = [
            (other[0], CORPUS[i])
            for i, other in enumerate(ROWS)
            if other[1] == user and other[0] != review_id
        ]
        splits.setdefault(split, []).append({
            "review_id": review_id, "user_id": user, "business_id": business, "rating": 5,
            "review_text": CORPUS[index] + " Would come back.", "pics": pics, "time": index,
            "history_review_ids": [h[0] for h in history], "history_texts": [h[1] for h in history],
            "explanation": CORPUS[index],
        })  # fmt: skip
    return splits


def write_s2_dataset(folder: Path) -> Path:
    """A built folder whose one config, s2, holds `s2_rows()` (train, validation and test)."""
    return write_built_folder(folder, {"s2": s2_rows()})


@strict
class StandInConfig(PreTrainedConfig):
    """A position-wise generator: next-token logits from the current token plus one conditioning vector."""

    model_type = "stand_in_generator"

    vocab_size: int = 100
    hidden_size: int = 16
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    image_feature_dim: int = FEATURE_DIM
    max_images: int = 5
    num_users: int = 1
    num_items: int = 1
    max_references: int = 5
    max_reference_length: int = 20
    aux_weight: float = 0.5


class StandInGenerator(PreTrainedModel, GenerationMixin):
    """Reads every conditioning input of the contract; subclasses say which through `conditioning_inputs`.

    `loss` = token-mean next-token cross-entropy + `aux_weight * loss_aux` (the squared norm of the conditioning
    vector), so the trainer's `loss_*` logging is visible.
    """

    config: StandInConfig
    config_class = StandInConfig
    conditioning_inputs: tuple[str, ...] = ()
    accepts_loss_kwargs = False

    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.image = nn.Linear(config.image_feature_dim, config.hidden_size)
        self.users = nn.Embedding(config.num_users, config.hidden_size)
        self.items = nn.Embedding(config.num_items, config.hidden_size)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        return False

    def _reference_vector(self, ids, mask):
        weights = mask.unsqueeze(-1).float()  # [B, R, L, 1]
        return (self.embed_tokens(ids) * weights).sum((1, 2)) / weights.sum((1, 2)).clamp(min=1.0)

    def condition(self, batch_size, image_features=None, image_mask=None, user_ids=None, item_ids=None,
                  user_reference_ids=None, user_reference_mask=None, item_reference_ids=None,
                  item_reference_mask=None):  # fmt: skip
        vector = self.embed_tokens.weight.new_zeros(batch_size, self.config.hidden_size)
        if "image" in self.conditioning_inputs:
            weights = image_mask.unsqueeze(-1).float()
            vector = vector + self.image((image_features * weights).sum(1) / weights.sum(1).clamp(min=1.0))
        if "ids" in self.conditioning_inputs:
            vector = vector + self.users(user_ids) + self.items(item_ids)
        if "references" in self.conditioning_inputs:
            vector = vector + self._reference_vector(user_reference_ids, user_reference_mask)
            vector = vector + self._reference_vector(item_reference_ids, item_reference_mask)
        return vector  # [B, H]

    def forward(self, input_ids, attention_mask=None, labels=None, return_dict=None, image_features=None,
                image_mask=None, user_ids=None, item_ids=None, user_reference_ids=None, user_reference_mask=None,
                item_reference_ids=None, item_reference_mask=None, **kwargs):  # fmt: skip
        vector = self.condition(
            input_ids.shape[0], image_features, image_mask, user_ids, item_ids, user_reference_ids,
            user_reference_mask, item_reference_ids, item_reference_mask,
        )  # fmt: skip
        logits = self.lm_head(self.embed_tokens(input_ids) + vector[:, None])  # [B, T, V]
        loss = loss_aux = None
        if labels is not None:
            loss_aux = vector.pow(2).mean()
            cross_entropy = F.cross_entropy(
                logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100
            )
            loss = cross_entropy + self.config.aux_weight * loss_aux
        output = CausalLMOutput(loss=loss, logits=logits)
        if loss_aux is not None:
            output["loss_aux"] = loss_aux
        return output

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        names = ("image_features", "image_mask", "user_ids", "item_ids", "user_reference_ids",
                 "user_reference_mask", "item_reference_ids", "item_reference_mask")  # fmt: skip
        return {"input_ids": input_ids, "attention_mask": attention_mask} | {
            name: kwargs[name] for name in names if name in kwargs
        }

    def generate(self, inputs=None, **kwargs):
        if inputs is None:
            batch_size = next(value.shape[0] for value in kwargs.values() if isinstance(value, torch.Tensor))
            inputs = torch.full((batch_size, 1), self.config.bos_token_id, dtype=torch.long)
        kwargs.setdefault("attention_mask", torch.ones_like(inputs))
        kwargs.setdefault("num_beams", 2)
        kwargs.setdefault("max_new_tokens", 8)
        return super().generate(inputs, use_cache=False, **kwargs)


def stand_in(inputs: tuple[str, ...]) -> type:
    """The stand-in generator class reading `inputs`."""
    return type(f"StandIn{'_'.join(inputs).title()}", (StandInGenerator,), {"conditioning_inputs": inputs})


class StandInBaseline(Baseline):
    """A registry entry whose classes are the stand-ins (the registry imports real ones from the package)."""

    def __init__(self, inputs: tuple[str, ...]):
        super().__init__("Stand-in", "ids", "", "", "", "", {"hidden_size": 8})
        object.__setattr__(self, "_model", stand_in(inputs))

    def config_class(self) -> type:
        return StandInConfig

    def model_class(self) -> type:
        return self._model
