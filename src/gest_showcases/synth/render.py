"""Procedural photos of Gest-Synth, rendered in batches with numpy.

`photo_params` turns a world's photos into per-photo parameter arrays (signature colours from the
catalogue, decor from the business, camera habits from the user, plus seeded jitter);
`render_batch` draws a batch of them at once: every pixel operation runs on `[B, S, S]` arrays, one
layout group at a time, so no Python loop touches a pixel. Noise comes from a generator seeded by
`(seed, batch index)` and batches have a fixed size, so the bytes do not depend on how many
processes render.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from gest_showcases.synth.catalog import (
    ASPECTS,
    COLORS,
    DISHES,
    DRINKS,
    LAYOUTS,
    PLATE_COLORS,
    SCENE_LAYOUTS,
    STOREFRONT_COLORS,
    TABLE_COLORS,
    TEXTURES,
    WALL_COLORS,
)

COLOR_NAMES = tuple(COLORS)
PALETTE = np.array([COLORS[name] for name in COLOR_NAMES], dtype=np.float32)  # [K, 3]
JPEG_QUALITY = 90


def _color(name: str) -> int:
    return COLOR_NAMES.index(name)


def _subject_tables() -> dict[str, np.ndarray]:
    """Per-subject layout, texture, count and colour indices; scene colours are filled per photo."""
    layout = [LAYOUTS.index(d.layout) for d in DISHES] + [LAYOUTS.index(a.layout) for a in ASPECTS]
    texture = [TEXTURES.index(d.texture) for d in DISHES] + [0] * len(ASPECTS)
    count = [d.count for d in DISHES] + [5] * len(ASPECTS)
    colors = [[_color(d.primary), _color(d.secondary), _color(d.tertiary)] for d in DISHES]
    colors += [[_color("white")] * 3] * len(ASPECTS)
    return {
        "layout": np.array(layout),
        "texture": np.array(texture),
        "count": np.array(count),
        "colors": np.array(colors),  # [num_subjects, 3]
    }


def photo_params(world, seed: int) -> dict[str, np.ndarray]:
    """Rendering parameters of every photo of `world` (a `World`), one row per photo.

    Returns:
        `dict[str, np.ndarray]` with `layout`, `texture`, `count` (`[N]` int), `primary`, `secondary`,
        `tertiary`, `table`, `plate` (`[N, 3]` float RGB), and camera/lighting fields `cx`, `cy`,
        `scale`, `angle`, `gain`, `slope`, `slope_dir`, `noise`, `phase` (`[N]` or `[N, 4]` float).
    """
    rng = np.random.default_rng([seed, 1])
    tables = _subject_tables()
    subject = np.array([p.subject for p in world.photos], dtype=np.int64)
    variant = np.array([p.variant for p in world.photos], dtype=np.int64)
    business = np.array([world.reviews[p.review].business for p in world.photos], dtype=np.int64)
    user = np.array([world.reviews[p.review].user for p in world.photos], dtype=np.int64)
    decor = {
        k: np.array([b.decor[k] for b in world.businesses]) for k in ("table", "plate", "wall", "storefront")
    }
    table_idx = np.array([_color(c) for c in TABLE_COLORS])[decor["table"][business]]
    plate_idx = np.array([_color(c) for c in PLATE_COLORS])[decor["plate"][business]]
    wall_idx = np.array([_color(c) for c in WALL_COLORS])[decor["wall"][business]]
    front_idx = np.array([_color(c) for _, c in STOREFRONT_COLORS])[decor["storefront"][business]]
    drink_idx = np.array([_color(c) for _, c in DRINKS])[np.maximum(variant, 0)]
    colors = tables["colors"][subject].copy()  # [N, 3]
    num_dishes = len(DISHES)
    scene = {a.name: num_dishes + i for i, a in enumerate(ASPECTS)}

    def fixed(name: str) -> np.ndarray:
        return np.full_like(wall_idx, _color(name))

    scene_colors = {  # (primary, secondary, tertiary) of each scene
        "interior": (wall_idx, table_idx, fixed("custard")),
        "drinks": (drink_idx, fixed("white"), fixed("cream")),
        "menu board": (wall_idx, fixed("black"), fixed("white")),
        "storefront": (front_idx, fixed("white"), fixed("sky")),
        "dessert display": (wall_idx, fixed("pink"), fixed("chocolate")),
    }
    for name, (p, s, t) in scene_colors.items():
        rows = subject == scene[name]
        colors[rows] = np.stack([p, s, t], axis=1)[rows]
    n = len(subject)
    is_food = subject < num_dishes
    zoom = np.array([u.zoom for u in world.users], dtype=np.float32)[user]
    brightness = np.array([u.brightness for u in world.users], dtype=np.float32)[user]
    jitter = rng.normal(1.0, 0.05, size=(n, 3, 3)).astype(np.float32)  # per-photo colour jitter
    return {
        "layout": tables["layout"][subject],
        "texture": tables["texture"][subject],
        "count": tables["count"][subject],
        "primary": PALETTE[colors[:, 0]] * jitter[:, 0],
        "secondary": PALETTE[colors[:, 1]] * jitter[:, 1],
        "tertiary": PALETTE[colors[:, 2]] * jitter[:, 2],
        "table": PALETTE[table_idx] * rng.normal(1.0, 0.04, size=(n, 3)).astype(np.float32),
        "plate": PALETTE[plate_idx],
        "cx": rng.uniform(-0.15, 0.15, n).astype(np.float32),
        "cy": rng.uniform(-0.15, 0.15, n).astype(np.float32),
        "scale": (0.8 * zoom * rng.uniform(0.85, 1.15, n)).astype(np.float32),
        "angle": np.where(is_food, rng.uniform(0, 2 * np.pi, n), rng.uniform(-0.12, 0.12, n)).astype(
            np.float32
        ),
        "gain": (brightness * rng.uniform(0.85, 1.15, n)).astype(np.float32),
        "slope": rng.uniform(0.0, 0.25, n).astype(np.float32),
        "slope_dir": rng.uniform(0, 2 * np.pi, n).astype(np.float32),
        "noise": rng.uniform(2.0, 8.0, n).astype(np.float32),
        "phase": rng.uniform(0, 2 * np.pi, (n, 4)).astype(np.float32),
    }


# Colour slots: painters write a slot index per pixel (uint8), `render_batch` turns slots into colours
# with one gather at the end. Shaded variants are slots of their own.
SLOTS = (
    "table",
    "plate",
    "plate_dark",
    "primary",
    "secondary",
    "tertiary",
    "primary_dark",
    "primary_darker",
    "primary_light",
    "secondary_dark",
    "tertiary_light",
    "sky",
    "sky_dark",
    "case",
    "grey",
    "custard",
)
S_ = {name: np.uint8(i) for i, name in enumerate(SLOTS)}
BAND_SLOTS = np.array(
    [S_["primary"], S_["secondary"], S_["tertiary"], S_["secondary"], S_["primary"]], dtype=np.uint8
)
CAKE_SLOTS = np.array([S_["secondary"], S_["tertiary"], S_["custard"]], dtype=np.uint8)


def _slot_colors(p: dict[str, np.ndarray]) -> np.ndarray:
    """Per-photo colour of every slot, `[B, len(SLOTS), 3]`."""
    p1, p2, p3 = p["primary"], p["secondary"], p["tertiary"]
    ones = np.ones_like(p1)
    fixed = {name: ones * PALETTE[COLOR_NAMES.index(name)] for name in ("sky", "grey", "custard", "white")}
    columns = {
        "table": p["table"],
        "plate": p["plate"],
        "plate_dark": p["plate"] * 0.8,
        "primary": p1,
        "secondary": p2,
        "tertiary": p3,
        "primary_dark": p1 * 0.6,
        "primary_darker": p1 * 0.35,
        "primary_light": np.minimum(p1 * 1.4, 255),
        "secondary_dark": p2 * 0.82,
        "tertiary_light": np.minimum(p3 * 1.1, 255),
        "sky": fixed["sky"],
        "sky_dark": fixed["sky"] * 0.65,
        "case": fixed["white"] * 0.9,
        "grey": fixed["grey"],
        "custard": fixed["custard"],
    }
    return np.stack([columns[name] for name in SLOTS], axis=1).astype(np.float32)


def _paint(slot: np.ndarray, mask: np.ndarray, value) -> None:
    """Sets `slot` to `value` (a slot index, or a uint8 array of them) where `mask` is set, in place.

    Arithmetic on uint8 (wrapping mod 256) instead of a masked copy: `slot += (value - slot) * mask`
    costs a few vector passes, where `np.copyto(..., where=mask)` is an order of magnitude slower.
    """
    delta = np.subtract(value, slot, dtype=np.uint8)
    delta *= mask
    slot += delta


def _texture(u, v, r, p, slot, shade, region) -> None:
    """Paints the secondary colour (spots, stripes) or grain over `region` of food photos.

    Rows are sorted by texture within a layout (see `render_batch`), so each pattern is computed
    only on the contiguous slice of rows that wear it.
    """
    bounds = np.searchsorted(p["texture"], np.arange(len(TEXTURES) + 1))
    for kind in range(1, len(TEXTURES)):
        a, b = bounds[kind], bounds[kind + 1]
        if a == b:
            continue
        uu, vv, ph, area = u[a:b], v[a:b], p["phase"][a:b, :, None, None], region[a:b]
        if TEXTURES[kind] == "spots":
            pattern = (np.sin(10 * uu + ph[:, 0]) * np.sin(10 * vv + ph[:, 1]) > 0.55) & (r[a:b] < 0.66)
        elif TEXTURES[kind] == "stripes":
            pattern = np.sin(16 * (uu * np.cos(ph[:, 2]) + vv * np.sin(ph[:, 2]))) > 0.5
        else:  # grain: a speckle of the secondary colour and a brightness ripple
            grain = np.sin(23 * uu + ph[:, 3]) * np.sin(19 * vv + ph[:, 0]) + np.sin(31 * (uu + vv))
            shade[a:b] *= 1 + 0.06 * grain * area
            pattern = grain > 1.3
        _paint(slot[a:b], area & pattern, S_["secondary"])


def _circles(u, v, count, ring: float, radius: np.ndarray):
    """Union of `count` circles of `radius` evenly spaced on a ring (`[B, S, S]` bool) and their centres."""
    inside = np.zeros(u.shape, dtype=bool)
    core = np.zeros(u.shape, dtype=bool)
    r2 = (radius**2).astype(np.float32)[:, None, None]
    for i in range(int(count.max())):
        angle = (2 * np.pi * i / np.maximum(count, 1) + 0.3).astype(np.float32)
        active = (i < count)[:, None, None]
        dist2 = (u - ring * np.cos(angle)[:, None, None]) ** 2 + (
            v - ring * np.sin(angle)[:, None, None]
        ) ** 2
        inside |= active & (dist2 < r2)
        core |= active & (dist2 < 0.36 * r2)
    return inside, core


def _food(u, v, r, p, layout: str, slot, shade) -> None:
    """Paints a plated dish: tableware, then the food of `layout`, then its texture."""
    if layout in ("soup", "mound"):  # a bowl with a shadowed inside
        _paint(slot, r < 0.95, S_["plate"])
        _paint(slot, r < 0.82, S_["plate_dark"])
    else:  # a plate with a darker rim
        _paint(slot, r < 1.0, S_["plate_dark"])
        _paint(slot, r < 0.88, S_["plate"])
    if layout == "disc":
        body = r < 0.78
        _paint(slot, body, S_["primary"])
        _paint(slot, body & (r > 0.68), S_["tertiary"])
        _texture(u, v, r, p, slot, shade, body & (r <= 0.68))
    elif layout == "blobs":
        count = p["count"]
        radius = np.clip(0.45 * np.sin(np.pi / np.maximum(count, 3)), 0.12, 0.3)
        body, core = _circles(u, v, count, 0.5, radius)
        _paint(slot, body, S_["primary"])
        _paint(slot, core, S_["secondary"])
        _texture(u, v, r, p, slot, shade, core)
    elif layout == "strips":
        body = r < 0.72
        strands = np.sin(14 * u + 2.5 * np.sin(4 * v + p["phase"][:, 0, None, None])) > -0.2
        _paint(slot, body, S_["secondary"])
        _paint(slot, body & strands, S_["primary"])
    elif layout == "stack":
        body = (u / 0.8) ** 4 + (v / 0.6) ** 4 < 1
        band = np.clip((v + 0.6) / 0.24, 0, 4).astype(np.uint8)
        _paint(slot, body, BAND_SLOTS[band])
    elif layout == "wedge":
        body = (np.abs(np.arctan2(v, u)) < 0.45) & (r < 0.85) & (r > 0.05)
        _paint(slot, body, S_["primary"])
        _paint(slot, body & (r > 0.72), S_["tertiary"])
        _texture(u, v, r, p, slot, shade, body & (r <= 0.72))
    elif layout == "roll":
        body = (u / 0.85) ** 2 + (v / 0.34) ** 2 < 1
        _paint(slot, body, S_["primary"])
        _paint(slot, body & (np.abs(v) < 0.1), S_["secondary"])
        _texture(u, v, r, p, slot, shade, body & (np.abs(v) >= 0.1))
    elif layout == "mound":  # a dome: brighter at the top
        body = r < 0.68
        _paint(slot, body, S_["primary"])
        shade *= 1 + (0.15 - 0.4 * r) * body
        _texture(u, v, r, p, slot, shade, body)
    else:  # soup: swirled liquid, toppings on a ring, noodles when the texture is stripes
        body = r < 0.8
        _paint(slot, body, S_["primary"])
        shade *= 1 + 0.08 * np.sin(6 * np.arctan2(v, u) + 5 * r) * body
        noodles = (
            body
            & (p["texture"] == TEXTURES.index("stripes"))[:, None, None]
            & (np.sin(20 * r) > 0.6)
            & (u > 0)
        )
        _paint(slot, noodles, S_["tertiary"])
        toppings, _ = _circles(u, v, p["count"], 0.42, np.full(len(u), 0.16, dtype=np.float32))
        _paint(slot, toppings, S_["secondary"])


def _scene(u, v, r, p, layout: str, slot, shade) -> None:
    """Paints a non-dish scene (the photo's whole frame, or a glass on the table)."""
    if layout == "interior":
        slot.fill(S_["primary"])
        _paint(slot, v > 0.35, S_["secondary_dark"])
        windows = (np.sin(5 * u + p["phase"][:, 0, None, None]) > 0.5) & (v > -0.5) & (v < 0.2)
        _paint(slot, windows, S_["sky"])
        lamps = (u**2 + (v + 0.7) ** 2 < 0.0144) | ((np.abs(u) - 0.6) ** 2 + (v + 0.7) ** 2 < 0.0144)
        _paint(slot, lamps, S_["tertiary_light"])
    elif layout == "glass":
        _paint(slot, (np.abs(u) < 0.3) & (np.abs(v) < 0.75), S_["secondary_dark"])
        _paint(slot, (np.abs(u) < 0.27) & (v > -0.35) & (v < 0.72), S_["primary"])
        _paint(slot, (np.abs(u) < 0.27) & (v > -0.45) & (v <= -0.35), S_["tertiary"])
        _paint(slot, (u > -0.22) & (u < -0.16) & (np.abs(v) < 0.6), S_["primary_light"])
    elif layout == "board":
        slot.fill(S_["primary"])
        _paint(slot, (np.abs(u) < 0.8) & (np.abs(v) < 0.7), S_["secondary"])
        text = (np.abs(u) < 0.65) & (np.abs(v) < 0.6) & (np.sin(28 * v) > 0.4)
        _paint(slot, text & (np.sin(9 * u + p["phase"][:, 0, None, None]) > -0.4), S_["tertiary"])
    elif layout == "facade":
        slot.fill(S_["primary"])
        _paint(slot, v < -0.55, S_["tertiary"])
        awning = (v >= -0.55) & (v < -0.3)
        stripe = np.sin(14 * u) > 0
        _paint(slot, awning & stripe, S_["secondary"])
        _paint(slot, awning & ~stripe, S_["primary_dark"])
        _paint(slot, (np.abs(u) < 0.18) & (v > 0.0) & (v < 0.8), S_["primary_darker"])
        _paint(slot, (np.abs(u) > 0.3) & (np.abs(u) < 0.8) & (v > -0.15) & (v < 0.45), S_["sky_dark"])
        _paint(slot, v >= 0.8, S_["grey"])
    else:  # display: a glass case with three shelves of cakes in alternating colours
        slot.fill(S_["primary"])
        inside = np.abs(u) < 0.9
        _paint(slot, inside & (v > -0.7) & (v < 0.75), S_["case"])
        column = np.floor((u + 0.9) / 0.3)
        cell_u = (u + 0.9) - 0.3 * column - 0.15
        cakes = CAKE_SLOTS[np.mod(column, 3).astype(np.intp)]
        for shelf in (-0.35, 0.15, 0.6):
            _paint(slot, (np.abs(v - shelf) < 0.02) & inside, S_["sky_dark"])
            _paint(slot, (cell_u**2 + (v - shelf + 0.1) ** 2 < 0.01) & inside, cakes)


def render_batch(params: dict[str, np.ndarray], size: int, seed: int, batch_index: int) -> np.ndarray:
    """Renders a batch of photos.

    Args:
        params (`dict[str, np.ndarray]`): rows of `photo_params` for this batch (`B` rows).
        size (`int`): image side in pixels.
        seed (`int`), batch_index (`int`): seed the batch's pixel noise.

    Returns:
        `np.ndarray` of shape `[B, size, size, 3]`, dtype uint8.
    """
    # Sorted by layout then texture, each group is a contiguous slice: painters work on views in place.
    order = np.lexsort((params["texture"], params["layout"]))
    params = {k: v[order] for k, v in params.items()}
    batch = len(order)
    lin = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    grid_y, grid_x = np.meshgrid(lin, lin, indexing="ij")  # [S, S]
    x = grid_x[None] - params["cx"][:, None, None]  # [B, S, S]
    y = grid_y[None] - params["cy"][:, None, None]
    cos, sin = np.cos(params["angle"])[:, None, None], np.sin(params["angle"])[:, None, None]
    scale = params["scale"][:, None, None]
    u = (cos * x + sin * y) / scale
    v = (-sin * x + cos * y) / scale
    r = np.sqrt(u * u + v * v)
    slot = np.zeros(u.shape, dtype=np.uint8)  # every pixel starts as the table
    shade = np.ones(u.shape, dtype=np.float32)
    bounds = np.searchsorted(params["layout"], np.arange(len(LAYOUTS) + 1))
    for index, layout in enumerate(LAYOUTS):
        a, b = bounds[index], bounds[index + 1]
        if a == b:
            continue
        draw = _scene if layout in SCENE_LAYOUTS else _food
        draw(
            u[a:b], v[a:b], r[a:b], {k: val[a:b] for k, val in params.items()}, layout, slot[a:b], shade[a:b]
        )
    # wood grain on the table only, then a lighting gradient and the camera's gain over everything
    wood = 0.05 * np.sin(7 * (grid_x[None] * cos + grid_y[None] * sin) + params["phase"][:, 1, None, None])
    shade *= 1 + wood * (slot == S_["table"])
    direction = grid_x[None] * np.cos(params["slope_dir"])[:, None, None]
    direction += grid_y[None] * np.sin(params["slope_dir"])[:, None, None]
    shade *= params["gain"][:, None, None] * (1 + params["slope"][:, None, None] * direction)
    colors = _slot_colors(params).reshape(-1, 3)  # [B * len(SLOTS), 3]
    flat = slot.astype(np.int32) + (np.arange(batch, dtype=np.int32) * len(SLOTS))[:, None, None]
    img = np.take(colors, flat, axis=0)  # [B, S, S, 3]
    img *= shade[..., None]
    # sensor noise: uniform with the photo's standard deviation, shared by the three channels;
    # +0.5 makes the truncating cast below round to nearest
    noise = np.random.default_rng([seed, 2, batch_index]).random(u.shape, dtype=np.float32)
    noise = (noise - 0.5) * (np.sqrt(12.0, dtype=np.float32) * params["noise"][:, None, None]) + 0.5
    img += noise[..., None]
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)[np.argsort(order)]


def encode_jpeg(pixels: np.ndarray) -> bytes:
    """Baseline JPEG bytes of one `[S, S, 3]` uint8 image (no optimisation pass, so deterministic)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()
