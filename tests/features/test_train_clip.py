"""`gest-showcases train-clip`: a CLIP trained from scratch on a tiny Gest-Synth world, saved and reloaded
through the feature-extraction path like any CLIP checkpoint."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, CLIPImageProcessor, CLIPModel
from transformers.models.clip.modeling_clip import image_text_contrastive_loss

from gest_showcases.commands.features import main as extract_main
from gest_showcases.commands.train_clip import METRICS_FILE, main
from gest_showcases.errors import InputError
from gest_showcases.features.cache import load_features
from gest_showcases.features.clip import load_clip
from gest_showcases.features.clip_standin import BOS, EOS, build_clip, train_clip_tokenizer
from gest_showcases.features.clip_training import (
    BagOfTokens,
    CLIPWithBagOfTokens,
    ImageTextCollator,
    PairedReviews,
    augment_photos,
    multiple_instance_info_nce,
    read_paired_reviews,
    symmetric_info_nce,
    train,
)
from gest_showcases.features.inputs import image_items, read_config_rows
from gest_showcases.features.loading import ImagePreprocessing
from gest_showcases.metrics.clip_quality import clip_quality
from gest_showcases.metrics.synth_truth import SynthTruth


def test_tokenizer_learns_words_and_still_reads_any_text():
    texts = ["The margherita pizza was great.", "Great pizza, great margherita!"] * 20
    tokenizer = train_clip_tokenizer(texts, vocab_size=400)
    assert tokenizer.tokenize("Margherita PIZZA") == ["margherita</w>", "pizza</w>"]
    ids = tokenizer("pizza")["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids(BOS) and ids[-1] == tokenizer.convert_tokens_to_ids(EOS)
    # Unseen words and characters fall back to byte symbols, never to an unknown token.
    unseen = tokenizer.tokenize("crème brûlée 🍮")
    assert unseen and tokenizer.unk_token not in unseen
    assert (
        tokenizer.decode(tokenizer("crème brûlée 🍮")["input_ids"], skip_special_tokens=True)
        == "crème brûlée 🍮"
    )


@pytest.mark.slow
def test_train_save_and_extract_round_trip(tmp_path, synth_dataset):
    out = tmp_path / "clip"
    photos = synth_dataset.parent / "synth" / "images"  # the folder the dataset was built with
    truth_file = synth_dataset.parent / "synth" / "ground_truth.json"
    assert main(["--dataset", str(synth_dataset), "--images", str(photos), "--output_dir", str(out), "--image_size", "32", "--patch_size", "8",
                 "--hidden_size", "32", "--num_layers", "2", "--num_heads", "2", "--projection_dim", "16",
                 "--num_train_epochs", "15", "--batch_size", "32", "--learning_rate", "3e-3", "--num_threads", "1",
                 "--synth_truth", str(truth_file)]) == 0  # fmt: skip
    metrics = json.loads((out / "train_clip_metrics.json").read_text())
    losses = metrics["epoch_losses"]
    assert len(losses) == 15 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 0.05
    retrieval = metrics["validation_image_to_review"]
    assert 0.0 <= retrieval["recall_at_1"] <= retrieval["recall_at_5"] <= 1.0
    # Only train-split reviews are learnt from.
    rows = read_config_rows(synth_dataset, "s1")
    assert metrics["train_reviews"] <= sum(row["split"] == "train" for row in rows)

    # The quality report is the saved checkpoint's, measured on the world's ground truth.
    quality = metrics["clip_quality"]
    assert quality == json.loads(
        json.dumps(clip_quality(*load_clip(out), synth_dataset, SynthTruth.load(truth_file), photos))
    )
    for probe in (quality["subject_probe"], quality["dish_probe"]):
        assert probe["test_photos"] > 0
        assert all(0.0 <= probe[key] <= 1.0 for key in ("nearest_centroid", "nearest_neighbour", "majority"))
    assert quality["dish_probe"]["test_photos"] < quality["subject_probe"]["test_photos"]
    assert quality["match_pairs"] > 0 and 0.0 <= quality["subject_match"] <= 1.0

    # Trained weights differ from a fresh model of the same config and seed.
    model = CLIPModel.from_pretrained(out).eval()
    torch.manual_seed(0)
    fresh = CLIPModel(model.config)
    assert not torch.equal(model.visual_projection.weight, fresh.visual_projection.weight)
    assert AutoTokenizer.from_pretrained(out).tokenize("The pizza") == ["the</w>", "pizza</w>"]

    # `gest-showcases features --model out` loads it as any CLIP checkpoint; oracle: CLIP's own forward.
    features = tmp_path / "features"
    assert extract_main(["--dataset", str(synth_dataset), "--images", str(photos), "--clip_model", str(out), "--output_dir", str(features),
                         "--kinds", "image", "--num_workers", "0", "--batch_size", "64"]) == 0  # fmt: skip
    images = load_features(features, "image")
    items = image_items(synth_dataset, rows, photos)
    assert len(images) == len(items)
    preprocessing = ImagePreprocessing.from_image_processor(AutoImageProcessor.from_pretrained(out))
    pic, path = items[0]
    with Image.open(path) as image:
        pixels = preprocessing.normalize(preprocessing.pil_to_uint8(image)[None])
    with torch.no_grad():
        expected = torch.nn.functional.normalize(
            model.get_image_features(pixel_values=pixels).pooler_output, dim=-1
        )
    got, found = images.lookup([pic])
    assert found.all()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def global_random_state() -> tuple:
    """Python's, NumPy's and torch's global generators, comparable with `==`."""
    kind, keys, *rest = np.random.get_state()
    return random.getstate(), (kind, keys.tolist(), *rest), torch.random.get_rng_state().tolist()


def hand_written_loop(dataset, images, options: dict) -> tuple[CLIPModel, list[float]]:
    """The stand-in CLIP's training before `StandInCLIPTrainer`: AdamW with warm-up and cosine decay over one seeded
    permutation of the photos per epoch, gradients clipped at 1, the temperature capped after each step; the model
    and the mean loss of each epoch. The Trainer must reproduce it exactly."""
    random.seed(options["seed"])
    torch.manual_seed(options["seed"])
    size = options["image_size"]
    processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    preprocessing = ImagePreprocessing.from_image_processor(processor)
    reviews = read_paired_reviews(dataset, "train", preprocessing, images)
    sentences = [sentence for review in reviews.sentences for sentence in review]
    tokenizer = train_clip_tokenizer(sentences, options["vocab_size"])
    names = ("image_size", "patch_size", "hidden_size", "num_layers", "num_heads", "projection_dim")
    model = build_clip(tokenizer, *(options[name] for name in names))
    bag_of_tokens = BagOfTokens(len(tokenizer), options["projection_dim"])
    parameters = [*model.named_parameters(), *bag_of_tokens.named_parameters(prefix="bag_of_tokens")]
    decay = [p for n, p in parameters if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in parameters if not (p.ndim >= 2 and "embedding" not in n)]
    groups = [
        {"params": decay, "weight_decay": options["weight_decay"]},
        {"params": no_decay, "weight_decay": 0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=options["learning_rate"])
    batch_size, epochs = options["batch_size"], options["num_train_epochs"]
    total = epochs * math.ceil(len(reviews.pixels) / batch_size)
    warmup = max(1, int(options["warmup_fraction"] * total))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(options["seed"])
    losses = []
    for _ in range(epochs):
        model.train()
        epoch_loss = 0.0
        for batch in torch.randperm(len(reviews.pixels), generator=generator).split(batch_size):
            owners = reviews.image_review[batch].tolist()
            texts = [random.choice(reviews.sentences[review]) for review in owners]
            tokens = tokenizer(texts, padding="longest", truncation=True, max_length=77, return_tensors="pt")
            pixels = preprocessing.normalize(reviews.pixels[batch])
            output = model(**tokens, pixel_values=pixels, return_loss=True)
            bag_logits = model.logit_scale.exp() * output.image_embeds @ bag_of_tokens(**tokens).T
            loss = output.loss + options["bag_of_tokens_weight"] * symmetric_info_nce(bag_logits)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in parameters], 1.0)
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            epoch_loss += loss.item() * len(batch)
        losses.append(epoch_loss / len(reviews.pixels))
    return model.eval(), losses


def test_trainer_reproduces_the_hand_written_loop(tmp_path, synth_dataset):
    photos = synth_dataset.parent / "synth" / "images"
    options = {"image_size": 16, "patch_size": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2,
               "projection_dim": 8, "pair_with": "sentence", "vocab_size": 300, "bag_of_tokens_weight": 0.5,
               "num_train_epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "weight_decay": 0.1,
               "warmup_fraction": 0.2, "seed": 3, "num_threads": 1}  # fmt: skip
    np.random.seed(5)
    reference, losses = hand_written_loop(synth_dataset, photos, options)
    reference_random_state = global_random_state()
    np.random.seed(5)
    summary = train(synth_dataset, tmp_path / "clip", images=photos, **options)
    # The global generators end where the loop left them (`Trainer` re-seeds them): a caller draws from them next.
    assert global_random_state() == reference_random_state
    assert summary["train_images"] > 2 * options["batch_size"]  # a few steps per epoch, the last one smaller
    assert summary["epoch_losses"] == pytest.approx(losses, abs=1e-6, rel=0)
    trained = CLIPModel.from_pretrained(tmp_path / "clip").state_dict()
    for name, parameter in reference.state_dict().items():
        torch.testing.assert_close(trained[name], parameter, atol=1e-6, rtol=0)


def test_tokenizer_training_is_reproducible():
    # Equally frequent merges (e.g. "e t</w>" and "e n</w>") are ordered by symbol ids, which `tokenizers`
    # 0.23 gives word-final symbols in hash-map order: without fixed ids, runs in one process differ.
    words = ["cat", "ten", "pet", "hen", "bat", "pen", "art", "fan", "sit", "bin", "hot", "sun", "mix", "box"]
    texts = [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    trained = [train_clip_tokenizer(texts, vocab_size=300) for _ in range(4)]
    tokenizers = {json.dumps(t.get_vocab(), sort_keys=True) + t.backend_tokenizer.to_str() for t in trained}
    assert len(tokenizers) == 1


def test_bag_of_tokens_encodes_which_tokens_a_text_has():
    bag = BagOfTokens(vocab_size=6, projection_dim=3)
    ids = torch.tensor([[0, 4, 2, 4, 1], [0, 3, 1, 1, 1]])  # BOS ... EOS, the second right-padded with EOS
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    # Hand-written presence vectors: a repeated token counts once, padding not at all.
    presence = torch.tensor([[1.0, 1, 1, 0, 1, 0], [1, 1, 0, 1, 0, 0]])
    expected = torch.nn.functional.normalize(bag.projection(presence), dim=-1)
    torch.testing.assert_close(bag(input_ids=ids, attention_mask=mask), expected)


def test_symmetric_info_nce_is_clips_loss():
    logits = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(symmetric_info_nce(logits), image_text_contrastive_loss(logits))


def test_a_missing_ground_truth_stops_train_clip_before_training(tmp_path):
    # The dataset is never read: the ground truth is checked first, so a typo costs no training run.
    with pytest.raises(InputError, match="missing.json"):
        main(["--dataset", str(tmp_path / "no-dataset"), "--output_dir", str(tmp_path / "clip"),
              "--synth_truth", str(tmp_path / "missing.json")])  # fmt: skip
    assert not (tmp_path / "clip").exists()


def test_multiple_instance_info_nce_with_one_positive_each_is_clips_loss():
    logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(1)) * 5
    torch.testing.assert_close(
        multiple_instance_info_nce(logits, torch.eye(6, dtype=torch.bool)), symmetric_info_nce(logits)
    )


def test_multiple_instance_info_nce_by_hand():
    # Two photos, three sentences: photo 0's review has sentences 0 and 2, photo 1's sentence 1.
    logits = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]])
    positives = torch.tensor([[True, False, True], [False, True, False]])
    e = math.exp
    image_to_text = [-math.log((e(1) + e(2)) / (e(1) + e(0) + e(2))), -math.log(e(3) / (e(0) + e(3) + e(1)))]
    text_to_image = [
        -math.log(e(1) / (e(1) + e(0))),
        -math.log(e(3) / (e(0) + e(3))),
        -math.log(e(2) / (e(2) + e(1))),
    ]
    expected = (sum(image_to_text) / 2 + sum(text_to_image) / 3) / 2
    assert multiple_instance_info_nce(logits, positives).item() == pytest.approx(expected, rel=1e-6)
    # A sentence no photo owns has no positive: an error, not an infinite loss.
    with pytest.raises(ValueError, match="at least one positive"):
        multiple_instance_info_nce(logits, torch.tensor([[True, False, False], [False, True, False]]))


def test_sentences_collator_carries_each_reviews_sentences_once():
    texts = ["Margherita pizza here.", "Slow service.", "The ramen was rich."]
    tokenizer = train_clip_tokenizer(texts * 5, vocab_size=300)
    processor = CLIPImageProcessor(size={"shortest_edge": 4}, crop_size={"height": 4, "width": 4})
    preprocessing = ImagePreprocessing.from_image_processor(processor)
    reviews = PairedReviews(
        pixels=torch.arange(3 * 3 * 4 * 4, dtype=torch.uint8).view(3, 3, 4, 4),
        image_review=torch.tensor([0, 0, 1]),  # photos 0 and 1 share review 0
        first_image=torch.tensor([0, 2]),
        sentences=[texts[:2], texts[2:]],
        texts=[" ".join(texts[:2]), texts[2]],
    )
    batch = ImageTextCollator(reviews, tokenizer, preprocessing, pair_with="sentences")([2, 0, 1])
    # Review 1 first (photo 2 comes first), then review 0's two sentences once, not once per photo.
    expected = tokenizer([texts[2], texts[0], texts[1]], padding="longest", return_tensors="pt")
    torch.testing.assert_close(batch["input_ids"], expected["input_ids"])
    torch.testing.assert_close(batch["attention_mask"], expected["attention_mask"])
    assert batch["positives"].tolist() == [[True, False, False], [False, True, True], [False, True, True]]
    torch.testing.assert_close(batch["pixel_values"], preprocessing.normalize(reviews.pixels[[2, 0, 1]]))


def test_identity_positives_give_the_one_text_per_photo_loss():
    tokenizer = train_clip_tokenizer(["pizza with basil", "ramen with egg", "slow service"] * 5, vocab_size=300)
    torch.manual_seed(0)
    model = CLIPWithBagOfTokens(
        build_clip(tokenizer, 8, 8, 16, 1, 2, 8), BagOfTokens(len(tokenizer), 8), bag_of_tokens_weight=0.7
    )
    tokens = tokenizer(["pizza with basil", "ramen with egg", "slow service"], padding=True, return_tensors="pt")
    pixels = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        model(**tokens, pixel_values=pixels, positives=torch.eye(3, dtype=torch.bool)),
        model(**tokens, pixel_values=pixels),
    )


def test_train_with_sentence_bags(tmp_path, synth_dataset):
    photos = synth_dataset.parent / "synth" / "images"
    summary = train(
        synth_dataset, tmp_path / "clip", images=photos, image_size=16, patch_size=8, hidden_size=16,
        num_layers=1, num_heads=2, projection_dim=8, pair_with="sentences", vocab_size=300,
        num_train_epochs=2, batch_size=16, num_threads=1,
    )  # fmt: skip
    assert summary["train_images"] > 2 * 16  # several steps per epoch
    assert len(summary["epoch_losses"]) == 2 and all(math.isfinite(loss) for loss in summary["epoch_losses"])
    assert CLIPModel.from_pretrained(tmp_path / "clip").config.projection_dim == 8


def _windows(photo: torch.Tensor, pad: int) -> list[torch.Tensor]:
    """Every crop of `photo`'s size from its reflection-padded copy and from the mirrored one, by loops."""
    padded = torch.nn.functional.pad(photo[None].float(), (pad, pad, pad, pad), mode="reflect")[0]
    height, width = photo.shape[-2:]
    crops = []
    for source in (padded, padded.flip(-1)):
        for top in range(2 * pad + 1):
            for left in range(2 * pad + 1):
                crops.append(source[:, top : top + height, left : left + width].to(photo.dtype))
    return crops


def test_augment_photos_mirrors_and_shifts_each_photo_with_its_own_draws():
    pixels = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    augmented = augment_photos(pixels, torch.Generator().manual_seed(0))
    assert augmented.shape == pixels.shape and augmented.dtype == torch.uint8
    pad = 2  # 16 // 8
    kinds = []
    for photo, out in zip(pixels, augmented, strict=True):
        matches = [i for i, crop in enumerate(_windows(photo, pad)) if torch.equal(crop, out)]
        assert len(matches) == 1  # random photos: exactly one (flip, offset) gives this output
        kinds.append(matches[0])
    flipped = [index >= (2 * pad + 1) ** 2 for index in kinds]
    assert 10 < sum(flipped) < 54  # about half mirrored
    assert len(set(kinds)) > 20  # the offsets vary photo to photo
    # The same generator state gives the same batch; the next call other draws.
    generator = torch.Generator().manual_seed(0)
    torch.testing.assert_close(augment_photos(pixels, generator), augmented)
    assert not torch.equal(augment_photos(pixels, generator), augmented)


def test_collator_augments_only_when_given_a_generator():
    texts = ["Margherita pizza here.", "The ramen was rich."]
    tokenizer = train_clip_tokenizer(texts * 5, vocab_size=300)
    processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    preprocessing = ImagePreprocessing.from_image_processor(processor)
    pixels = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    reviews = PairedReviews(pixels, torch.tensor([0, 1]), torch.tensor([0, 1]), [texts[:1], texts[1:]], texts)
    plain = ImageTextCollator(reviews, tokenizer, preprocessing, "review")([0, 1])
    torch.testing.assert_close(plain["pixel_values"], preprocessing.normalize(pixels))
    augmented = ImageTextCollator(reviews, tokenizer, preprocessing, "review", torch.Generator().manual_seed(3))([0, 1])
    expected = augment_photos(pixels, torch.Generator().manual_seed(3))
    torch.testing.assert_close(augmented["pixel_values"], preprocessing.normalize(expected))
    torch.testing.assert_close(augmented["input_ids"], plain["input_ids"])


def test_train_clip_augment_reaches_training(tmp_path, synth_dataset):
    photos = synth_dataset.parent / "synth" / "images"
    argv = ["--dataset", str(synth_dataset), "--images", str(photos), "--image_size", "16", "--patch_size", "8",
            "--hidden_size", "16", "--num_layers", "1", "--num_heads", "2", "--projection_dim", "8",
            "--vocab_size", "300", "--num_train_epochs", "1", "--batch_size", "16", "--num_threads", "1"]  # fmt: skip
    assert main([*argv, "--output_dir", str(tmp_path / "plain")]) == 0
    assert main([*argv, "--output_dir", str(tmp_path / "augmented"), "--augment"]) == 0
    plain, augmented = (json.loads((tmp_path / name / METRICS_FILE).read_text()) for name in ("plain", "augmented"))
    assert plain["arguments"]["augment"] is False and augmented["arguments"]["augment"] is True
    # Same seed, same batches: only the photos' flips and shifts differ, and so the losses.
    assert augmented["epoch_losses"] != plain["epoch_losses"]


def test_extra_dataset_adds_its_train_split_to_the_training_pairs(tmp_path, synth_dataset, other_world):
    photos, other_photos = synth_dataset.parent / "synth" / "images", other_world / "synth" / "images"
    processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    preprocessing = ImagePreprocessing.from_image_processor(processor)
    own = read_paired_reviews(synth_dataset, "train", preprocessing, photos)
    other = read_paired_reviews(other_world / "dataset", "train", preprocessing, other_photos)
    joined = own + other
    assert len(joined.pixels) == len(own.pixels) + len(other.pixels) and joined.texts == own.texts + other.texts
    # Oracle, one image at a time: the joined split pairs each photo with the sentences its own split did.
    for image in range(len(joined.pixels)):
        source, index = (own, image) if image < len(own.pixels) else (other, image - len(own.pixels))
        assert torch.equal(joined.pixels[image], source.pixels[index])
        assert joined.sentences[joined.image_review[image]] == source.sentences[source.image_review[index]]
    assert all(joined.image_review[joined.first_image[review]] == review for review in range(len(joined.sentences)))

    argv = ["--dataset", str(synth_dataset), "--images", str(photos), "--image_size", "16", "--patch_size", "8",
            "--hidden_size", "16", "--num_layers", "1", "--num_heads", "2", "--projection_dim", "8",
            "--vocab_size", "300", "--num_train_epochs", "1", "--batch_size", "16", "--num_threads", "1",
            "--output_dir", str(tmp_path / "clip")]  # fmt: skip
    assert main([*argv, "--extra_dataset", str(other_world / "dataset"), "--extra_images", str(other_photos)]) == 0
    summary = json.loads((tmp_path / "clip" / METRICS_FILE).read_text())
    assert (summary["train_images"], summary["train_reviews"]) == (len(joined.pixels), len(joined.sentences))
    # Validation stays the main dataset's.
    validation = read_paired_reviews(synth_dataset, "validation", preprocessing, photos)
    assert summary["validation_reviews"] == len(validation.sentences)
    with pytest.raises(InputError, match="give --extra_dataset too"):
        main([*argv[:-1], str(tmp_path / "refused"), "--extra_images", str(other_photos)])
    assert not (tmp_path / "refused").exists()
