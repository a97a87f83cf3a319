"""Gest-Synth: a generated restaurant world written in Gest's own file formats.

Real Gest photos and pretrained weights cannot be used here, so the demo, the end-to-end tests and
the quality benchmarks run on this world, whose ground truth is known. Its generative story is
fixed (not tuned to favour any method); a number measured on Gest-Synth means "on this story".

The generative story, drawn from one seed:

1. **Catalogue** (`catalog.py`, constant): 9 cuisines with 72 dishes, and 5 non-dish aspects
   (interior, drinks, menu board, storefront, dessert display). Each dish has a visual signature
   (a layout such as a round pie, pieces on a ring, strands, a layered stack, a wedge, a roll, a
   mound or a soup bowl; three colours; a texture) and words (aliases, visual details). Several
   dishes share a layout and nearly share colours (margherita vs pepperoni pizza, the red curries,
   california roll vs kimbap, the soups), so telling them apart is not trivial.
2. **Users**: cuisine tastes ~ Dirichlet(0.35) over the 9 cuisines; activity ~ LogNormal(0, 0.8);
   3-5 draws of a favourite dish from their preferred cuisines (repeats merge); 0-2 favourite
   aspects; a writing voice (one of five styles; four personal praise words; three favoured
   sentence templates; two off-photo topics such as parking or service; a habitual opener and
   closer, each with a personal frequency; how often they write generic sentences, skip a
   photographed subject, or mention a dish no photo shows);
   camera habits (zoom, brightness).
3. **Restaurants**, added until `num_reviews` review slots exist: cuisine in proportion to the
   users' total demand for it; a menu of 5 to all of its cuisine's dishes (30% add one dish of
   another cuisine); decor (table, tableware, wall and storefront colours); a photo budget of 10-60
   split into reviews of k photos, P(k) proportional to 0.45^(k-1) (2% of reviews carry 11-14
   photos; 1% of slots add a review without photos).
4. **Visits**: each review slot of a restaurant goes to a user drawn in proportion to activity x
   taste for that cuisine, one review per user and restaurant. At the visit the user photographs
   subjects drawn with replacement from the menu and aspects, a favourite dish weighted 8x a menu
   dish and a favourite aspect 10x its base rate. The rating is the style's base rating + 0.15,
   +0.4 if a favourite was photographed, + N(0, 0.7), rounded into 1-5; 7% of visits are bad nights rated
   1-3 whatever the user's habits (their texts use complaint words).
5. **Texts**: one sentence per photographed subject (unless skipped), naming it by one of its
   aliases (dishes sometimes in pairs, with a visual detail at the style's rate); drinks name the
   drink in the photo, storefronts their colour, interiors the wall colour; plus generic ("Food is
   great.") and off-photo sentences (parking, service, wait, price, cleanliness, location) at the
   style's rate, sometimes a dish that no photo shows, the user's opener and closer. 2% of reviews
   are under 5 words and 1% are empty. Reviews average about 28 words and 1.9 photos.
6. **Other businesses** (5% as many as restaurants; gas stations, salons, banks, ...) with a few
   reviews and storefront or interior photos appear only in the Google Local files, so the
   restaurant filter has something to drop.
7. **Photos**: each photo is its subject's signature with seeded jitter of colour (5%), position,
   scale (the user's zoom x U(0.85, 1.15)), rotation, lighting gradient and brightness, on the
   business's table and tableware, with uniform pixel noise (sd 2-8 grey levels), saved as a JPEG
   (default 64x64).

Files written (`write.py`): `image_review_all.json` (Gest-raw), `filter_all_t.json` (Gest-s2: the
kept reviews' image-describing sentences, user-disjoint 8:1:1 splits, `history_reviews`),
`review-Synth.json.gz` and `meta-Synth.json.gz` (Google Local 2021), `images/<pic_id>.jpg`,
`annotations.jsonl` (every photo x sentence pair of `num_annotated_reviews` reviews, label 1 when
the sentence names the photo's subject) and `ground_truth.json` (each photo's subject and cuisine,
each user's favourites and style, each business's `gmap_id`, cuisine and menu). Synth writes only
those names, and refuses a folder where one of them exists but was not written by synth (no
`ground_truth.json`, nor the marker of an interrupted synth run) unless `--overwrite` is given.

Example:

```python
>>> from gest_showcases.synth import SynthConfig, generate_world, write_world
>>> world = generate_world(SynthConfig(seed=0, num_reviews=3000))
>>> write_world(world, "gest-synth", image_size=64)
```

or `gest-showcases synth --output_dir gest-synth --num_reviews 3000` (`gest_showcases.commands.synth`).
"""

from __future__ import annotations

from gest_showcases.synth.world import SynthConfig, World, generate_world
from gest_showcases.synth.write import write_world

__all__ = ["SynthConfig", "World", "generate_world", "write_world"]
