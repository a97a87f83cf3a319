"""The fixed catalogue of Gest-Synth: cuisines, dishes, non-dish aspects, colours and their names.

Everything here is constant data. A dish's visual signature is its `layout` (the arrangement drawn
by `render.py`), three named colours and a `texture`; a dish's words are its `aliases` (every phrase
a review may use to name it, the first being the menu name) and `details` (visual details a
descriptive sentence may add). Some dishes share a layout and nearly the same colours on purpose
(pizzas, red curries, maki rolls, ramen and pho-like soups), so recognising them is not trivial.
"""

from __future__ import annotations

from dataclasses import dataclass

# Named RGB colours (0-255) used by signatures and decor.
COLORS: dict[str, tuple[int, int, int]] = {
    "cheese": (242, 206, 112),
    "tomato": (196, 52, 38),
    "crust": (190, 132, 72),
    "dough": (228, 196, 150),
    "basil": (58, 132, 58),
    "pepperoni": (150, 36, 30),
    "meat": (118, 62, 40),
    "beef": (136, 70, 52),
    "chicken": (218, 168, 108),
    "fried": (206, 146, 58),
    "rice": (238, 236, 226),
    "noodle": (238, 218, 160),
    "broth_light": (226, 196, 140),
    "broth_dark": (140, 84, 46),
    "broth_red": (204, 84, 44),
    "green": (84, 158, 70),
    "lettuce": (128, 192, 84),
    "cream": (244, 238, 216),
    "chocolate": (88, 52, 32),
    "salmon": (246, 128, 88),
    "tuna": (186, 42, 60),
    "seaweed": (34, 48, 34),
    "avocado": (152, 188, 84),
    "bean": (108, 62, 42),
    "tortilla": (232, 208, 150),
    "curry_yellow": (228, 168, 44),
    "curry_red": (192, 74, 34),
    "curry_orange": (222, 120, 48),
    "curry_green": (136, 166, 72),
    "tofu": (244, 238, 212),
    "egg": (250, 214, 78),
    "berry": (168, 32, 70),
    "custard": (248, 228, 158),
    "caramel": (198, 128, 48),
    "pink": (238, 158, 170),
    "kimchi": (206, 72, 42),
    "gochujang": (178, 42, 32),
    "shrimp": (248, 150, 110),
    "lime": (178, 218, 92),
    "sauce_brown": (108, 58, 30),
    "pastry": (226, 174, 96),
    "mushroom": (158, 128, 98),
    "white": (248, 248, 246),
    "black": (32, 32, 34),
    "grey": (150, 150, 152),
    "wood": (150, 104, 64),
    "dark_wood": (92, 60, 38),
    "slate": (70, 76, 82),
    "blue": (58, 96, 168),
    "red": (176, 40, 40),
    "navy": (36, 48, 92),
    "yellow": (232, 196, 60),
    "orange": (226, 122, 40),
    "teal": (52, 140, 140),
    "sky": (170, 204, 236),
    "cola": (70, 36, 24),
    "beer": (222, 160, 40),
    "wine": (112, 20, 40),
    "latte": (196, 150, 104),
    "lemonade": (242, 236, 150),
    "matcha": (150, 186, 92),
    "bubble_tea": (206, 170, 130),
}

# Layouts drawn by render.py. The first eight are plated food, the last five are scenes.
FOOD_LAYOUTS = ("disc", "blobs", "strips", "stack", "wedge", "roll", "mound", "soup")
SCENE_LAYOUTS = ("interior", "glass", "board", "facade", "display")
LAYOUTS = FOOD_LAYOUTS + SCENE_LAYOUTS
TEXTURES = ("none", "spots", "stripes", "grain")


@dataclass(frozen=True)
class Dish:
    """One dish of the catalogue.

    Args:
        name (`str`): the menu name, also the dish's key in the ground truth.
        cuisine (`str`): key of its cuisine in `CUISINES`.
        aliases (`tuple[str, ...]`): every phrase a review uses to name it (first: the menu name).
            No alias is a substring of another dish's alias, so a sentence names one dish unambiguously.
        layout (`str`): one of `FOOD_LAYOUTS`.
        primary, secondary, tertiary (`str`): colour names in `COLORS` (base, toppings/texture, rim/crust).
        texture (`str`): one of `TEXTURES`, drawn in the secondary colour over the base.
        count (`int`): how many pieces a `blobs` or `soup` layout shows.
        details (`tuple[str, ...]`): visual details a descriptive sentence may add.
    """

    name: str
    cuisine: str
    aliases: tuple[str, ...]
    layout: str
    primary: str
    secondary: str
    tertiary: str
    texture: str
    count: int
    details: tuple[str, ...]


def _d(cuisine, name, aliases, layout, primary, secondary, tertiary, texture, count, details):
    return Dish(
        name, cuisine, (name, *aliases), layout, primary, secondary, tertiary, texture, count, details
    )


# cuisine key -> (display label, venue words for business names, secondary category)
CUISINES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "italian": ("Italian", ("Trattoria", "Osteria", "Pizzeria"), "Pizza restaurant"),
    "japanese": ("Japanese", ("Sushi Bar", "Izakaya", "Ramen House"), "Sushi restaurant"),
    "mexican": ("Mexican", ("Taqueria", "Cantina", "Cocina"), "Taco restaurant"),
    "chinese": ("Chinese", ("Kitchen", "Garden", "Dim Sum House"), "Dim sum restaurant"),
    "indian": ("Indian", ("Curry House", "Tandoor", "Masala Kitchen"), "North Indian restaurant"),
    "thai": ("Thai", ("Thai Kitchen", "Thai Bistro", "Noodle Bar"), "Noodle shop"),
    "american": ("American", ("Diner", "Grill", "Burger Joint"), "Hamburger restaurant"),
    "french": ("French", ("Bistro", "Brasserie", "Cafe"), "French restaurant"),
    "korean": ("Korean", ("BBQ", "Pocha", "Korean Kitchen"), "Korean barbecue restaurant"),
}

# One dish per line reads as a table: keep the formatter off it.
# fmt: off
DISHES: tuple[Dish, ...] = (
    # Italian
    _d("italian", "margherita pizza", ("margherita",), "disc", "cheese", "basil", "crust", "spots", 5, ("topped with fresh basil", "with a blistered crust")),
    _d("italian", "pepperoni pizza", ("pepperoni pie",), "disc", "cheese", "pepperoni", "crust", "spots", 5, ("loaded with crispy pepperoni", "with a thin crust")),
    _d("italian", "spaghetti bolognese", ("bolognese", "spaghetti"), "strips", "noodle", "tomato", "noodle", "none", 5, ("in a rich meat sauce", "with a mountain of parmesan")),
    _d("italian", "fettuccine alfredo", ("alfredo", "fettuccine"), "strips", "noodle", "cream", "noodle", "none", 5, ("in a creamy white sauce", "with cracked black pepper")),
    _d("italian", "lasagna", (), "stack", "tomato", "cheese", "noodle", "none", 5, ("with layers of melted cheese", "baked until bubbling")),
    _d("italian", "mushroom risotto", ("risotto",), "mound", "cream", "mushroom", "cream", "spots", 5, ("with plenty of mushrooms", "creamy and rich")),
    _d("italian", "tiramisu", (), "wedge", "cream", "chocolate", "latte", "grain", 5, ("dusted with cocoa", "soaked in espresso")),
    _d("italian", "bruschetta", (), "blobs", "crust", "tomato", "crust", "spots", 4, ("topped with diced tomatoes", "on grilled bread")),
    # Japanese
    _d("japanese", "salmon nigiri", ("nigiri",), "blobs", "rice", "salmon", "rice", "none", 6, ("with thick slices of salmon", "beautifully plated")),
    _d("japanese", "tuna sashimi", ("sashimi",), "blobs", "tuna", "tuna", "white", "stripes", 5, ("sliced thick", "served on ice")),
    _d("japanese", "california roll", ("california maki",), "blobs", "rice", "avocado", "seaweed", "none", 8, ("with avocado inside", "neatly cut")),
    _d("japanese", "tonkotsu ramen", ("ramen",), "soup", "broth_light", "egg", "noodle", "stripes", 3, ("with a soft boiled egg", "in a milky pork broth")),
    _d("japanese", "shrimp tempura", ("tempura",), "roll", "fried", "shrimp", "fried", "grain", 5, ("light and crunchy", "with a dipping sauce")),
    _d("japanese", "gyoza", ("potstickers",), "blobs", "dough", "fried", "dough", "none", 6, ("pan fried until golden", "with crispy edges")),
    _d("japanese", "katsu curry", ("katsu",), "mound", "curry_yellow", "fried", "rice", "stripes", 5, ("with a crispy cutlet", "over a bed of white rice")),
    _d("japanese", "mochi", ("daifuku",), "blobs", "white", "pink", "white", "none", 3, ("soft and chewy", "in pastel colours")),
    # Mexican
    _d("mexican", "street tacos", ("tacos",), "wedge", "tortilla", "meat", "lettuce", "spots", 5, ("with cilantro and onion", "on soft corn tortillas")),
    _d("mexican", "carne asada burrito", ("burrito",), "roll", "tortilla", "bean", "tortilla", "none", 5, ("stuffed with grilled steak", "the size of my forearm")),
    _d("mexican", "quesadilla", (), "wedge", "tortilla", "cheese", "crust", "spots", 5, ("oozing with cheese", "cut into neat wedges")),
    _d("mexican", "loaded nachos", ("nachos",), "disc", "fried", "cheese", "fried", "spots", 5, ("smothered in queso", "with jalapenos on top")),
    _d("mexican", "guacamole", ("guac",), "mound", "avocado", "tomato", "avocado", "grain", 5, ("made fresh at the table", "chunky and bright")),
    _d("mexican", "enchiladas", (), "roll", "curry_red", "cheese", "curry_red", "stripes", 5, ("covered in red sauce", "with melted cheese on top")),
    _d("mexican", "churros", (), "strips", "fried", "caramel", "fried", "grain", 5, ("rolled in cinnamon sugar", "with chocolate for dipping")),
    _d("mexican", "pozole", (), "soup", "broth_red", "white", "broth_red", "spots", 4, ("with hominy and shredded pork", "garnished with radish")),
    # Chinese
    _d("chinese", "kung pao chicken", ("kung pao",), "mound", "chicken", "pepperoni", "chicken", "spots", 5, ("with peanuts and dried chilies", "glossy and spicy")),
    _d("chinese", "yangzhou fried rice", ("fried rice",), "mound", "rice", "egg", "rice", "grain", 5, ("with egg and peas", "full of wok hei")),
    _d("chinese", "har gow", ("shrimp dumplings",), "blobs", "white", "shrimp", "white", "none", 4, ("with translucent wrappers", "steamed in a bamboo basket")),
    _d("chinese", "peking duck", ("roast duck",), "strips", "caramel", "white", "caramel", "stripes", 5, ("with crackly lacquered skin", "sliced at the table")),
    _d("chinese", "mapo tofu", ("mapo",), "soup", "curry_red", "tofu", "curry_red", "spots", 6, ("with silky cubes of tofu", "numbing and spicy")),
    _d("chinese", "chow mein", (), "strips", "noodle", "sauce_brown", "noodle", "none", 5, ("with crunchy vegetables", "stir fried and smoky")),
    _d("chinese", "hot and sour soup", ("hot & sour soup",), "soup", "broth_dark", "tofu", "broth_dark", "spots", 4, ("thick and peppery", "with ribbons of egg")),
    _d("chinese", "spring rolls", ("egg rolls",), "roll", "fried", "fried", "fried", "grain", 5, ("golden and crackly", "with sweet chili sauce")),
    # Indian
    _d("indian", "butter chicken", ("murgh makhani",), "soup", "curry_orange", "chicken", "curry_orange", "spots", 4, ("in a velvety tomato sauce", "with a swirl of cream")),
    _d("indian", "chicken tikka masala", ("tikka masala",), "soup", "curry_red", "chicken", "curry_red", "spots", 4, ("in a smoky red gravy", "with tender pieces of chicken")),
    _d("indian", "palak paneer", ("saag paneer",), "soup", "green", "tofu", "green", "spots", 5, ("with cubes of paneer", "in a spinach sauce")),
    _d("indian", "chicken biryani", ("biryani",), "mound", "curry_yellow", "meat", "rice", "grain", 5, ("fragrant with saffron", "with fried onions on top")),
    _d("indian", "garlic naan", ("naan",), "disc", "dough", "crust", "dough", "spots", 5, ("blistered from the tandoor", "brushed with butter")),
    _d("indian", "samosas", (), "wedge", "pastry", "green", "pastry", "grain", 5, ("with mint chutney", "flaky and crisp")),
    _d("indian", "dal tadka", ("dal",), "soup", "curry_yellow", "green", "curry_yellow", "spots", 3, ("with a tempering of cumin", "thick and comforting")),
    _d("indian", "gulab jamun", (), "blobs", "caramel", "caramel", "custard", "none", 4, ("soaked in rose syrup", "warm and sticky")),
    # Thai
    _d("thai", "pad thai", (), "strips", "curry_orange", "shrimp", "noodle", "none", 5, ("with crushed peanuts", "with a wedge of lime")),
    _d("thai", "green curry", ("gaeng keow wan",), "soup", "curry_green", "chicken", "curry_green", "spots", 4, ("with thai basil", "rich with coconut milk")),
    _d("thai", "red curry", ("panang",), "soup", "curry_red", "chicken", "curry_red", "spots", 4, ("with bamboo shoots", "creamy and fiery")),
    _d("thai", "tom yum", ("tom yum goong",), "soup", "broth_red", "shrimp", "broth_red", "spots", 3, ("with lemongrass and shrimp", "sour and spicy")),
    _d("thai", "papaya salad", ("som tam",), "strips", "lime", "tomato", "lime", "none", 5, ("with shredded green papaya", "with cherry tomatoes")),
    _d("thai", "mango sticky rice", ("sticky rice",), "mound", "rice", "curry_yellow", "rice", "stripes", 5, ("with ripe mango slices", "drizzled with coconut cream")),
    _d("thai", "massaman curry", ("massaman",), "soup", "broth_dark", "fried", "broth_dark", "spots", 3, ("with potatoes and peanuts", "warm and sweet")),
    _d("thai", "chicken satay", ("satay",), "strips", "chicken", "sauce_brown", "chicken", "stripes", 5, ("grilled on skewers", "with peanut sauce")),
    # American
    _d("american", "cheeseburger", ("burger",), "stack", "crust", "beef", "lettuce", "none", 5, ("with melted cheddar", "on a toasted brioche bun")),
    _d("american", "bbq ribs", ("ribs",), "roll", "sauce_brown", "caramel", "sauce_brown", "stripes", 5, ("falling off the bone", "glazed with smoky sauce")),
    _d("american", "french fries", ("fries",), "strips", "fried", "fried", "fried", "stripes", 5, ("crispy and salty", "piled high")),
    _d("american", "buffalo wings", ("wings",), "blobs", "curry_orange", "curry_orange", "cream", "grain", 6, ("tossed in hot sauce", "with blue cheese dip")),
    _d("american", "mac and cheese", ("mac n cheese",), "mound", "cheese", "crust", "cheese", "grain", 5, ("with a crunchy breadcrumb top", "extra cheesy")),
    _d("american", "buttermilk pancakes", ("pancakes",), "disc", "pastry", "custard", "crust", "none", 5, ("stacked with butter on top", "fluffy and golden")),
    _d("american", "caesar salad", ("caesar",), "mound", "lettuce", "cream", "lettuce", "grain", 5, ("with shaved parmesan", "with crunchy croutons")),
    _d("american", "apple pie", (), "wedge", "pastry", "caramel", "crust", "stripes", 5, ("with a lattice crust", "served warm")),
    _d("american", "new york cheesecake", ("cheesecake",), "wedge", "cream", "berry", "crust", "none", 5, ("with a berry topping", "dense and creamy")),
    # French
    _d("french", "butter croissant", ("croissant",), "roll", "pastry", "crust", "pastry", "stripes", 5, ("flaky with many layers", "fresh out of the oven")),
    _d("french", "creme brulee", ("brulee",), "disc", "custard", "caramel", "white", "grain", 5, ("with a crackly sugar top", "served in a ramekin")),
    _d("french", "steak frites", ("steak au poivre",), "roll", "beef", "fried", "beef", "stripes", 5, ("cooked medium rare", "with a peppercorn sauce")),
    _d("french", "french onion soup", ("onion soup",), "soup", "broth_dark", "cheese", "broth_dark", "grain", 2, ("under a lid of melted gruyere", "with a crouton floating on top")),
    _d("french", "quiche lorraine", ("quiche",), "wedge", "egg", "meat", "crust", "spots", 5, ("with bacon and gruyere", "with a buttery shell")),
    _d("french", "ratatouille", (), "disc", "tomato", "green", "curry_yellow", "spots", 5, ("with layered vegetables", "fanned out in a spiral")),
    _d("french", "macarons", (), "blobs", "pink", "matcha", "custard", "none", 7, ("in every colour", "light and airy")),
    _d("french", "coq au vin", (), "soup", "wine", "chicken", "wine", "spots", 3, ("braised in burgundy", "with pearl onions")),
    # Korean
    _d("korean", "bibimbap", ("dolsot",), "mound", "rice", "egg", "rice", "spots", 5, ("with a fried egg on top", "in a sizzling stone pot")),
    _d("korean", "kimchi jjigae", ("kimchi stew",), "soup", "kimchi", "tofu", "kimchi", "spots", 4, ("bubbling hot", "with pork and tofu")),
    _d("korean", "korean fried chicken", ("yangnyeom chicken",), "blobs", "gochujang", "fried", "gochujang", "grain", 6, ("double fried and sticky", "with sesame seeds")),
    _d("korean", "beef bulgogi", ("bulgogi",), "strips", "beef", "sauce_brown", "beef", "none", 5, ("with caramelised onions", "sweet and savoury")),
    _d("korean", "tteokbokki", ("rice cakes",), "blobs", "gochujang", "gochujang", "white", "none", 8, ("in a sweet spicy sauce", "chewy and sticky")),
    _d("korean", "japchae", ("glass noodles",), "strips", "mushroom", "green", "mushroom", "none", 5, ("with spinach and carrots", "slippery and savoury")),
    _d("korean", "kimbap", ("gimbap",), "blobs", "rice", "egg", "seaweed", "none", 8, ("with pickled radish", "neatly sliced")),
    _d("korean", "patbingsu", ("bingsu",), "mound", "white", "bean", "white", "spots", 5, ("piled with shaved ice", "with sweet red beans")),
)
# fmt: on


@dataclass(frozen=True)
class Aspect:
    """A non-dish subject a photo can show.

    Args:
        name (`str`): key in the ground truth.
        aliases (`tuple[str, ...]`): phrases a sentence describing it always contains.
        layout (`str`): one of `SCENE_LAYOUTS`.
        weight (`float`): how often an average user photographs it, relative to a menu dish (1.0).
    """

    name: str
    aliases: tuple[str, ...]
    layout: str
    weight: float


ASPECTS: tuple[Aspect, ...] = (
    Aspect("interior", ("interior", "decor"), "interior", 0.35),
    Aspect(
        "drinks",
        ("iced latte", "craft beer", "red wine", "lemonade", "cola", "matcha latte", "bubble tea"),
        "glass",
        0.45,
    ),
    Aspect("menu board", ("menu board",), "board", 0.12),
    Aspect("storefront", ("storefront",), "facade", 0.15),
    Aspect("dessert display", ("dessert display", "dessert case"), "display", 0.12),
)

# Drinks a `drinks` photo shows: (name as written, liquid colour).
DRINKS: tuple[tuple[str, str], ...] = (
    ("iced latte", "latte"),
    ("craft beer", "beer"),
    ("red wine", "wine"),
    ("lemonade", "lemonade"),
    ("cola", "cola"),
    ("matcha latte", "matcha"),
    ("bubble tea", "bubble_tea"),
)

# Storefront colours a review may name: (word, colour).
STOREFRONT_COLORS: tuple[tuple[str, str], ...] = (
    ("red", "red"),
    ("blue", "blue"),
    ("yellow", "yellow"),
    ("green", "green"),
    ("white", "white"),
    ("black", "black"),
    ("orange", "orange"),
    ("teal", "teal"),
)

# Decor palettes a business draws from.
TABLE_COLORS = ("wood", "dark_wood", "white", "slate", "grey", "black")
PLATE_COLORS = ("white", "black", "cream", "slate", "blue", "teal")
WALL_COLORS = ("cream", "dark_wood", "slate", "red", "teal", "white", "yellow", "navy")

# Businesses of other kinds, present only in the Google Local files and dropped by the builder.
OTHER_CATEGORIES: tuple[tuple[str, ...], ...] = (
    ("Gas station", "Convenience store"),
    ("Hair salon",),
    ("Dentist",),
    ("Laundromat",),
    ("Auto repair shop",),
    ("Hardware store",),
    ("Bank", "ATM"),
    ("Car wash",),
)
