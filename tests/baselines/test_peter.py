"""PETER baseline: the PETER mask, both losses, unknown ids, padding, decoding and save/reload."""

import torch
from image_baseline_fixtures import (
    SPECIAL_TOKENS,
    one_torch_thread,  # noqa: F401  (an autouse fixture: importing it applies it here)
)
from text_baseline_fixtures import (
    SPECIAL,
    check_generates_from_bos_with_the_papers_decoding,
    check_greedy_generate_matches_reference,
    check_loss_decreases,
    check_save_and_reload_generate_the_same,
    id_inputs,
    reference_cross_entropy,
    text_batch,
)

from gest_showcases.baselines.configuration_peter import PeterConfig
from gest_showcases.baselines.id_embeddings import UserItemEmbeddings
from gest_showcases.baselines.modeling_peter import PeterForExplanation, peter_attention_mask


def _model(**overrides) -> PeterForExplanation:
    torch.manual_seed(0)
    settings = {
        "num_users": 4, "num_items": 3, "hidden_size": 16, "intermediate_size": 32, "num_layers": 2,
        "num_attention_heads": 2, "dropout": 0.0, "unknown_id_probability": 0.0, "context_weight": 0.5,
    }  # fmt: skip
    return PeterForExplanation(PeterConfig(**SPECIAL_TOKENS | settings | overrides))


def _batch() -> dict:
    return text_batch() | id_inputs()


def test_the_peter_mask_of_two_ids_and_three_words():
    # rows: queries user, item, w1, w2, w3; columns: keys in the same order (1: may attend)
    expected = torch.tensor([
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
    ], dtype=torch.bool)  # fmt: skip
    assert torch.equal(peter_attention_mask(torch.ones(1, 3, dtype=torch.long))[0], expected)
    # w3 padded: no query attends to it
    padded = expected.clone()
    padded[:, 4] = False
    assert torch.equal(peter_attention_mask(torch.tensor([[1, 1, 0]]))[0], padded)


def test_forward_is_the_codes_transformer_over_ids_and_words():
    """Oracle: torch's post-LayerNorm `TransformerEncoderLayer` (what the code's layer is) with the model's weights,
    over `sqrt(d)`-scaled embeddings plus the code's sinusoids, under the code's mask (`generate_peter_mask`) and key
    padding; words read at positions 2.., the context at the item position 1."""
    model = _model().eval()
    batch = _batch()
    width, total = 16, 2 + batch["input_ids"].shape[1]
    position = torch.arange(total, dtype=torch.float)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2).float() * (-torch.log(torch.tensor(10000.0)) / width))
    sinusoids = torch.stack(
        [torch.sin(position * frequency), torch.cos(position * frequency)], dim=-1
    ).flatten(1)
    ids = torch.stack(
        [model.id_embeddings.users(batch["user_ids"]), model.id_embeddings.items(batch["item_ids"])], 1
    )
    hidden = torch.cat([ids, model.word_embeddings(batch["input_ids"])], 1) * width**0.5 + sinusoids
    code_mask = torch.triu(torch.ones(total, total, dtype=torch.bool), diagonal=1)  # True: may not attend
    code_mask[0, 1] = False
    padding = torch.cat([torch.zeros(3, 2, dtype=torch.bool), batch["attention_mask"] == 0], 1)
    for ours in model.layers:
        layer = torch.nn.TransformerEncoderLayer(width, 2, 32, dropout=0.0, batch_first=True).eval()
        layer.self_attn.in_proj_weight.data, layer.self_attn.in_proj_bias.data = (
            ours.qkv_proj.weight,
            ours.qkv_proj.bias,
        )
        layer.self_attn.out_proj.load_state_dict(ours.out_proj.state_dict())
        layer.linear1.load_state_dict(ours.fc1.state_dict())
        layer.linear2.load_state_dict(ours.fc2.state_dict())
        layer.norm1.load_state_dict(ours.self_attn_layer_norm.state_dict())
        layer.norm2.load_state_dict(ours.final_layer_norm.state_dict())
        hidden = layer(hidden, src_mask=code_mask, src_key_padding_mask=padding)
    output = model(**batch)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(output.logits[real], model.lm_head(hidden[:, 2:])[real])
    torch.testing.assert_close(output.context_logits, model.lm_head(hidden[:, 1]))


def test_losses_are_the_next_token_cross_entropy_and_the_bag_of_words_context_loss():
    """Oracles: the cross-entropy at every label position, and -log p_context(w) averaged over every word of every
    explanation (BOS and EOS excluded) under the item position's distribution."""
    model = _model().eval()
    batch = _batch()
    output = model(**batch)
    torch.testing.assert_close(
        output.loss_ce.double(), reference_cross_entropy(output.logits, batch["labels"])
    )
    terms = []
    for row in range(3):
        log_probs = output.context_logits[row].double().log_softmax(-1)
        for token in batch["labels"][row, 1:].tolist():
            if token not in (-100, SPECIAL):
                terms.append(-log_probs[token])
    torch.testing.assert_close(output.loss_context.double(), torch.stack(terms).mean())
    torch.testing.assert_close(output.loss, output.loss_ce + 0.5 * output.loss_context)


def test_the_context_prediction_reads_the_ids_and_no_word():
    model = _model().eval()
    batch = _batch()
    output = model(**batch)
    words = batch | {"input_ids": torch.randint(0, SPECIAL, batch["input_ids"].shape)}
    torch.testing.assert_close(model(**words).context_logits, output.context_logits)
    other_item = batch | {"item_ids": torch.tensor([1, 1, 2])}
    assert not torch.allclose(model(**other_item).context_logits, output.context_logits)


def test_loss_decreases_on_a_fixed_batch():
    first, last = check_loss_decreases(_model(dropout=0.2, unknown_id_probability=0.1), _batch())
    assert last < 0.5 * first, (first, last)


def test_padded_words_and_later_words_do_not_change_earlier_scores():
    model = _model().eval()
    batch = _batch()
    logits = model(**batch).logits
    mask = batch["attention_mask"].bool()
    noisy = batch | {
        "input_ids": torch.where(mask, batch["input_ids"], torch.randint(0, SPECIAL, mask.shape))
    }
    assert not torch.equal(noisy["input_ids"], batch["input_ids"])
    torch.testing.assert_close(model(**noisy).logits[mask], logits[mask])
    changed = batch | {"input_ids": batch["input_ids"].clone()}
    changed["input_ids"][0, 3] = (changed["input_ids"][0, 3] + 1) % SPECIAL
    changed_logits = model(**changed).logits
    torch.testing.assert_close(changed_logits[0, :3], logits[0, :3])
    assert not torch.allclose(changed_logits[0, 3:], logits[0, 3:])


def test_unknown_ids_give_finite_logits_and_generations():
    model = _model().eval()
    unknown = {"user_ids": torch.zeros(3, dtype=torch.long), "item_ids": torch.zeros(3, dtype=torch.long)}
    assert torch.isfinite(model(**text_batch() | unknown).logits).all()
    ids = model.generate(**unknown, max_new_tokens=8)
    assert ids.shape[0] == 3 and (ids[:, 0] == SPECIAL).all()


def test_training_replaces_ids_by_the_unknown_id_with_the_configured_probability():
    embeddings = UserItemEmbeddings(num_users=5, num_items=4, width=3, unknown_id_probability=1.0)
    users, items = torch.tensor([1, 2, 4]), torch.tensor([3, 0, 2])
    unknown = embeddings(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    assert torch.equal(embeddings.train()(users, items), unknown)
    assert torch.equal(embeddings.eval()(users, items)[:, 0], embeddings.users.weight[users])
    embeddings.unknown_id_probability = 0.3
    torch.manual_seed(0)
    forgotten = embeddings.train()(torch.arange(1, 5).repeat(500), torch.arange(1, 3).repeat(1000))
    share = (forgotten == unknown[:1]).all(-1).float().mean(0)  # [2]: per id kind
    assert ((share > 0.25) & (share < 0.35)).all(), share


def test_generate_starts_from_bos_with_the_papers_decoding():
    check_generates_from_bos_with_the_papers_decoding(_model(), id_inputs())


def test_greedy_generate_matches_a_hand_rolled_loop():
    check_greedy_generate_matches_reference(_model(), id_inputs())


def test_save_and_reload_give_identical_generations(tmp_path):
    files = ("configuration_peter.py", "modeling_peter.py", "generation_utils.py", "id_embeddings.py", "positions.py")
    check_save_and_reload_generate_the_same(_model(), PeterForExplanation, tmp_path, id_inputs(), files)
