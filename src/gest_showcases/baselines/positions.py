"""The transformer's sine/cosine position encodings, shared by PETER and R2Gen.

This file imports only torch, so a modeling file can import it relatively and `save_pretrained` ships it.
"""

import math

import torch


def sinusoidal_positions(length: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Position encodings [length, width] in `dtype`: even columns sine, odd cosine (the original code's
    `PositionalEncoding`), computed in float32."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # [L, 1]
    frequency = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width)
    )  # [ceil(width / 2)]
    encodings = torch.zeros(length, width, device=device)
    encodings[:, 0::2] = torch.sin(position * frequency)
    encodings[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return encodings.to(dtype)
