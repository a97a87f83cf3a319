"""ShowcasePipeline: batching, the selector and generator fed as their training fed them, and the edge cases."""

import pytest
import torch
from PIL import Image

from gest_showcases.features import extract_image_features, extract_text_features, load_features
from gest_showcases.pipeline import Showcase, ShowcaseInput, ShowcasePipeline

HISTORY = ["Great ramen! The broth was rich.", "", "Tiny place.\nGood dumplings"]


@pytest.fixture(scope="module")
def pipeline(checkpoints):
    return ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", max_new_tokens=6)


def requests(photos):
    return [
        ShowcaseInput(
            candidates=[photos[f"pic{i}"] for i in range(6)],
            history_texts=HISTORY,
            history_images=[photos["pic7"]],
            user_id="u1",
            business_id="b1",
        ),
        ShowcaseInput(candidates=[photos[f"pic{i}"] for i in range(2, 8)], history_texts=["Best pizza."]),
        ShowcaseInput(candidates=[photos[f"pic{i}"] for i in (1, 3, 5, 7)], history_images=[photos["pic0"]]),
    ]


def test_batched_outputs_equal_one_by_one(pipeline, photos):
    batched = pipeline(requests(photos), batch_size=2, num_beams=1)
    assert len(batched) == 3 and all(isinstance(result, Showcase) for result in batched)
    for request, result in zip(requests(photos), batched, strict=True):
        ids = [photo.id for photo in result.photos]
        assert len(ids) == 3 and len(set(ids)) == 3
        assert set(ids) <= {item[0] for item in request.candidate_items()}
        assert all(photo.path.endswith(f"{photo.id}.jpg") for photo in result.photos)
        assert result.explanation and not result.cold_user and not result.warnings
        alone = pipeline(request, num_beams=1)
        assert [photo.id for photo in alone.photos] == ids
        assert alone.explanation == result.explanation
        torch.testing.assert_close(
            torch.tensor([p.score for p in alone.photos]), torch.tensor([p.score for p in result.photos])
        )
    assert batched[0].user_id == "u1" and batched[0].business_id == "b1"


def test_features_and_selection_match_the_cached_training_inputs(pipeline, checkpoints, photos, tmp_path):
    """Oracle: features the features layer caches for training, fed to `DPPImageSelector.select` directly."""
    request = requests(photos)[0]
    items = [(f"pic{i}", photos[f"pic{i}"]) for i in range(8)]
    extract_image_features(items, pipeline.clip_image, tmp_path, batch_size=4, num_workers=0)
    extract_text_features([(str(i), text) for i, text in enumerate(HISTORY)], pipeline.clip_text, tmp_path)
    images = load_features(tmp_path, "image")
    reviews = load_features(tmp_path, "review")
    expected_reviews, found = reviews.lookup(["0", "2"])
    assert found.all() and "1" not in reviews.ids  # the empty text has no embedding
    torch.testing.assert_close(pipeline.review_embeddings(HISTORY), expected_reviews)

    candidates, _ = images.lookup([f"pic{i}" for i in range(6)])
    history_image, _ = images.lookup(["pic7"])
    expected = pipeline.selector.select(
        expected_reviews.mean(0, keepdim=True), history_image, candidates.unsqueeze(0), k=3
    )
    result = pipeline(request)
    assert [photo.id for photo in result.photos] == [f"pic{i}" for i in expected.indices[0].tolist()]
    log_quality = pipeline.selector(
        expected_reviews.mean(0, keepdim=True), history_image, candidates[None]
    ).log_quality
    torch.testing.assert_close(
        torch.tensor([p.score for p in result.photos]),
        log_quality[0, expected.indices[0]],
        atol=1e-5,
        rtol=1e-5,
    )


def test_generator_reads_vision_features_of_the_picks_and_history_reviews(pipeline, photos):
    """The explanation equals PC2L's generate on the backbone features of the selected photos (pick order)
    and the CLIP features of the history reviews, as train-pc2l feeds them."""
    request = requests(photos)[0]
    result = pipeline(request, num_beams=2)
    from gest_showcases.pipeline import read_pixels

    pixels = torch.stack(read_pixels([photos[p.id] for p in result.photos], pipeline.vision.preprocessing))
    image_features = pipeline.vision.encode(pixels).unsqueeze(0)
    review_features = pipeline.review_embeddings(HISTORY).unsqueeze(0)
    ids = pipeline.generator.generate(
        image_features=image_features,
        image_mask=torch.ones(1, 3, dtype=torch.bool),
        review_features=review_features,
        review_mask=torch.ones(1, 2, dtype=torch.bool),
        num_beams=2,
        max_new_tokens=6,
    )
    assert result.explanation == pipeline.tokenizer.decode(ids[0], skip_special_tokens=True).strip()


def test_a_static_cache_passed_through_decodes_the_same_showcases(pipeline, photos, monkeypatch):
    """`pipeline(..., cache_implementation="static")` reaches the generator's `generate` (its faster decoding, README
    "Models"); oracle: the same requests decoded plainly."""
    from gest_showcases.generation.compiled_generation import StaticDecodingCache

    plain = pipeline(requests(photos), batch_size=3, num_beams=2)
    calls = []
    decode = StaticDecodingCache.decode
    monkeypatch.setattr(StaticDecodingCache, "decode", lambda self, ids: calls.append(ids.shape) or decode(self, ids))
    static = pipeline(requests(photos), batch_size=3, num_beams=2, cache_implementation="static")
    assert len(calls) == 6  # the static cache decoded every step (max_new_tokens=6)
    assert [result.explanation for result in static] == [result.explanation for result in plain]
    # A generator whose generation_config asks for it (a checkpoint's generation_config.json) decodes so by default.
    monkeypatch.setattr(pipeline.generator.generation_config, "cache_implementation", "static")
    configured = pipeline(requests(photos), batch_size=3, num_beams=2)
    assert len(calls) == 12
    assert [result.explanation for result in configured] == [result.explanation for result in plain]


def test_cold_user_gets_the_empty_profile_selection(pipeline, photos):
    pool = [photos[f"pic{i}"] for i in range(6)]
    first, second = pipeline([{"candidates": pool}, {"candidates": pool, "history_texts": ["", "  "]}])
    for result in (first, second):
        assert result.cold_user and any("cold user" in warning for warning in result.warnings)
        assert result.explanation
    assert [p.id for p in first.photos] == [p.id for p in second.photos]
    features = torch.stack(
        pipeline._clip_features(pool)  # noqa: SLF001 - the oracle needs the same CLIP features
    ).unsqueeze(0)
    expected = pipeline.selector.select(torch.zeros(1, 16), torch.zeros(1, 16), features, k=3)
    assert [p.id for p in first.photos] == [f"pic{i}" for i in expected.indices[0].tolist()]


def test_one_selector_forward_pass_per_batch(pipeline, photos, monkeypatch):
    """The picks and the photos' scores come from the same forward pass of the selector (`select`)."""
    calls = []
    forward = pipeline.selector.forward
    monkeypatch.setattr(pipeline.selector, "forward", lambda *a, **kw: calls.append(1) or forward(*a, **kw))
    pool = [photos[f"pic{i}"] for i in range(6)]
    pipeline([{"candidates": pool, "history_texts": ["The ramen was great."]}, {"candidates": pool[:4]}])
    assert len(calls) == 1


def test_a_photo_several_requests_show_is_read_and_encoded_once_per_batch(pipeline, photos, monkeypatch):
    """The three requests show 8 distinct photos 18 times (pools of one business overlap); each is encoded once,
    and the showcases are those of the requests one at a time (`test_batched_outputs_equal_one_by_one`)."""
    encoded = []
    encode = pipeline.clip_image.encode
    monkeypatch.setattr(pipeline.clip_image, "encode", lambda pixels: encoded.append(len(pixels)) or encode(pixels))
    batch = requests(photos)
    shown = [photo for r in batch for photo in [*(p for _, p in r.candidate_items()), *r.history_images]]
    assert (len(shown), len(set(map(str, shown)))) == (18, 8)
    results = pipeline(batch, batch_size=3, num_beams=1)
    assert sum(encoded) == 8
    assert [[p.id for p in r.photos] for r in results] == [
        [p.id for p in pipeline(request, num_beams=1).photos] for request in batch
    ]


def test_fewer_photos_than_k_returns_them_all(pipeline, photos):
    result = pipeline(
        ShowcaseInput(candidates=[photos["pic0"], photos["pic1"]], history_texts=["Nice."]), k=3
    )
    assert sorted(p.id for p in result.photos) == ["pic0", "pic1"]
    assert any("fewer than k=3" in warning for warning in result.warnings)


def test_unreadable_photos_are_skipped_and_reported(pipeline, photos, tmp_path):
    candidates = {
        "bad": photos["corrupt"],
        "gone": tmp_path / "missing.jpg",
        "a": photos["pic2"],
        "b": photos["pic3"],
    }
    result = pipeline(ShowcaseInput(candidates=candidates, history_texts=["Nice."]), k=2)
    assert result.skipped == ["bad", "gone"]
    assert sorted(p.id for p in result.photos) == ["a", "b"]
    assert any("skipped 2 unreadable" in warning for warning in result.warnings)
    with pytest.raises(ValueError, match="none of its 2 candidate photos could be read"):
        pipeline(ShowcaseInput(candidates={"bad": photos["corrupt"], "gone": tmp_path / "missing.jpg"}))


def test_pil_images_and_single_input(pipeline, photos):
    images = {f"photo{i}": Image.open(photos[f"pic{i}"]).convert("RGB") for i in range(4)}
    result = pipeline({"candidates": images, "history_texts": ["Good."]})
    assert isinstance(result, Showcase) and len(result.photos) == 3
    assert all(photo.path is None and photo.image is images[photo.id] for photo in result.photos)
    assert "image" not in result.to_dict()["photos"][0]
    by_path = pipeline(
        {"candidates": {key: photos[f"pic{key[-1]}"] for key in images}, "history_texts": ["Good."]}
    )
    assert [p.id for p in by_path.photos] == [p.id for p in result.photos]


def test_text_only_generator_refuses_a_cold_user(checkpoints, photos, tmp_path, make_tiny_generator):
    generator = make_tiny_generator(tmp_path / "text-generator", input_mode="text")
    pipeline = ShowcasePipeline.from_pretrained(**(checkpoints | {"generator": generator}), max_new_tokens=4)
    assert pipeline({"candidates": [photos["pic0"]], "history_texts": ["Good ramen."]}).explanation
    with pytest.raises(ValueError, match="input_mode='text'"):
        pipeline({"candidates": [photos["pic0"]], "user_id": "new"})


def test_image_kind_must_match_the_generator(checkpoints, photos):
    pipeline = ShowcasePipeline.from_pretrained(**checkpoints, image_kind="image", max_new_tokens=4)
    assert pipeline.vision is None
    with pytest.raises(ValueError, match="expects 32-d image features but the 'image' features are 16-d"):
        pipeline({"candidates": [photos["pic0"]], "history_texts": ["Good."]})
    with pytest.raises(ValueError, match="image_kind must be one of"):
        ShowcasePipeline.from_pretrained(**checkpoints, image_kind="clip")
