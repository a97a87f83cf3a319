"""Gest-Synth's catalogue, generative story and renderer, checked without writing files."""

import random
import re
from collections import Counter

import numpy as np
import pytest

from gest_showcases.data.records import split_sentences
from gest_showcases.synth.catalog import ASPECTS, COLORS, CUISINES, DISHES, DRINKS, LAYOUTS, TEXTURES
from gest_showcases.synth.render import encode_jpeg, photo_params, render_batch
from gest_showcases.synth.text import GENERIC, OPENERS, UNRELATED, draw_voice, write_review
from gest_showcases.synth.world import NUM_DISHES, SynthConfig, generate_world


def _names(text: str, alias: str) -> bool:
    return re.search(rf"\b{re.escape(alias)}\b", text, flags=re.IGNORECASE) is not None


@pytest.fixture(scope="module")
def world():
    return generate_world(SynthConfig(seed=3, num_reviews=600))


def test_catalogue_size_and_references():
    assert len(CUISINES) >= 8
    assert len(DISHES) >= 60
    assert {a.name for a in ASPECTS} == {"interior", "drinks", "menu board", "storefront", "dessert display"}
    assert len({d.name for d in DISHES}) == len(DISHES)
    for dish in DISHES:
        assert dish.cuisine in CUISINES and dish.layout in LAYOUTS and dish.texture in TEXTURES
        assert {dish.primary, dish.secondary, dish.tertiary} <= set(COLORS)
        assert dish.aliases[0] == dish.name
    assert Counter(d.cuisine for d in DISHES).most_common()[-1][1] >= 6


def test_aliases_name_one_subject_only():
    """No alias of one subject occurs as words in another subject's aliases or details."""
    subjects = [(d.name, d.aliases, d.details) for d in DISHES] + [(a.name, a.aliases, ()) for a in ASPECTS]
    for name, aliases, _ in subjects:
        for other, other_aliases, other_details in subjects:
            if other == name:
                continue
            for alias in aliases:
                for phrase in (*other_aliases, *other_details):
                    assert not _names(phrase, alias), (alias, phrase)
    fixed = [*GENERIC, *OPENERS, *(s for group in UNRELATED.values() for s in group)]
    for _, aliases, _ in subjects:
        for alias in aliases:
            assert not any(_names(sentence, alias) for sentence in fixed), alias


def test_some_dishes_look_alike():
    signature = Counter((d.layout, d.texture, d.primary) for d in DISHES)
    assert sum(count for count in signature.values() if count > 1) >= 6


def test_write_review_labels_follow_the_words():
    rnd = random.Random(0)
    drinks = NUM_DISHES + [a.name for a in ASPECTS].index("drinks")
    for _ in range(200):
        voice = draw_voice(rnd)
        subjects = [(rnd.randrange(NUM_DISHES), -1) for _ in range(rnd.randint(1, 3))] + [
            (drinks, rnd.randrange(len(DRINKS)))
        ]
        menu = tuple(sorted(rnd.sample(range(NUM_DISHES), 8)))
        sentences, describes = write_review(rnd, voice, 5, subjects, menu, {"wall": 0, "storefront": 0})
        assert split_sentences(" ".join(sentences)) == sentences
        assert len(set(sentences)) == len(sentences)
        for sentence, positions in zip(sentences, describes, strict=True):
            for position, (subject, variant) in enumerate(subjects):
                aliases = (DRINKS[variant][0],) if subject == drinks else DISHES[subject].aliases
                assert any(_names(sentence, a) for a in aliases) == (position in positions), sentence


def test_world_is_deterministic_and_seed_dependent():
    config = SynthConfig(seed=5, num_reviews=200)
    a, b = generate_world(config), generate_world(SynthConfig(seed=5, num_reviews=200))
    assert a.reviews == b.reviews and a.photos == b.photos and a.users == b.users
    c = generate_world(SynthConfig(seed=6, num_reviews=200))
    assert [p.pic_id for p in c.photos] != [p.pic_id for p in a.photos]


def test_config_validation():
    with pytest.raises(ValueError, match="num_reviews"):
        SynthConfig(num_reviews=5)
    with pytest.raises(ValueError, match="num_users"):
        SynthConfig(num_reviews=100, num_users=3)


def test_world_shape(world):
    restaurants = [r for r in world.reviews if world.businesses[r.business].cuisine is not None]
    assert abs(len(restaurants) - 600) <= 60
    per_business = Counter()
    for r in restaurants:
        per_business[r.business] += len(r.photos)
    assert min(per_business.values()) >= 10 and max(per_business.values()) <= 60
    pairs = [(r.user, r.business) for r in world.reviews]
    assert len(set(pairs)) == len(pairs)
    assert any(world.businesses[r.business].cuisine is None for r in world.reviews)
    for index, r in enumerate(world.reviews):
        assert all(world.photos[p].review == index for p in r.photos)
        if world.businesses[r.business].cuisine is not None:
            dishes = [world.photos[p].subject for p in r.photos if world.photos[p].subject < NUM_DISHES]
            assert set(dishes) <= set(world.businesses[r.business].menu)


def test_users_photograph_their_favourites(world):
    """History is informative: a user's dish photos are mostly their favourites, far above chance."""
    hits, chance, total = 0, 0.0, 0
    for review in world.reviews:
        business = world.businesses[review.business]
        favourites = set(world.users[review.user].favourite_dishes)
        for p in review.photos:
            subject = world.photos[p].subject
            if subject < NUM_DISHES and business.cuisine is not None:
                hits += subject in favourites
                chance += len(favourites & set(business.menu)) / len(business.menu)
                total += 1
    assert hits / total > 2 * chance / total


def test_renderer_batches_match_single_images_up_to_noise(world):
    params = photo_params(world, 0)
    rows = {k: v[:16] for k, v in params.items()}
    batch = render_batch(rows, 32, 0, 0).astype(np.int16)
    assert batch.shape == (16, 32, 32, 3)
    clean = dict(rows, noise=np.zeros(16, dtype=np.float32))
    batch_clean = render_batch(clean, 32, 0, 0)
    singles = np.stack(
        [render_batch({k: v[i : i + 1] for k, v in clean.items()}, 32, 0, i)[0] for i in range(16)]
    )
    np.testing.assert_array_equal(batch_clean, singles)
    assert np.abs(batch - batch_clean).mean() < 10
    assert encode_jpeg(batch_clean[0]) == encode_jpeg(singles[0])


def test_same_dish_photos_are_closer_than_other_dishes(world):
    """A nearest-centroid classifier on 8x8 thumbnails beats chance by far (signatures are visible)."""
    params = photo_params(world, 0)
    pixels = np.concatenate(
        [
            render_batch({k: v[s : s + 256] for k, v in params.items()}, 32, 0, s)
            for s in range(0, len(world.photos), 256)
        ]
    )
    thumbs = pixels.reshape(len(pixels), 8, 4, 8, 4, 3).mean((2, 4)).reshape(len(pixels), -1)  # [N, 192]
    subjects = np.array([p.subject for p in world.photos])
    rng = np.random.default_rng(0)
    test = rng.random(len(subjects)) < 0.3
    labels = np.unique(subjects[~test])
    centroids = np.stack([thumbs[~test & (subjects == s)].mean(0) for s in labels])
    dist = ((thumbs[test, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = (labels[dist.argmin(1)] == subjects[test]).mean()
    assert accuracy > 0.1, accuracy  # chance is 1 / len(labels), under 2%


def test_users_write_with_their_own_words(world):
    """History is informative about writing: reviews reuse the writer's own praise words."""
    own, other = [], []
    for review in world.reviews:
        if (
            world.businesses[review.business].cuisine is None
            or review.rating < 4
            or len(review.sentences) < 2
        ):
            continue
        text = review.text.lower()
        stranger = world.users[(review.user + 1) % len(world.users)]
        own.append(any(_names(text, a) for a in world.users[review.user].voice.adjectives))
        other.append(any(_names(text, a) for a in stranger.voice.adjectives))
    assert np.mean(own) > np.mean(other) + 0.2
