"""How Gest-Synth users write: styles, sentence templates and the review writer.

A review is a list of sentences. Each sentence records which of the review's photos it describes,
so the image-sentence labels of the annotation file are exact by construction: a sentence
describes a photo when it names that photo's dish (an alias from the catalogue) or aspect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gest_showcases.synth.catalog import ASPECTS, DISHES, DRINKS, STOREFRONT_COLORS, WALL_COLORS


@dataclass(frozen=True)
class Style:
    """A writing style users are drawn from; each user then keeps a personal subset of it.

    Args:
        adjectives (`tuple[str, ...]`): praise words; a user keeps four of them.
        exclaim (`float`): probability that a sentence ends with "!".
        base_rating (`float`): mean of the user's ratings before noise.
        extra (`float`): mean number of generic plus image-unrelated sentences per review.
        detail (`float`): probability that a dish sentence adds a visual detail.
    """

    adjectives: tuple[str, ...]
    exclaim: float
    base_rating: float
    extra: float
    detail: float


# fmt: off
STYLES: dict[str, Style] = {
    "enthusiastic": Style(("amazing", "incredible", "out of this world", "so good", "delicious", "fantastic", "to die for", "phenomenal"), 0.6, 4.9, 3.4, 0.3),
    "casual": Style(("pretty good", "solid", "legit", "tasty", "on point", "really good", "bomb", "yummy"), 0.15, 4.6, 3.2, 0.3),
    "descriptive": Style(("flavourful", "well balanced", "perfectly seasoned", "beautifully presented", "fresh", "generous", "rich", "delicate"), 0.05, 4.5, 2.8, 0.85),
    "terse": Style(("good", "great", "nice", "fine", "tasty", "fresh"), 0.0, 4.4, 1.8, 0.1),
    "critical": Style(("decent", "okay", "a bit bland", "overpriced", "average", "not bad", "underwhelming", "fine"), 0.0, 3.8, 3.6, 0.5),
}
# fmt: on
MEDIUM_ADJECTIVES = ("okay", "fine", "average", "alright")
NEGATIVE_ADJECTIVES = ("bland", "cold", "soggy", "overcooked", "disappointing", "too salty")

DISH_TEMPLATES = (
    "The {dish} was {adj}",
    "I had the {dish} and it was {adj}",
    "Their {dish} is {adj}",
    "We ordered the {dish}, which was {adj}",
    "Try the {dish}, it is {adj}",
    "My {dish} was {adj}",
    "Got the {dish} and it was {adj}",
    "You have to get the {dish}, {adj}",
)
DETAIL_TEMPLATES = (
    "The {dish} came {detail} and was {adj}",
    "Loved the {dish} {detail}",
    "The {dish}, {detail}, was {adj}",
    "Their {dish} is {detail} and {adj}",
)
PAIR_TEMPLATE = "The {dish} and the {dish2} were both {adj}"
UNPICTURED_TEMPLATES = ("We also tried the {dish}, it was {adj}", "The {dish} was {adj} too")
ASPECT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "interior": (
        "The interior is {place} with {wall} walls",
        "Love the {place} decor",
        "The decor is {place} and inviting",
    ),
    "drinks": ("The {drink} was {adj}", "Grabbed a {drink} too, {adj}", "Their {drink} is {adj}"),
    "menu board": (
        "The menu board has lots of options",
        "Check the menu board for daily specials",
        "The menu board is huge",
    ),
    "storefront": (
        "Look for the {colour} storefront",
        "The {colour} storefront is easy to spot from the road",
    ),
    "dessert display": (
        "The dessert display was {adj}",
        "Could not stop staring at the dessert case",
        "The dessert case is full of treats",
    ),
}
PLACE_ADJECTIVES = ("cozy", "bright", "modern", "rustic", "spacious", "charming")
GENERIC = (
    "Food is great",
    "Highly recommend this place",
    "Will definitely come back",
    "Great spot for a quick bite",
    "Best place in town",
    "Everything was delicious",
    "Love this place",
    "Great food and great vibes",
    "Would come again",
    "Solid spot overall",
)
UNRELATED: dict[str, tuple[str, ...]] = {
    "parking": (
        "Parking was easy",
        "Street parking only, so come early",
        "The parking lot fills up fast on weekends",
        "Plenty of parking out back",
    ),
    "service": (
        "Service was fast and friendly",
        "Our server was attentive",
        "Service was a little slow tonight",
        "The staff were super welcoming",
    ),
    "wait": (
        "We waited about twenty minutes for a table",
        "No wait at all on a weekday",
        "Expect a line at lunch time",
        "Reservations are a good idea",
    ),
    "price": (
        "Prices are reasonable",
        "A bit pricey but worth it",
        "Great value for the portion size",
        "Happy hour deals are great",
    ),
    "cleanliness": (
        "The restrooms were clean",
        "Tables were spotless",
        "The place was a bit messy",
        "Very clean restaurant",
    ),
    "location": (
        "Close to the highway",
        "Right next to the mall",
        "Located in a busy plaza",
        "Easy to get to by bus",
    ),
}
OPENERS = (
    "First time here",
    "Came here for dinner with friends",
    "Stopped by for lunch",
    "Finally tried this place",
    "Came here on a date night",
    "Back again for the third time",
    "Ordered takeout tonight",
    "Celebrated a birthday here",
)
CLOSERS = (
    "Five stars from me",
    "Can't wait to come back",
    "Ten out of ten",
    "Go hungry",
    "Worth the drive",
    "See you next week",
    "Bring your friends",
    "My new favourite spot",
)
SHORT_REVIEWS = ("Great food!", "Yum.", "Love it!", "So good.", "Tasty.", "Nice place.")
OTHER_REVIEWS = (
    "Friendly staff and quick service",
    "Fair prices and honest work",
    "They got me in and out fast",
    "Clean and well organised",
    "Open late which is convenient",
    "Helpful people at the counter",
    "A bit crowded on Saturdays",
)
OWNER_REPLIES = (
    "Thank you for your review!",
    "Thanks for visiting, see you soon!",
    "We appreciate your feedback.",
)


@dataclass(frozen=True)
class Voice:
    """A user's personal writing habits, drawn once from their style.

    Args:
        style (`str`): key in `STYLES`.
        adjectives (`tuple[str, ...]`): the user's own praise words.
        templates (`tuple[int, ...]`): indices of the `DISH_TEMPLATES` the user favours.
        topics (`tuple[str, ...]`): the `UNRELATED` topics the user writes about.
        opener, closer (`str`): the user's habitual first and last sentence.
        p_opener, p_closer, p_generic (`float`): how often those appear; p_generic is the share of
            extra sentences that are generic rather than about `topics`.
        p_skip (`float`): probability that a photographed subject gets no sentence.
        p_unpictured (`float`): probability of mentioning a menu dish that no photo shows.
    """

    style: str
    adjectives: tuple[str, ...]
    templates: tuple[int, ...]
    topics: tuple[str, ...]
    opener: str
    closer: str
    p_opener: float
    p_closer: float
    p_generic: float
    p_skip: float
    p_unpictured: float


def draw_voice(rnd: random.Random) -> Voice:
    """Draws a user's writing habits."""
    style = rnd.choices(list(STYLES), weights=(0.25, 0.25, 0.2, 0.15, 0.15))[0]
    return Voice(
        style=style,
        adjectives=tuple(rnd.sample(STYLES[style].adjectives, 4)),
        templates=tuple(rnd.sample(range(len(DISH_TEMPLATES)), 3)),
        topics=tuple(rnd.sample(sorted(UNRELATED), 2)),
        opener=rnd.choice(OPENERS),
        closer=rnd.choice(CLOSERS),
        p_opener=rnd.uniform(0.1, 0.8),
        p_closer=rnd.uniform(0.1, 0.8),
        p_generic=rnd.uniform(0.2, 0.8),
        p_skip=rnd.uniform(0.0, 0.25),
        p_unpictured=rnd.uniform(0.0, 0.4),
    )


def _adjective(rnd: random.Random, voice: Voice, rating: int) -> str:
    if rating >= 4:
        return rnd.choice(voice.adjectives)
    return rnd.choice(MEDIUM_ADJECTIVES if rating == 3 else NEGATIVE_ADJECTIVES)


def _end(rnd: random.Random, voice: Voice, sentence: str) -> str:
    return sentence + ("!" if rnd.random() < STYLES[voice.style].exclaim else ".")


def _dish_sentence(rnd, voice, rating, dishes: list[int]) -> str:
    names = [rnd.choice(DISHES[d].aliases) for d in dishes]
    adj = _adjective(rnd, voice, rating)
    if len(names) == 2:
        return PAIR_TEMPLATE.format(dish=names[0], dish2=names[1], adj=adj)
    if rnd.random() < STYLES[voice.style].detail:
        template = rnd.choice(DETAIL_TEMPLATES)
        return template.format(dish=names[0], detail=rnd.choice(DISHES[dishes[0]].details), adj=adj)
    return DISH_TEMPLATES[rnd.choice(voice.templates)].format(dish=names[0], adj=adj)


def _aspect_sentence(rnd, voice, rating, aspect: int, variant: int, decor: dict[str, int]) -> str:
    template = rnd.choice(ASPECT_TEMPLATES[ASPECTS[aspect].name])
    return template.format(
        adj=_adjective(rnd, voice, rating),
        place=rnd.choice(PLACE_ADJECTIVES),
        wall=WALL_COLORS[decor["wall"]].replace("_", " "),
        drink=DRINKS[variant][0] if variant >= 0 else "",
        colour=STOREFRONT_COLORS[decor["storefront"]][0],
    )


def write_review(
    rnd: random.Random,
    voice: Voice,
    rating: int,
    subjects: list[tuple[int, int]],
    menu: tuple[int, ...],
    decor: dict[str, int],
) -> tuple[list[str], list[tuple[int, ...]]]:
    """Writes one restaurant review about its photos.

    Args:
        rnd (`random.Random`): the generator (the caller seeds it).
        voice (`Voice`): the writer's habits.
        rating (`int`): the review's rating (1-5); it picks praise or complaint words.
        subjects (`list[tuple[int, int]]`): per photo, `(subject, variant)` where subject is a dish
            index, or `len(DISHES) + aspect index`, and variant the drink index (-1 otherwise).
        menu (`tuple[int, ...]`): the business's dishes (for dishes mentioned without a photo).
        decor (`dict[str, int]`): the business's decor indices (`wall`, `storefront`).

    Returns:
        `(sentences, describes)`: the sentences in order, and for each the positions of the photos
        it describes (empty for sentences no photo shows).
    """
    num_dishes = len(DISHES)
    groups: dict[tuple[int, int], list[int]] = {}
    for position, key in enumerate(subjects):
        groups.setdefault(key, []).append(position)
    keys = [key for key in groups if rnd.random() >= voice.p_skip]
    body: list[tuple[str, tuple[int, ...]]] = []
    dish_keys = [key for key in keys if key[0] < num_dishes]
    while dish_keys:
        pair = len(dish_keys) >= 2 and rnd.random() < 0.2
        taken, dish_keys = (dish_keys[:2], dish_keys[2:]) if pair else (dish_keys[:1], dish_keys[1:])
        sentence = _dish_sentence(rnd, voice, rating, [key[0] for key in taken])
        body.append((_end(rnd, voice, sentence), tuple(sorted(p for key in taken for p in groups[key]))))
    for key in keys:
        if key[0] >= num_dishes:
            sentence = _aspect_sentence(rnd, voice, rating, key[0] - num_dishes, key[1], decor)
            body.append((_end(rnd, voice, sentence), tuple(groups[key])))
    pictured = {key[0] for key in subjects}
    unpictured = [d for d in menu if d not in pictured]
    if unpictured and rnd.random() < voice.p_unpictured:
        sentence = rnd.choice(UNPICTURED_TEMPLATES).format(
            dish=rnd.choice(DISHES[rnd.choice(unpictured)].aliases), adj=_adjective(rnd, voice, rating)
        )
        body.append((_end(rnd, voice, sentence), ()))
    num_extra = sum(rnd.random() < STYLES[voice.style].extra / 6 for _ in range(6))  # generic + off-photo
    num_generic = sum(rnd.random() < voice.p_generic for _ in range(num_extra))
    off_photo = [sentence for topic in voice.topics for sentence in UNRELATED[topic]]
    for sentence in rnd.sample(GENERIC, num_generic) + rnd.sample(off_photo, num_extra - num_generic):
        body.append((_end(rnd, voice, sentence), ()))
    rnd.shuffle(body)
    if rnd.random() < voice.p_opener:
        body.insert(0, (voice.opener + ".", ()))
    if rnd.random() < voice.p_closer:
        body.append((_end(rnd, voice, voice.closer), ()))
    return [sentence for sentence, _ in body], [describes for _, describes in body]
