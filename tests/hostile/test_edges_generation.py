"""Generation edges no other test pins (issue 13, item 8), each against a hand-computed or direct oracle:

- PCL (eq. 9) for an example with images and no history review: its mean history feature is the zero
  vector, similar to nothing, and its positive pair must stay unweighted (only negatives get `f(i, j)`).
- The collator's truncation: a target longer than `max_length` keeps BOS first and EOS last and is
  exactly `max_length` tokens.
- `ShowcasePipeline`: a per-call `generate` setting wins over the pipeline's default, and `num_beams`
  is honoured (the explanation is the one `PC2LForConditionalGeneration.generate` writes directly).
"""

import math
from types import SimpleNamespace

import pytest
import torch

from gest_showcases.generation import PC2LConfig
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.losses import personality_weights, review_contrastive_loss
from gest_showcases.generation.modeling_pc2l import masked_mean
from gest_showcases.pipeline import ShowcaseInput, ShowcasePipeline, read_pixels
from tiny_assets import (
    CORPUS,
    build_gpt2_tokenizer,
    few_threads,  # noqa: F401  (an autouse fixture: importing it applies it here)
    save_tiny_checkpoints,
    write_jpegs,
)

# -- PCL with a user without history ----------------------------------------------------------------


def test_pcl_leaves_the_positive_pair_of_a_user_without_history_unweighted():
    """Eq. 9 by hand. Example 0 has images but no history review; example 1 has one review.

    R~_0 = masked mean over no review = 0, so sim(R~_0, R~_1) = 0 and f(0, 1) = f(1, 0) = alpha = e.
    With H~^R = H~^Y = the identity and tau = 1, s_ii = 1 and s_ij = 0, so every example's term is
    -log(e^1 / (e^1 + e * e^0)) = log 2. Weighting the positive pair of example 0 by
    alpha ** (1 - sim(0, 0)) = e (sim of the zero vector with itself is 0, not 1) would give
    (log(1 + 1/e) + log 2) / 2 = 0.503 instead.
    """
    inputs = {
        "review_features": torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]]]),  # [B=2, 1 slot, D=2]
        "review_mask": torch.tensor([[False], [True]]),
    }
    assert torch.equal(masked_mean(inputs["review_features"], inputs["review_mask"])[0], torch.zeros(2))
    config = PC2LConfig(review_contrastive="pcl", pcl_alpha=math.e, contrastive_temperature=1.0)
    outputs = SimpleNamespace(review_embeds=torch.eye(2), target_embeds=torch.eye(2))

    loss = review_contrastive_loss(config, outputs, inputs)

    torch.testing.assert_close(loss, torch.tensor(math.log(2.0)))
    # Eq. 10's weights: 1 on the diagonal, alpha between the two users.
    weights = personality_weights(masked_mean(inputs["review_features"], inputs["review_mask"]), math.e)
    torch.testing.assert_close(weights, torch.tensor([[1.0, math.e], [math.e, 1.0]]))


# -- the collator's truncation ----------------------------------------------------------------------


def test_collator_cuts_a_long_target_to_max_length_with_bos_first_and_eos_last():
    tokenizer = build_gpt2_tokenizer(CORPUS)
    # A BOS distinct from EOS, so that "BOS first, EOS last" is seen, not assumed.
    tokenizer.add_special_tokens({"bos_token": "<|startoftext|>"})
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    assert bos != eos
    max_length = 8
    long_text, short_text = " ".join(CORPUS[:4]), "Thin crust."
    body = tokenizer(long_text, add_special_tokens=False)["input_ids"]
    short = tokenizer(short_text, add_special_tokens=False)["input_ids"]
    assert len(body) > 3 * max_length and len(short) + 2 < max_length
    examples = [
        {"target": long_text, "image_features": torch.zeros(1, 4), "negative": long_text + " Again."},
        {"target": short_text, "image_features": torch.zeros(2, 4), "negative": short_text},
    ]

    batch = PC2LCollator(tokenizer, max_length=max_length, with_negatives=True)(examples)

    expected = [bos, *body[: max_length - 2], eos]  # exactly max_length tokens
    assert batch["input_ids"].shape == (2, max_length)
    assert batch["input_ids"][0].tolist() == expected
    assert batch["labels"][0].tolist() == expected and batch["attention_mask"][0].tolist() == [1] * max_length
    assert batch["negative_input_ids"][0].tolist() == expected  # the same body up to the cut
    # The short target is whole, then padding that the loss ignores.
    padding = max_length - len(short) - 2
    assert batch["input_ids"][1, : len(short) + 2].tolist() == [bos, *short, eos]
    assert batch["labels"][1].tolist() == [bos, *short, eos] + [-100] * padding


# -- generate settings in ShowcasePipeline ----------------------------------------------------------

DEFAULT_TOKENS, DEFAULT_BEAMS = 6, 2
HISTORY = ["Great ramen! The broth was rich.", "Tiny place with good dumplings."]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    checkpoints = save_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))
    return ShowcasePipeline.from_pretrained(
        **checkpoints, device="cpu", num_beams=DEFAULT_BEAMS, max_new_tokens=DEFAULT_TOKENS
    )


@pytest.fixture(scope="module")
def request_and_oracle(pipeline, tmp_path_factory):
    """A request, and `generate(**settings)` on exactly the features the pipeline feeds the generator."""
    photos = write_jpegs(tmp_path_factory.mktemp("photos"), [f"pic{i}" for i in range(5)])
    request = ShowcaseInput(candidates=list(photos.values()), history_texts=HISTORY)
    picked = [photos[photo.id] for photo in pipeline(request, num_beams=1, max_new_tokens=1).photos]
    image_features = pipeline.vision.encode(torch.stack(read_pixels(picked, pipeline.vision.preprocessing)))
    inputs = {
        "image_features": image_features.unsqueeze(0),
        "image_mask": torch.ones(1, len(picked), dtype=torch.bool),
        "review_features": pipeline.review_embeddings(HISTORY).unsqueeze(0),
        "review_mask": torch.ones(1, len(HISTORY), dtype=torch.bool),
    }

    def oracle(**settings) -> str:
        ids = pipeline.generator.generate(**inputs, **settings)
        return pipeline.tokenizer.decode(ids[0], skip_special_tokens=True).strip()

    return request, oracle


def test_a_per_call_generate_setting_wins_over_the_pipeline_default(pipeline, request_and_oracle):
    request, oracle = request_and_oracle
    short = oracle(num_beams=DEFAULT_BEAMS, max_new_tokens=2)
    assert short != oracle(num_beams=DEFAULT_BEAMS, max_new_tokens=DEFAULT_TOKENS)  # the override shows

    assert pipeline(request, max_new_tokens=2).explanation == short
    # Without an override the defaults apply, and an override of one setting keeps the others' defaults.
    assert pipeline(request).explanation == oracle(num_beams=DEFAULT_BEAMS, max_new_tokens=DEFAULT_TOKENS)


def test_num_beams_is_honoured(pipeline, request_and_oracle):
    request, oracle = request_and_oracle
    texts = {beams: oracle(num_beams=beams, max_new_tokens=DEFAULT_TOKENS) for beams in (1, DEFAULT_BEAMS, 4)}
    # 4 beams write something else than greedy search and than the pipeline's default: a pipeline that
    # dropped `num_beams` (generate's default, 1) or kept its own (2) would be seen.
    assert texts[4] not in (texts[1], texts[DEFAULT_BEAMS])

    for beams in (1, 4):
        assert pipeline(request, num_beams=beams).explanation == texts[beams]
