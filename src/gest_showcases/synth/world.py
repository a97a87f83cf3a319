"""The Gest-Synth world: users, businesses, their reviews and photos, drawn from one seed.

See the package docstring (`gest_showcases.synth`) for the generative story this module implements.
Vectorised numpy draws make the population; one pass over reviews (with `random.Random`, seeded
from the same seed) writes the texts, because text is per-review string work anyway.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from gest_showcases.errors import check_at_least, check_at_most
from gest_showcases.synth.catalog import (
    ASPECTS,
    CUISINES,
    DISHES,
    DRINKS,
    OTHER_CATEGORIES,
    PLATE_COLORS,
    STOREFRONT_COLORS,
    TABLE_COLORS,
    WALL_COLORS,
)
from gest_showcases.synth.text import (
    OTHER_REVIEWS,
    OWNER_REPLIES,
    SHORT_REVIEWS,
    STYLES,
    Voice,
    draw_voice,
    write_review,
)

logger = logging.getLogger(__name__)

CUISINE_KEYS = tuple(CUISINES)
NUM_DISHES = len(DISHES)
DRINKS_SUBJECT = NUM_DISHES + [a.name for a in ASPECTS].index("drinks")
FIRST_NAMES = (
    "Alex",
    "Maria",
    "Sam",
    "Priya",
    "Jordan",
    "Wei",
    "Carlos",
    "Emma",
    "Yuki",
    "Omar",
    "Lena",
    "Diego",
    "Hana",
    "Noah",
    "Aisha",
    "Mateo",
    "Chloe",
    "Ravi",
    "Sofia",
    "Jin",
)
NAME_WORDS = (
    "Golden",
    "Little",
    "Blue",
    "Happy",
    "Lucky",
    "Old Town",
    "Sunny",
    "Red",
    "Silver",
    "Corner",
    "Garden",
    "Royal",
    "Urban",
    "Rustic",
    "Twin",
    "Maple",
)
OTHER_NAMES = ("Quick", "Main Street", "City", "Family", "Express", "Valley", "Star", "Downtown")
TIME_RANGE_MS = (1_451_606_400_000, 1_633_046_400_000)  # 2016-01-01 .. 2021-10-01 UTC
URL_SAFE = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
HEX = np.array(list("0123456789abcdef"))
MAX_REVIEWS = 2_000_000


@dataclass
class SynthConfig:
    """Sizes and seed of a Gest-Synth world (the generative story itself is fixed)."""

    seed: int = field(default=0, metadata={"help": "seed of every random draw; same seed, same bytes"})
    num_reviews: int = field(
        default=3000,
        metadata={"help": "restaurant reviews to generate (businesses are added until this is reached)"},
    )
    num_users: int | None = field(
        default=None, metadata={"help": "user population; default num_reviews // 3"}
    )
    other_business_fraction: float = field(
        default=0.05,
        metadata={"help": "non-restaurant businesses per restaurant (Google Local files only)"},
    )
    num_annotated_reviews: int = field(
        default=100, metadata={"help": "reviews whose image-sentence pairs go to annotations.jsonl"}
    )

    def __post_init__(self):
        check_at_least(self, seed=0, num_reviews=20, num_users=10, other_business_fraction=0, num_annotated_reviews=0)
        # Upper bounds, so that a typo (`1e300`) is refused rather than a hang or an out-of-memory: a world at most
        # the size of the real Gest (1.49 million raw reviews), every user with a review, at most 10 other
        # businesses per restaurant.
        check_at_most(self, num_reviews=MAX_REVIEWS, other_business_fraction=10)
        check_at_most(self, num_users=self.num_reviews, num_annotated_reviews=MAX_REVIEWS)
        if self.num_users is None:
            self.num_users = max(10, self.num_reviews // 3)


@dataclass(frozen=True)
class User:
    """A reviewer: latent tastes, writing habits and camera habits."""

    user_id: str
    name: str
    cuisine_prefs: tuple[float, ...]
    favourite_dishes: tuple[int, ...]
    favourite_aspects: tuple[int, ...]
    voice: Voice
    zoom: float
    brightness: float


@dataclass(frozen=True)
class Business:
    """A business; `cuisine` is None for the non-restaurants of the Google Local files."""

    business_id: str
    gmap_id: str
    name: str
    category: tuple[str, ...]
    cuisine: str | None
    menu: tuple[int, ...]
    decor: dict[str, int]
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Photo:
    """One photo: its subject (dish index, or `NUM_DISHES + aspect index`) and drink variant (-1 if none)."""

    pic_id: str
    subject: int
    variant: int
    review: int


@dataclass(frozen=True)
class SynthReview:
    """One review. `describes[i]` lists the positions in `photos` that sentence `i` describes."""

    user: int
    business: int
    rating: int
    time: int
    sentences: tuple[str, ...]
    describes: tuple[tuple[int, ...], ...]
    photos: tuple[int, ...]
    reply: str | None

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


@dataclass
class World:
    """Everything generated: restaurants first in `businesses`, then the other businesses."""

    config: SynthConfig
    users: list[User]
    businesses: list[Business]
    reviews: list[SynthReview]
    photos: list[Photo]


def _unique_tokens(
    rng: np.random.Generator, n: int, alphabet: np.ndarray, length: int, taken: set[str]
) -> list[str]:
    """`n` distinct random strings over `alphabet`, none in `taken` (which is updated)."""
    out: list[str] = []
    while len(out) < n:
        codes = rng.integers(0, len(alphabet), size=(n - len(out), length))
        for token in map("".join, alphabet[codes]):
            if token not in taken:
                taken.add(token)
                out.append(token)
    return out


def _user_ids(rng: np.random.Generator, n: int) -> list[str]:
    digits = np.array(list("0123456789"))
    return ["1" + t for t in _unique_tokens(rng, n, digits, 20, set())]


def _pic_ids(rng: np.random.Generator, n: int) -> list[str]:
    return ["AF1Qip" + t for t in _unique_tokens(rng, n, URL_SAFE, 38, set())]


def _draw_users(rng: np.random.Generator, rnd: random.Random, n: int) -> tuple[list[User], np.ndarray]:
    prefs = rng.dirichlet(np.full(len(CUISINE_KEYS), 0.35), size=n)  # [n, C]
    activity = rng.lognormal(0.0, 0.8, size=n)  # [n]
    ids = _user_ids(rng, n)
    dishes_by_cuisine = {c: [i for i, d in enumerate(DISHES) if d.cuisine == c] for c in CUISINE_KEYS}
    aspect_weights = [a.weight for a in ASPECTS]
    users = []
    for u in range(n):
        cuisines = rnd.choices(CUISINE_KEYS, weights=prefs[u].tolist(), k=rnd.randint(3, 5))
        favourites = sorted({rnd.choice(dishes_by_cuisine[c]) for c in cuisines})
        aspects = sorted(set(rnd.choices(range(len(ASPECTS)), weights=aspect_weights, k=rnd.randint(0, 2))))
        users.append(
            User(
                user_id=ids[u],
                name=f"{rnd.choice(FIRST_NAMES)} {chr(65 + rnd.randrange(26))}.",
                cuisine_prefs=tuple(round(float(p), 6) for p in prefs[u]),
                favourite_dishes=tuple(favourites),
                favourite_aspects=tuple(aspects),
                voice=draw_voice(rnd),
                zoom=rnd.uniform(0.8, 1.25),
                brightness=rnd.uniform(0.85, 1.15),
            )
        )
    return users, prefs * activity[:, None]


def _photo_counts(rnd: random.Random, target: int) -> list[int]:
    """Splits a business's photo budget into reviews: mostly 1-3 photos, a few over 10, a few with none."""
    counts = []
    left = target
    while left > 0:
        if left > 10 and rnd.random() < 0.02:
            k = rnd.randint(11, min(14, left))
        else:
            k = 1
            while rnd.random() < 0.45:
                k += 1
        k = min(k, left)
        counts.append(k)
        left -= k
        if rnd.random() < 0.01:
            counts.append(0)
    return counts


def _draw_businesses(
    rng, rnd, demand: np.ndarray, num_reviews: int
) -> tuple[list[Business], list[list[int]]]:
    """Restaurants until `num_reviews` review slots exist; returns them and their slots' photo counts."""
    cuisine_p = demand.sum(0) / demand.sum()
    businesses, slots = [], []
    total = 0
    while total < num_reviews:
        c = CUISINE_KEYS[int(rng.choice(len(CUISINE_KEYS), p=cuisine_p))]
        label, venues, second = CUISINES[c]
        own = [i for i, d in enumerate(DISHES) if d.cuisine == c]
        menu = rnd.sample(own, rnd.randint(5, len(own)))
        if rnd.random() < 0.3:
            menu.append(rnd.choice([i for i in range(NUM_DISHES) if DISHES[i].cuisine != c]))
        counts = _photo_counts(rnd, rnd.randint(10, 60))
        businesses.append(
            _business(
                rng,
                rnd,
                f"{rnd.choice(NAME_WORDS)} {rnd.choice(venues)}",
                (f"{label} restaurant", second),
                c,
                tuple(sorted(menu)),
            )
        )
        slots.append(counts)
        total += len(counts)
    return businesses, slots


def _business(rng, rnd, name, category, cuisine, menu) -> Business:
    hex_id = "".join(HEX[rng.integers(0, 16, 24)])
    gmap = "0x" + "".join(HEX[rng.integers(0, 16, 16)]) + ":0x" + "".join(HEX[rng.integers(0, 16, 16)])
    decor = {
        "table": rnd.randrange(len(TABLE_COLORS)),
        "plate": rnd.randrange(len(PLATE_COLORS)),
        "wall": rnd.randrange(len(WALL_COLORS)),
        "storefront": rnd.randrange(len(STOREFRONT_COLORS)),
    }
    return Business(
        hex_id,
        gmap,
        name,
        category,
        cuisine,
        menu,
        decor,
        round(rnd.uniform(25.0, 48.0), 6),
        round(rnd.uniform(-122.0, -71.0), 6),
    )


def _assign_users(rng, businesses, slots, demand) -> list[list[int]]:
    """For each business, one distinct reviewer per slot, drawn in proportion to activity x cuisine taste."""
    n_users = demand.shape[0]
    owners = [np.full(len(s), -1) for s in slots]
    for ci, c in enumerate(CUISINE_KEYS):
        members = [b for b, biz in enumerate(businesses) if biz.cuisine == c]
        if not members:
            continue
        slot_biz = np.concatenate([np.full(len(slots[b]), b) for b in members])  # [S]
        p = demand[:, ci] / demand[:, ci].sum()
        users = rng.choice(n_users, size=len(slot_biz), p=p)
        for _ in range(100):
            keys = slot_biz * n_users + users
            _, first = np.unique(keys, return_index=True)
            dup = np.ones(len(keys), dtype=bool)
            dup[first] = False
            if not dup.any():
                break
            users[dup] = rng.choice(n_users, size=int(dup.sum()), p=p)
        for b in members:
            owners[b] = users[slot_biz == b]
    # a business with more slots than users can still hold repeats: it keeps each reviewer once
    return [list(dict.fromkeys(o.tolist())) for o in owners]


def _visit(rnd: random.Random, user: User, business: Business, k: int) -> list[tuple[int, int]]:
    """What a user photographs at a restaurant: favourite dishes and aspects are far likelier."""
    items = list(business.menu) + [NUM_DISHES + a for a in range(len(ASPECTS))]
    weights = [8.0 if d in user.favourite_dishes else 1.0 for d in business.menu]
    weights += [a.weight * (10.0 if i in user.favourite_aspects else 1.0) for i, a in enumerate(ASPECTS)]
    picks = rnd.choices(items, weights=weights, k=k)
    return [(s, rnd.randrange(len(DRINKS)) if s == DRINKS_SUBJECT else -1) for s in picks]


def _rating(rnd: random.Random, user: User, loved: bool) -> int:
    if rnd.random() < 0.07:  # a bad night, whatever the user's habits
        return rnd.choice((1, 1, 2, 2, 3))
    value = STYLES[user.voice.style].base_rating + 0.15 + 0.4 * loved + rnd.gauss(0.0, 0.7)
    return int(min(5, max(1, round(value))))


def generate_world(config: SynthConfig) -> World:
    """Draws a whole world from `config.seed`; see the package docstring for the story."""
    rng = np.random.default_rng(config.seed)
    rnd = random.Random(config.seed)
    users, demand = _draw_users(rng, rnd, config.num_users)
    businesses, slots = _draw_businesses(rng, rnd, demand, config.num_reviews)
    owners = _assign_users(rng, businesses, slots, demand)
    num_restaurants = len(businesses)
    for _ in range(max(1, round(config.other_business_fraction * num_restaurants))):
        category = rnd.choice(OTHER_CATEGORIES)
        name = f"{rnd.choice(OTHER_NAMES)} {category[0]}"
        businesses.append(_business(rng, rnd, name, category, None, ()))
        reviewers = rnd.sample(range(len(users)), min(len(users), rnd.randint(3, 8)))
        slots.append([rnd.choice((0, 0, 1, 2)) for _ in reviewers])
        owners.append(reviewers)

    reviews: list[SynthReview] = []
    subjects_all: list[tuple[int, int]] = []
    for b, business in enumerate(tqdm(businesses, desc="writing reviews", unit="business")):
        for u, k in zip(owners[b], slots[b], strict=False):
            user = users[u]
            time = rnd.randrange(*TIME_RANGE_MS)
            if business.cuisine is None:
                subjects = [(NUM_DISHES + rnd.choice((0, 3)), -1) for _ in range(k)]
                rating = rnd.choice((1, 2, 3, 4, 5, 5, 5))
                sentences, describes = [rnd.choice(OTHER_REVIEWS) + "."], [()]
            else:
                subjects = _visit(rnd, user, business, k)
                rating = _rating(rnd, user, any(s in user.favourite_dishes for s, _ in subjects))
                draw = rnd.random()
                if draw < 0.01:
                    sentences, describes = [], []
                elif draw < 0.03:
                    sentences, describes = [rnd.choice(SHORT_REVIEWS)], [()]
                else:
                    sentences, describes = write_review(
                        rnd, user.voice, rating, subjects, business.menu, business.decor
                    )
            first = len(subjects_all)
            subjects_all.extend(subjects)
            reply = rnd.choice(OWNER_REPLIES) if rnd.random() < 0.15 else None
            reviews.append(
                SynthReview(
                    u,
                    b,
                    rating,
                    time,
                    tuple(sentences),
                    tuple(describes),
                    tuple(range(first, first + k)),
                    reply,
                )
            )
    pic_ids = _pic_ids(rng, len(subjects_all))
    order = rng.permutation(len(reviews))  # crawl order is not business order
    photo_review = np.repeat(order.argsort(), [len(r.photos) for r in reviews])  # [P] review's new index
    photos = [Photo(pic_ids[i], s, v, int(photo_review[i])) for i, (s, v) in enumerate(subjects_all)]
    reviews = [reviews[i] for i in order]
    logger.info(
        "Gest-Synth world: %d users, %d businesses, %d reviews, %d photos",
        len(users),
        len(businesses),
        len(reviews),
        len(photos),
    )
    return World(config, users, businesses, reviews, photos)
