"""Tiny batches and shared checks of the text- and id-conditioned baselines (Ref2Seq, PETER, PEPLER), imported by
name.

The target part of a batch is `image_baseline_fixtures.tiny_batch`'s (the layout of `GeneratorCollator`: `BOS text
EOS` right-padded, 100 ids, id 99 being BOS, EOS and padding as GPT-2's one special token is); the conditioning part
is the collator's `"references"` or `"ids"` input.
"""

import torch
from image_baseline_fixtures import SPECIAL, reference_cross_entropy, tiny_batch

__all__ = ["SPECIAL", "reference_cross_entropy"]

# Reference lengths per example and side: example 1 has no reference at all, on either side.
USER_REFERENCES = ((4, 2), (), (3, 5, 1))
ITEM_REFERENCES = ((3,), (), (5, 2))


def text_batch(seed: int = 0) -> dict:
    """`input_ids`, `attention_mask`, `labels` of three examples of 7, 5 and 3 tokens."""
    batch = tiny_batch(seed)
    return {key: batch[key] for key in ("input_ids", "attention_mask", "labels")}


def references(lengths: tuple[tuple[int, ...], ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, R, L] ids (random words, SPECIAL-padded) and mask of references of the given token counts."""
    generator = torch.Generator().manual_seed(seed)
    num_refs = max(len(example) for example in lengths)
    length = max(size for example in lengths for size in example)
    ids = torch.full((len(lengths), num_refs, length), SPECIAL)
    mask = torch.zeros(len(lengths), num_refs, length, dtype=torch.long)
    for row, example in enumerate(lengths):
        for slot, size in enumerate(example):
            ids[row, slot, :size] = torch.randint(0, SPECIAL, (size,), generator=generator)
            mask[row, slot, :size] = 1
    return ids, mask


def reference_inputs(seed: int = 0) -> dict:
    user_ids, user_mask = references(USER_REFERENCES, seed)
    item_ids, item_mask = references(ITEM_REFERENCES, seed + 1)
    return {
        "user_reference_ids": user_ids, "user_reference_mask": user_mask,
        "item_reference_ids": item_ids, "item_reference_mask": item_mask,
    }  # fmt: skip


def id_inputs() -> dict:
    """Example 0 a known user and item, example 1 an unknown user (0), example 2 an unknown item (0)."""
    return {"user_ids": torch.tensor([3, 0, 1]), "item_ids": torch.tensor([2, 1, 0])}


def check_loss_decreases(model, batch: dict, steps: int = 20) -> tuple[float, float]:
    """Adam on one fixed batch; returns the first and the last loss."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


def check_generates_from_bos_with_the_papers_decoding(model, inputs: dict) -> torch.Tensor:
    """`generate` from the conditioning inputs alone: the saved paper decoding, BOS first, finite scores."""
    model.eval()
    assert model.generation_config.num_beams == 2
    assert model.generation_config.max_new_tokens == 64
    assert model.generation_config.pad_token_id == SPECIAL
    output = model.generate(**inputs, output_scores=True, return_dict_in_generate=True)
    ids = output.sequences
    assert ids.dtype == torch.long and ids.shape[0] == 3 and 2 <= ids.shape[1] <= 1 + 64
    assert (ids[:, 0] == SPECIAL).all()
    assert all(torch.isfinite(scores).any(-1).all() for scores in output.scores)
    return ids


def check_greedy_generate_matches_reference(model, inputs: dict, steps: int = 6) -> None:
    """Greedy `generate` equals greedy decoding by hand: the whole prefix through `forward` each step."""
    model.eval()
    ids = torch.full((3, 1), SPECIAL)
    finished = torch.zeros(3, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(steps):
            next_ids = model(ids, **inputs).logits[:, -1].argmax(-1).masked_fill(finished, SPECIAL)
            finished |= next_ids == SPECIAL
            ids = torch.cat([ids, next_ids.unsqueeze(1)], dim=1)
    generated = model.generate(**inputs, num_beams=1, do_sample=False, max_new_tokens=steps)
    # `generate` stops once every row has ended; the reference keeps padding.
    assert torch.equal(generated, ids[:, : generated.shape[1]])
    assert (ids[:, generated.shape[1] :] == SPECIAL).all()


def check_save_and_reload_generate_the_same(model, model_class, folder, inputs: dict, shipped_files) -> None:
    """Beam-search generations and logits are identical after `save_pretrained` -> `from_pretrained`."""
    model.eval()
    expected = model.generate(**inputs)
    model.save_pretrained(folder)
    shipped = {path.name for path in folder.iterdir()}
    assert set(shipped_files) | {"config.json", "generation_config.json", "model.safetensors"} <= shipped, (
        shipped
    )
    reloaded = model_class.from_pretrained(folder).eval()
    assert reloaded.generation_config.num_beams == 2 and reloaded.generation_config.max_new_tokens == 64
    assert torch.equal(reloaded.generate(**inputs), expected)
    batch = text_batch() | inputs
    torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)
