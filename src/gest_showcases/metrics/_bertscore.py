"""BERTScore's encoder and greedy matching, batched (the torch half of `metrics.text.bert_score`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from gest_showcases.tensors import pad_ragged


@torch.no_grad()
def _embed(
    sentences: list[str], tokenizer, model, layer: int, batch_size: int, device: str
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """sentence -> (L2-normalised token embeddings [T, D], token weights [T]: 0 for [CLS]/[SEP])."""
    special = torch.tensor([i for i in (tokenizer.cls_token_id, tokenizer.sep_token_id) if i is not None])
    encoded = [
        torch.tensor(
            tokenizer(
                s.strip(), add_special_tokens=True, truncation=True, max_length=tokenizer.model_max_length
            )["input_ids"]
        )
        for s in sentences
    ]
    order = sorted(range(len(sentences)), key=lambda i: -len(encoded[i]))  # less padding per batch
    out = {}
    for start in tqdm(range(0, len(order), batch_size), desc="BERTScore encode", leave=False):
        batch = order[start : start + batch_size]
        # Token ids [B, T] and their real positions.
        ids, mask = pad_ragged([encoded[i] for i in batch], padding_value=tokenizer.pad_token_id or 0)
        hidden = model(
            input_ids=ids.to(device), attention_mask=mask.long().to(device), output_hidden_states=True
        ).hidden_states[layer]
        hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu()  # [B, T, D]
        for row, i in enumerate(batch):
            tokens = encoded[i]
            out[sentences[i]] = (hidden[row, : len(tokens)], (~torch.isin(tokens, special)).float())
    return out


def bert_score_per_example(
    hypotheses: Sequence[str],
    references: Sequence[str],
    model_path: str | Path,
    num_layers: int | None,
    batch_size: int,
    device: str,
) -> dict[str, torch.Tensor]:
    """Per-example BERTScore precision, recall and F1 tensors [N] (see `metrics.text.bert_score`)."""
    tokenizer = AutoTokenizer.from_pretrained(str(model_path), trust_remote_code=False)
    model = AutoModel.from_pretrained(str(model_path), trust_remote_code=False).to(device).eval()
    layer = model.config.num_hidden_layers if num_layers is None else num_layers
    if not 0 <= layer <= model.config.num_hidden_layers:
        raise ValueError(
            f"num_layers={layer} is outside 0..{model.config.num_hidden_layers} for {model_path}"
        )
    stats = _embed(sorted(set(hypotheses) | set(references)), tokenizer, model, layer, batch_size, device)
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
