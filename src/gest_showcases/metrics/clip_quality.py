"""How well a CLIP stand-in sees a Gest-Synth world: subject probes of its image features, subject matching of
its text features, and CLIP-Align of ground-truth explanations against explanations naming the wrong subject.

Gest-Synth knows what every photo shows (`ground_truth.json`), so a CLIP trained on the world can be checked
against it. None of this is used to train: it is read after training, to say how good the stand-in is.

Subject probes (image features only; photos of `s1` reviews, split as the dataset splits them)
    - ``nearest_centroid``: each test photo gets the subject whose centroid (mean of the L2-normalised
      features of the train photos of that subject) is most cosine-similar to its feature; the share of test
      photos whose subject that is. A test photo of a subject no train photo shows counts as wrong.
    - ``nearest_neighbour``: the subject of the most cosine-similar train photo.
    - ``majority``: the share of test photos showing the subject most train photos show (what a feature
      that tells nothing apart reaches).

    ``subject_probe`` runs them over every photo that shows a subject, ``dish_probe`` over dish photos
    only (dishes among dishes): the five non-dish aspects are told apart by their whole-frame layouts
    and would lift the first far above what the dishes alone reach.

Ground-truth explanations (text and image features)
    Each test review's ground-truth explanation is the set of its sentences that name (`SynthTruth.
    named_subjects`) a subject one of its own photos shows. Its *wrong-subject* twin is the same sentences
    with every such mention replaced by the name of another subject of the same kind (dish or aspect) that
    none of the review's photos shows, drawn at random (seeded): same wording, wrong content.

    - ``subject_match``: over every (ground-truth sentence, photo of the review showing a subject the
      sentence names), the share where the photo is more cosine-similar to the sentence than to its
      wrong-subject twin (ties count half). Chance is 0.5; a CLIP that reads dish names and sees dishes
      approaches 1.
    - ``clip_align_ground_truth`` / ``clip_align_wrong_subject`` (with a `scorer`, e.g. the explanation
      classifier of `gest-showcases distill`): CLIP-Align (`metrics.grounding.clip_align_from_embeddings`,
      x100 as the tables print it) of the ground-truth explanations and of their twins against the review's
      photos. Only a gap between the two says the metric can tell a grounded explanation from another.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from gest_showcases.data.images import UnreadableImageError, open_image
from gest_showcases.data.records import split_sentences
from gest_showcases.features.clip import ImageFeatureModel, TextFeatureModel
from gest_showcases.features.inputs import IMAGE_COLUMNS, dataset_image_paths, read_config_rows

from .grounding import Scorer, clip_align_from_embeddings
from .synth_truth import SynthTruth

logger = logging.getLogger(__name__)


def subject_probe(
    train_embeds: torch.Tensor,
    train_subjects: Sequence[str],
    test_embeds: torch.Tensor,
    test_subjects: Sequence[str],
) -> dict[str, float]:
    """Nearest-centroid, nearest-neighbour and majority-class subject accuracy (module docstring).

    Args:
        train_embeds (`torch.FloatTensor` of shape `(N, D)`), train_subjects (`N` names): labelled photos.
        test_embeds (`torch.FloatTensor` of shape `(M, D)`), test_subjects (`M` names): photos to classify.

    Returns: ``{"nearest_centroid", "nearest_neighbour", "majority"}`` accuracies in [0, 1], and
        ``train_photos``, ``test_photos``, ``subjects`` (distinct train subjects).
    """
    if len(train_embeds) != len(train_subjects) or len(test_embeds) != len(test_subjects):
        raise ValueError("each photo needs one subject")
    if not len(train_subjects) or not len(test_subjects):
        raise ValueError("the subject probe needs train and test photos")
    names = sorted(set(train_subjects))
    index = {name: i for i, name in enumerate(names)}
    train_labels = torch.tensor([index[s] for s in train_subjects])
    # -1 never equals a predicted index: a subject unseen in training is always a miss.
    test_labels = torch.tensor([index.get(s, -1) for s in test_subjects])
    train = torch.nn.functional.normalize(train_embeds.float(), dim=-1)
    test = torch.nn.functional.normalize(test_embeds.float(), dim=-1)
    centroids = torch.zeros(len(names), train.shape[1]).index_add_(0, train_labels, train)
    centroids = torch.nn.functional.normalize(centroids, dim=-1)  # [S, D]
    by_centroid = (test @ centroids.T).argmax(dim=1)
    by_neighbour = train_labels[(test @ train.T).argmax(dim=1)]
    majority = torch.bincount(train_labels, minlength=len(names)).argmax()
    return {
        "nearest_centroid": (by_centroid == test_labels).float().mean().item(),
        "nearest_neighbour": (by_neighbour == test_labels).float().mean().item(),
        "majority": (test_labels == majority).float().mean().item(),
        "train_photos": len(train_subjects),
        "test_photos": len(test_subjects),
        "subjects": len(names),
    }


def swap_subjects(sentence: str, truth: SynthTruth, keep: frozenset[str], rng: random.Random) -> str:
    """`sentence` with every mention of a subject in `keep` replaced by another subject's name.

    The replacement is a subject of the same kind (dish or aspect) outside `keep`, drawn from `rng`, one per
    replaced subject (its first alias, the catalogue name); mentions of subjects outside `keep` stay.
    """
    choices = {
        kind: sorted(s for s, k in truth.subject_kinds.items() if k == kind and s not in keep)
        for kind in ("dish", "aspect")
    }
    swapped: dict[str, str] = {}

    def replace(match) -> str:
        subject = truth.alias_subjects[" ".join(match.group().lower().split())]  # SynthTruth's alias key
        pool = choices[truth.subject_kinds[subject]]
        if subject not in keep or not pool:
            return match.group()
        if subject not in swapped:
            swapped[subject] = rng.choice(pool)
        return swapped[subject]

    return truth.pattern.sub(replace, sentence)


@dataclass
class GroundTruthExplanations:
    """Ground-truth explanations of reviews and their wrong-subject twins (module docstring).

    Args:
        pics (`list[list[str]]`): each review's photos.
        sentences (`list[list[str]]`): each review's ground-truth sentences.
        twins (`list[list[str]]`): the same sentences naming other subjects.
        matches (`list[tuple[int, int, str]]`): (review, sentence index in it, photo) for every sentence and
            photo of the review whose subject the sentence names.
    """

    pics: list[list[str]]
    sentences: list[list[str]]
    twins: list[list[str]]
    matches: list[tuple[int, int, str]]


def ground_truth_explanations(
    reviews: Sequence[tuple[str, Sequence[str]]], truth: SynthTruth, seed: int = 0
) -> GroundTruthExplanations:
    """The ground-truth explanation of each `(review text, photos)` that has one, and its twin."""
    rng = random.Random(seed)
    out = GroundTruthExplanations([], [], [], [])
    for text, pics in reviews:
        shown = {pic: truth.pic_subjects.get(pic) for pic in pics}
        keep = frozenset(s for s in shown.values() if s is not None)
        kept = [(s, set(truth.named_subjects(s)) & keep) for s in split_sentences(text)]
        kept = [(sentence, named) for sentence, named in kept if named]
        if not kept:
            continue
        review = len(out.pics)
        out.pics.append(list(pics))
        out.sentences.append([sentence for sentence, _ in kept])
        out.twins.append([swap_subjects(sentence, truth, keep, rng) for sentence, _ in kept])
        out.matches.extend(
            (review, number, pic)
            for number, (_, named) in enumerate(kept)
            for pic, subject in shown.items()
            if subject in named
        )
    return out


def subject_match(
    explanations: GroundTruthExplanations,
    image_embeds: Mapping[str, torch.Tensor],
    sentence_embeds: Mapping[str, torch.Tensor],
) -> float:
    """Share of `explanations.matches` whose photo is closer to the sentence than to its twin (ties: half)."""
    pairs = [
        (pic, explanations.sentences[review][number], explanations.twins[review][number])
        for review, number, pic in explanations.matches
    ]
    if not pairs:
        return float("nan")
    images = torch.stack([image_embeds[pic] for pic, _, _ in pairs])  # [P, D]
    right = torch.stack([sentence_embeds[s] for _, s, _ in pairs])
    wrong = torch.stack([sentence_embeds[t] for _, _, t in pairs])
    right_score, wrong_score = (images * right).sum(-1), (images * wrong).sum(-1)
    return ((right_score > wrong_score).float() + 0.5 * (right_score == wrong_score).float()).mean().item()


def read_photo_embeddings(
    dataset: str | Path, rows: list[dict], image_model: ImageFeatureModel, images: str | Path | None
) -> dict[str, torch.Tensor]:
    """pic id -> L2-normalised image feature, for every readable photo of `rows` (their own `pics`)."""
    files = dataset_image_paths(dataset, rows, images)
    pics = list(dict.fromkeys(pic for row in rows for pic in row["pics"]))
    ids, pixels = [], []
    for pic in pics:
        try:
            pixels.append(image_model.preprocessing.pil_to_uint8(open_image(files[pic])))
            ids.append(pic)
        except UnreadableImageError as error:
            logger.warning("skipping unreadable image %s", error)
    embeds = torch.cat([image_model.encode(batch) for batch in torch.stack(pixels).split(256)])
    return dict(zip(ids, torch.nn.functional.normalize(embeds, dim=-1), strict=True))


def clip_quality(
    image_model: ImageFeatureModel,
    text_model: TextFeatureModel,
    dataset: str | Path,
    truth: SynthTruth,
    images: str | Path | None = None,
    scorer: Scorer | None = None,
    seed: int = 0,
) -> dict:
    """Every measure of the module docstring for a CLIP on a built Gest-Synth dataset.

    Args:
        image_model, text_model: the CLIP (`load_clip`).
        dataset (`str` or `Path`): built dataset folder; its `s1` train and test splits are read.
        truth (`SynthTruth`): the world's ground truth.
        images (`str` or `Path`, *optional*): the folder the dataset was built with (path policy of
            `dataset_image_paths`).
        scorer (`Callable`, *optional*): CLIP-Align's scorer (`clip_align_from_embeddings`); without it the
            CLIP-Align entries are left out.
        seed (`int`): seed of the twins' replacement subjects.

    Returns: ``{"subject_probe": {...}, "dish_probe": {...}, "subject_match": float, "ground_truth_reviews": int,
        "match_pairs": int}`` plus ``clip_align_ground_truth`` and ``clip_align_wrong_subject`` with a scorer.
    """
    rows = [
        row
        for row in read_config_rows(dataset, "s1", columns=["review_text", *IMAGE_COLUMNS])
        if row["split"] in ("train", "test")
    ]
    embeds = read_photo_embeddings(dataset, rows, image_model, images)

    def probe(kinds: tuple[str, ...]) -> dict[str, float]:
        labelled = {
            split: [
                (pic, truth.pic_subjects[pic])
                for row in rows
                if row["split"] == split
                for pic in row["pics"]
                if pic in embeds and truth.subject_kinds.get(truth.pic_subjects.get(pic)) in kinds
            ]
            for split in ("train", "test")
        }
        return subject_probe(
            torch.stack([embeds[pic] for pic, _ in labelled["train"]]),
            [subject for _, subject in labelled["train"]],
            torch.stack([embeds[pic] for pic, _ in labelled["test"]]),
            [subject for _, subject in labelled["test"]],
        )

    explanations = ground_truth_explanations(
        [
            (row["review_text"], [pic for pic in row["pics"] if pic in embeds])
            for row in rows
            if row["split"] == "test"
        ],
        truth,
        seed,
    )
    texts = list(dict.fromkeys(s for group in (*explanations.sentences, *explanations.twins) for s in group))
    sentence_embeds = dict(zip(texts, text_model.encode(texts), strict=True)) if texts else {}
    result = {
        "subject_probe": probe(("dish", "aspect")),
        # Dishes alone: the five aspects (interior, storefront, ...) are easy and would hide the dishes.
        "dish_probe": probe(("dish",)),
        "subject_match": subject_match(explanations, embeds, sentence_embeds),
        "ground_truth_reviews": len(explanations.pics),
        "match_pairs": len(explanations.matches),
    }
    if scorer is not None:
        photo_sets = [torch.stack([embeds[pic] for pic in pics]) for pics in explanations.pics]
        for key, groups in (("ground_truth", explanations.sentences), ("wrong_subject", explanations.twins)):
            sentences = [torch.stack([sentence_embeds[s] for s in group]) for group in groups]
            align = clip_align_from_embeddings(photo_sets, sentences, scorer)["clip_align"]
            result[f"clip_align_{key}"] = 100 * align
    return result
