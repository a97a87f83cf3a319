"""Tiny batches and shared checks of the image-conditioned baselines (Show and Tell, R2Gen), imported by name.

A batch has the layout of `PC2LCollator`'s: `BOS text EOS` right-padded `input_ids`, `attention_mask`, `labels` with
-100 on padding, zero-padded `image_features` with their `image_mask`. Vocabulary of 100 ids, id 99 being BOS, EOS
and padding as GPT-2's one special token is.
"""

import subprocess
import sys
import textwrap

import pytest
import torch

VOCAB_SIZE = 100
SPECIAL = 99  # BOS = EOS = padding
FEATURE_DIM = 8
SPECIAL_TOKENS = {
    "vocab_size": VOCAB_SIZE,
    "bos_token_id": SPECIAL,
    "eos_token_id": SPECIAL,
    "pad_token_id": SPECIAL,
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread per test of the modules that import this: R2Gen's decoding runs thousands of tiny memory
    steps, where a second thread only adds contention on a shared 2-core machine (10 s instead of 1.3 s). The same
    as `tiny_assets.few_threads`, whose module costs seconds of imports (CLIP, PC2L, the selector)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_batch(
    seed: int = 0, photos: tuple[int, ...] = (1, 4, 2), lengths: tuple[int, ...] = (7, 5, 3)
) -> dict:
    """One example per entry of `photos` (its number of valid photos) and `lengths` (its tokens, BOS and EOS
    included); the first example has a single photo."""
    generator = torch.Generator().manual_seed(seed)
    batch_size, num_slots, length = len(photos), max(photos), max(lengths)
    image_mask = torch.arange(num_slots).unsqueeze(0) < torch.tensor(photos).unsqueeze(1)  # [B, N]
    image_features = torch.randn(
        batch_size, num_slots, FEATURE_DIM, generator=generator
    ) * image_mask.unsqueeze(-1)
    input_ids = torch.full((batch_size, length), SPECIAL)
    attention_mask = torch.zeros(batch_size, length, dtype=torch.long)
    for row, size in enumerate(lengths):
        body = torch.randint(0, SPECIAL, (size - 2,), generator=generator)
        input_ids[row, :size] = torch.cat([torch.tensor([SPECIAL]), body, torch.tensor([SPECIAL])])
        attention_mask[row, :size] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": input_ids.masked_fill(attention_mask == 0, -100),
        "image_features": image_features,
        "image_mask": image_mask,
    }


def images(batch: dict) -> dict:
    return {"image_features": batch["image_features"], "image_mask": batch["image_mask"]}


def reference_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean over label positions of `-log softmax(logits[b, t])[labels[b, t + 1]]`, one position at a time."""
    terms = []
    for row in range(labels.shape[0]):
        for position in range(labels.shape[1] - 1):
            target = int(labels[row, position + 1])
            if target != -100:
                terms.append(-torch.log_softmax(logits[row, position].double(), dim=-1)[target])
    return torch.stack(terms).mean()


def check_loss_is_token_mean_cross_entropy(model) -> None:
    batch = tiny_batch()
    output = model(**batch)
    assert torch.isfinite(output.loss)
    torch.testing.assert_close(output.loss.double(), reference_cross_entropy(output.logits, batch["labels"]))


def check_loss_decreases(model, steps: int = 20) -> tuple[float, float]:
    """Adam on one fixed batch; returns the first and the last loss."""
    torch.manual_seed(0)
    batch = tiny_batch()
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


def check_padded_photos_are_ignored(model) -> None:
    """Perturbing padded photo slots leaves the logits unchanged; perturbing a real photo changes them."""
    model.eval()
    batch = tiny_batch()
    logits = model(**batch).logits
    noise = torch.randn(batch["image_features"].shape, generator=torch.Generator().manual_seed(1)) * 10
    padded = batch | {
        "image_features": torch.where(batch["image_mask"].unsqueeze(-1), batch["image_features"], noise)
    }
    assert not torch.equal(padded["image_features"], batch["image_features"])
    torch.testing.assert_close(model(**padded).logits, logits)
    real = batch | {"image_features": batch["image_features"].clone()}
    real["image_features"][0, 0] += 1.0
    assert not torch.allclose(model(**real).logits[0], logits[0])


def check_causal(model) -> None:
    """A token changes no score at an earlier position."""
    model.eval()
    batch = tiny_batch()
    logits = model(**batch).logits
    changed = batch | {"input_ids": batch["input_ids"].clone()}
    changed["input_ids"][0, 3] = (changed["input_ids"][0, 3] + 1) % SPECIAL
    changed_logits = model(**changed).logits
    torch.testing.assert_close(changed_logits[0, :3], logits[0, :3])
    assert not torch.allclose(changed_logits[0, 3:], logits[0, 3:])


def check_logits_to_keep(model) -> None:
    """`logits_to_keep=k` (what `generate` asks for) gives the last k positions of the full logits."""
    model.eval()
    batch = tiny_batch()
    logits = model(**batch).logits
    text_and_images = {key: value for key, value in batch.items() if key != "labels"}
    torch.testing.assert_close(model(**text_and_images, logits_to_keep=2).logits, logits[:, -2:])


def check_finite_with_one_photo_and_with_none(model) -> None:
    """Example 0 has one valid photo and, in a second batch, none: logits, loss and gradients stay finite."""
    model.train()
    for photos in ((1, 4, 2), (0, 4, 2)):
        batch = tiny_batch(photos=photos)
        output = model(**batch)
        assert torch.isfinite(output.logits).all(), photos
        model.zero_grad()
        output.loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), photos


def check_generates_from_bos_with_the_papers_decoding(model) -> None:
    model.eval()
    assert model.generation_config.num_beams == 2
    assert model.generation_config.max_new_tokens == 64
    assert model.generation_config.pad_token_id == SPECIAL
    batch = tiny_batch()
    ids = model.generate(**images(batch))
    assert ids.dtype == torch.long and ids.shape[0] == 3 and 2 <= ids.shape[1] <= 1 + 64
    assert (ids[:, 0] == SPECIAL).all()


def greedy_reference(model, batch: dict, steps: int) -> torch.Tensor:
    """Greedy decoding by hand: the whole prefix through `forward` each step, padding after EOS."""
    ids = torch.full((batch["input_ids"].shape[0], 1), SPECIAL)
    finished = torch.zeros(ids.shape[0], dtype=torch.bool)
    for _ in range(steps):
        next_ids = model(ids, **images(batch)).logits[:, -1].argmax(-1)
        next_ids = next_ids.masked_fill(finished, SPECIAL)
        finished |= next_ids == SPECIAL
        ids = torch.cat([ids, next_ids.unsqueeze(1)], dim=1)
    return ids


def check_greedy_generate_matches_reference(model) -> None:
    model.eval()
    batch = tiny_batch()
    with torch.no_grad():
        expected = greedy_reference(model, batch, steps=6)
    ids = model.generate(**images(batch), num_beams=1, do_sample=False, max_new_tokens=6)
    # `generate` stops once every row has ended; the reference keeps padding.
    assert torch.equal(ids, expected[:, : ids.shape[1]])
    assert (expected[:, ids.shape[1] :] == SPECIAL).all()


def check_save_and_reload_generate_the_same(
    model, model_class, folder, shipped_files: tuple[str, ...]
) -> None:
    model.eval()
    batch = tiny_batch()
    expected = model.generate(**images(batch), max_new_tokens=8)
    model.save_pretrained(folder)
    shipped = {path.name for path in folder.iterdir()}
    assert set(shipped_files) | {"config.json", "generation_config.json", "model.safetensors"} <= shipped, (
        shipped
    )
    reloaded = model_class.from_pretrained(folder).eval()
    assert reloaded.generation_config.num_beams == 2 and reloaded.generation_config.max_new_tokens == 64
    assert torch.equal(reloaded.generate(**images(batch), max_new_tokens=8), expected)
    torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)


def check_fresh_process_loads_with_trust_remote_code(model, folder) -> None:
    """The saved folder alone (its shipped code, `generation_utils.py` included) rebuilds the model in a process
    that never imports the package, with the same generations."""
    model.eval()
    batch = tiny_batch()
    model.save_pretrained(folder / "model")
    torch.save(images(batch), folder / "images.pt")
    torch.save(model.generate(**images(batch), max_new_tokens=6), folder / "ids.pt")
    script = textwrap.dedent(
        f"""
        import sys, torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(folder / "model")!r}, trust_remote_code=True).eval()
        assert not any(name.startswith("gest_showcases") for name in sys.modules), "package was imported"
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        ids = model.generate(**torch.load({str(folder / "images.pt")!r}), max_new_tokens=6)
        assert torch.equal(ids, torch.load({str(folder / "ids.pt")!r}))
        print("OK")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=folder, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stderr[-2000:]


def check_left_padding_is_refused(model) -> None:
    batch = tiny_batch()
    with pytest.raises(ValueError, match="right-padded"):
        model(**batch | {"attention_mask": batch["attention_mask"].flip(1)})
