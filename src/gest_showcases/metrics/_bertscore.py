"""BERTScore's encoder and greedy matching, batched (the torch half of `metrics.text.bert_score`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from gest_showcases.model_folders import load_whole, loading
from gest_showcases.tensors import pad_ragged


class BertScorer:
    """BERTScore's encoder, loaded once, and each text's token embeddings, computed once until `forget`: `evaluate`
    scores every system against the same references, encoded once (`prepare` encodes texts in batches sorted by
    length). `per_example` is `metrics.text.bert_score`'s computation.
    """

    def __init__(self, model_path: str | Path, num_layers: int | None, batch_size: int = 64, device: str = "cpu"):
        # load_whole: weights that do not fit the encoder were filled with random values, and scored (95.78 from a
        # random encoder, session 43's review).
        with loading("--bertscore_model", model_path, failure="not a loadable encoder"):
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_path), trust_remote_code=False)
            self.model = load_whole(AutoModel, str(model_path), "--bertscore_model", trust_remote_code=False)
        self.model = self.model.to(device).eval()
        # A tokenizer saved without `model_max_length` says 1e30, which truncation cannot take; the positions bound it.
        positions = getattr(self.model.config, "max_position_embeddings", None)
        self.max_length = min(self.tokenizer.model_max_length, positions or self.tokenizer.model_max_length)
        self.layer = self.model.config.num_hidden_layers if num_layers is None else num_layers
        if not 0 <= self.layer <= self.model.config.num_hidden_layers:
            raise ValueError(
                f"num_layers={self.layer} is outside 0..{self.model.config.num_hidden_layers} for {model_path}"
            )
        self.batch_size, self.device = batch_size, device
        self._stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def prepare(self, texts: Sequence[str]) -> None:
        """Embed every text not embedded yet: text -> (L2-normalised token embeddings [T, D], token weights [T]:
        0 for [CLS]/[SEP])."""
        sentences = sorted(set(texts) - self._stats.keys())
        if not sentences:
            return
        tokenizer = self.tokenizer
        special = torch.tensor([i for i in (tokenizer.cls_token_id, tokenizer.sep_token_id) if i is not None])
        encoded = [
            torch.tensor(ids)
            for ids in tokenizer(
                [s.strip() for s in sentences],
                add_special_tokens=True,
                truncation=True,
                max_length=self.max_length,
            )["input_ids"]
        ]
        order = sorted(range(len(sentences)), key=lambda i: -len(encoded[i]))  # less padding per batch
        for start in tqdm(range(0, len(order), self.batch_size), desc="BERTScore encode", leave=False):
            batch = order[start : start + self.batch_size]
            # Token ids [B, T] and their real positions.
            ids, mask = pad_ragged([encoded[i] for i in batch], padding_value=tokenizer.pad_token_id or 0)
            hidden = self.model(
                input_ids=ids.to(self.device), attention_mask=mask.long().to(self.device), output_hidden_states=True
            ).hidden_states[self.layer]
            hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu()  # [B, T, D]
            for row, i in enumerate(batch):
                tokens = encoded[i]
                self._stats[sentences[i]] = (hidden[row, : len(tokens)], (~torch.isin(tokens, special)).float())

    def forget(self, texts: Iterable[str]) -> None:
        """Drop the embeddings of `texts` (a scored system's outputs): a text's tokens take `T x D` floats."""
        for text in texts:
            self._stats.pop(text, None)

    def per_example(self, hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, torch.Tensor]:
        """Per-example BERTScore precision, recall and F1 tensors [N] (see `metrics.text.bert_score`)."""
        self.prepare([*hypotheses, *references])
        stats, batch_size = self._stats, self.batch_size
        scores: dict[str, list[torch.Tensor]] = {"precision": [], "recall": [], "f1": []}
        for start in range(0, len(hypotheses), batch_size):
            hyp = [stats[s] for s in hypotheses[start : start + batch_size]]
            ref = [stats[s] for s in references[start : start + batch_size]]
            # Embeddings [B, T, D], their real positions [B, T] and the token weights [B, T] (T: Th, then Tr).
            (hyp_emb, hyp_valid), (hyp_w, _) = pad_ragged([e for e, _ in hyp]), pad_ragged([w for _, w in hyp])
            (ref_emb, ref_valid), (ref_w, _) = pad_ragged([e for e, _ in ref]), pad_ragged([w for _, w in ref])
            sim = hyp_emb @ ref_emb.transpose(1, 2)  # [B, Th, Tr]
            sim = sim.masked_fill(~(hyp_valid[:, :, None] & ref_valid[:, None, :]), float("-inf"))
            best_for_hyp = sim.max(dim=2).values.masked_fill(~hyp_valid, 0.0)  # [B, Th]
            best_for_ref = sim.max(dim=1).values.masked_fill(~ref_valid, 0.0)  # [B, Tr]
            hyp_total, ref_total = hyp_w.sum(1), ref_w.sum(1)
            defined = (hyp_total > 0) & (ref_total > 0)  # an empty side scores 0, as in bert_score
            precision = torch.where(defined, (best_for_hyp * hyp_w).sum(1) / hyp_total.clamp_min(1e-12), 0.0)
            recall = torch.where(defined, (best_for_ref * ref_w).sum(1) / ref_total.clamp_min(1e-12), 0.0)
            total = precision + recall
            f1 = torch.where(total != 0, 2 * precision * recall / torch.where(total != 0, total, 1.0), 0.0)
            for key, value in zip(scores, (precision, recall, f1), strict=True):
                scores[key].append(value)
        return {key: torch.cat(values) for key, values in scores.items()}
