"""Packing of in-domain review text for the "FT" step of the paper's Table 5 (continued GPT-2 pretraining).

The command that runs the step is `gest-showcases finetune-lm` (`gest_showcases.commands.finetune_lm`).
"""


def pack_texts(token_ids: list[list[int]], eos_token_id: int, block_size: int) -> list[list[int]]:
    """Concatenate tokenised texts, each closed by EOS, and cut the stream into full blocks (the tail is dropped)."""
    stream = [token for ids in token_ids for token in [*ids, eos_token_id]]
    usable = len(stream) // block_size * block_size
    return [stream[start : start + block_size] for start in range(0, usable, block_size)]
