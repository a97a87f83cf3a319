"""Static-cache decoding of PC2L's GPT-2 decoder with a `torch.compile`d single-token step (issue 18).

`PC2LForConditionalGeneration.generate(..., cache_implementation="static")` lands here. transformers' own static
route does not serve PC2L: its beam search never compiles the forward (only greedy/sampling decoding does, and on
CPU only when asked), and GPT-2 wraps a `StaticCache` into an `EncoderDecoderCache` with a dynamic cross-attention
half at every call. So `generate` keeps its own loop (beam search, logits processors such as
`no_repeat_ngram_size`, stopping criteria: the tokens come from the same code as the eager path) and only the
model call changes: [`StaticDecodingCache`] is the cache `generate` threads through the steps, and the model's
`forward` hands each step to it.

What the cache does differently from the eager path:
- the cross-attention keys and values are computed once per example (not per beam) and never reordered: a step
  treats an example's beams as that example's queries;
- the self-attention keys and values live in one preallocated buffer written in place (no growing `torch.cat`);
  reordering the beams copies only the rows whose parent changed, and only the positions written so far;
- a decoding step is one function (`PC2LDecodeStep`) over fixed shapes, compiled once per bucket: the batch is padded
  to a power of two and the encoder inputs to a multiple of 8, so a call with another batch size or input count in
  the same bucket reuses the compiled code. On CPU the step reads the cache up to the current position (a dynamic
  length, one graph); on CUDA it reads a fixed-length bucket under a mask, so the step has static shapes for CUDA
  graphs;
- the eager step on CPU in float32 (CPU's default) multiplies by copies of the weight matrices prepacked by oneDNN
  for the step's row count ([`PackedWeights`]): a decoding step's products have few rows (batch x beams), where
  `torch.addmm` on the plain weights reaches about half of what the prepacked product does (a third for the LM head).
  The compiled step keeps the plain weights (inductor lowers a prepacked weight only as a frozen constant).

Only GPT-2's native cross-attention is served (the paper's model); a gated decoder raises. This file imports only
torch and transformers, as the modeling file it is shipped with (`save_pretrained`).
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

# The decoding step's projections in each GPT-2 block, in the order the step calls them (the LM head follows them).
BLOCK_PROJECTIONS = ("attn.c_attn", "attn.c_proj", "crossattention.q_attn", "crossattention.c_proj", "mlp.c_fc",
                     "mlp.c_proj")  # fmt: skip
# Batch sizes are padded to the next power of two, encoder inputs to a multiple of this, the CUDA cache length to a
# multiple of `LENGTH_BUCKET`: few distinct shapes, so few compilations.
INPUTS_BUCKET = 8
LENGTH_BUCKET = 64


def batch_bucket(batch_size: int) -> int:
    """The padded batch size: the next power of two."""
    return 1 << max(batch_size - 1, 0).bit_length()


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def prepacks_weights(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the eager step on `device` in `dtype` multiplies by oneDNN-prepacked weights: float32 on a CPU whose
    torch build has oneDNN's linear kernels."""
    return (
        device.type == "cpu"
        and dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    )


def prepacked_linear(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`inputs @ W.T + bias` with `weight` = W prepacked by oneDNN (`PackedWeights`)."""
    flat = inputs.reshape(-1, inputs.shape[-1])
    out = torch.ops.mkldnn._linear_pointwise(flat, weight, bias, "none", [], "")
    return out.view(*inputs.shape[:-1], out.shape[-1])


def step_projections(decoder: nn.Module) -> list[nn.Module]:
    """The modules whose weight matrices the decoding step multiplies by: each block's `BLOCK_PROJECTIONS`, then the
    LM head."""
    blocks = decoder.transformer.h
    return [block.get_submodule(name) for block in blocks for name in BLOCK_PROJECTIONS] + [decoder.lm_head]


class PackedWeights:
    """oneDNN-prepacked copies of the decoding step's weight matrices, for one row count (CPU, float32).

    The copies are a second set of the decoder's matrices (GPT-2 small: about 0.5 GB, the LM head's tied
    embedding included), kept between `generate` calls and remade when a weight changes (training, loading, a move):
    a weight's storage and version counter are its signature.
    """

    def __init__(self, decoder: nn.Module, rows: int):
        self.rows = rows
        self.weights = {}
        with torch.no_grad():
            for module in step_projections(decoder):
                matrix = module.weight.detach()  # `nn.Linear` (the LM head) holds W, GPT-2's `Conv1D` W.T
                matrix = matrix.t().contiguous() if isinstance(module, Conv1D) else matrix
                self.weights[module] = torch.ops.mkldnn._reorder_linear_weight(matrix, rows)
        self.signature = self.weights_signature()

    def weights_signature(self) -> tuple:
        return tuple((module.weight.data_ptr(), module.weight._version) for module in self.weights)

    def current(self, rows: int) -> bool:
        """Whether these copies serve a step of `rows` rows over the weights as they are now."""
        return rows == self.rows and self.weights_signature() == self.signature


class PC2LDecodeStep(nn.Module):
    """One decoding step of PC2L's GPT-2 decoder over a preallocated cache: the function that gets compiled.

    Calls the decoder's own modules (layer norms, `Conv1D` projections, MLP, LM head), so its arithmetic is the
    eager forward's; only the attention reads the static buffers. Holds the decoder, not a copy of its weights.
    """

    def __init__(self, decoder: nn.Module, num_beams: int):
        super().__init__()
        self.decoder = decoder
        self.num_beams = num_beams
        config = decoder.config
        self.num_heads = config.n_head
        self.head_dim = config.n_embd // config.n_head

    def forward(
        self,
        input_ids: torch.Tensor,
        position: torch.Tensor,
        self_keys: torch.Tensor,
        self_values: torch.Tensor,
        key_mask: torch.Tensor | None,
        cross_keys: torch.Tensor,
        cross_values: torch.Tensor,
        cross_mask: torch.Tensor,
        packed: dict[nn.Module, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits [R, V] of the next token after `input_ids` [R] at `position` (a 0-d tensor).

        `self_keys`, `self_values` [layers, R, heads, L, head_dim]: the cache up to (CPU) or beyond (CUDA, with
        `key_mask` [1, 1, 1, L] true up to `position`) the current position, written here at `position`. The mask
        has all four dimensions because CUDA's attention kernels refuse a 1-d mask (CPU's broadcast it).
        `cross_keys`, `cross_values` [layers, R / beams, heads, N, head_dim] and `cross_mask` [R / beams, 1, 1, N]:
        the encoder side, one row per example. `packed`: prepacked weights ([`PackedWeights`]) the projections use
        instead of their own (eager CPU steps).
        """

        def project(module: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
            if packed is None:
                return module(inputs)
            return prepacked_linear(inputs, packed[module], module.bias)

        transformer = self.decoder.transformer
        rows, width = input_ids.shape[0], transformer.embed_dim
        examples = rows // self.num_beams
        hidden = (transformer.wte(input_ids) + transformer.wpe(position))[:, None]  # [R, 1, D]
        where = position.view(1)
        for layer, block in enumerate(transformer.h):
            query, key, value = project(block.attn.c_attn, block.ln_1(hidden)).split(width, dim=2)
            query, key, value = (
                t.view(rows, 1, self.num_heads, self.head_dim).transpose(1, 2) for t in (query, key, value)
            )
            self_keys[layer].index_copy_(2, where, key)
            self_values[layer].index_copy_(2, where, value)
            attended = F.scaled_dot_product_attention(
                query, self_keys[layer], self_values[layer], attn_mask=key_mask, scale=block.attn.scaling
            )
            hidden = project(block.attn.c_proj, attended.transpose(1, 2).reshape(rows, 1, width)) + hidden

            # An example's beams are its queries: [R, 1, D] -> [R / beams, heads, beams, head_dim].
            cross = block.crossattention
            query = project(cross.q_attn, block.ln_cross_attn(hidden)).view(
                examples, self.num_beams, self.num_heads, -1
            )
            attended = F.scaled_dot_product_attention(
                query.transpose(1, 2),
                cross_keys[layer],
                cross_values[layer],
                attn_mask=cross_mask,
                scale=cross.scaling,
            )
            hidden = hidden + project(cross.c_proj, attended.transpose(1, 2).reshape(rows, 1, width))
            mlp = block.mlp  # GPT2MLP's forward without its dropout (decoding: off), as the attention's above
            hidden = hidden + project(mlp.c_proj, mlp.act(project(mlp.c_fc, block.ln_2(hidden))))
        return project(self.decoder.lm_head, transformer.ln_f(hidden))[:, 0]


def uses_fixed_length_cache(device: torch.device) -> bool:
    """Whether the cache on `device` has a fixed length read under a mask (CUDA) rather than growing views (CPU).

    A function of its own so that the tests run CUDA's layout on CPU."""
    return device.type == "cuda"


class StaticDecoder:
    """A model's decoding step, eager and compiled, kept across `generate` calls (one per model and beam count).

    Not an `nn.Module` attribute of the model (the model's state dict stays its own). The compiled code reads the
    weights as inputs, so training or loading weights between calls needs no recompilation.
    """

    def __init__(self, model: nn.Module, num_beams: int, compile_options: dict | None):
        self.model = model
        self.step = PC2LDecodeStep(model.decoder, num_beams)
        self.compile_options = compile_options
        self.compiled = None
        self.packed: PackedWeights | None = None

    def __getstate__(self) -> dict:
        # A copy or pickle of the model leaves the compiled code and the prepacked weights (oneDNN's opaque tensors
        # cannot be copied) behind: they are made again at the next call.
        return self.__dict__ | {"compiled": None, "packed": None}

    def packed_weights(self, rows: int) -> dict[nn.Module, torch.Tensor]:
        """The step's weights prepacked for `rows` rows, packed again only when a weight or the row count changed."""
        if self.packed is None or not self.packed.current(rows):
            self.packed = None  # the old copies go before the new ones are made
            self.packed = PackedWeights(self.model.decoder, rows)
        return self.packed.weights

    def compiled_step(self):
        """The compiled step (compiled lazily: dynamo compiles at the first call, per shape bucket)."""
        if self.compiled is None:
            self.compiled = torch.compile(self.step, **self.compile_options)
        return self.compiled


class StaticDecodingCache:
    """The cache `generate` threads through PC2L's decoding steps when `cache_implementation="static"`.

    Built by the model's `generate` before decoding (batch size, beams and maximum length known); the model's
    `forward` calls [`StaticDecodingCache.decode`] instead of running the decoder. Duck-types what `generate` reads
    of a transformers `Cache`: `get_seq_length`, `reorder_cache`, `is_linear`, `is_compileable` (false: the step
    is compiled here, `generate` must not compile the forward around it).
    """

    is_compileable = False

    def __init__(
        self,
        decoder: StaticDecoder,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        num_beams: int,
        max_length: int,
        dtype: torch.dtype,
    ):
        decoder_model = decoder.model.decoder
        config = decoder_model.config
        batch_size, num_inputs, width = encoder_hidden_states.shape
        device = encoder_hidden_states.device
        self.decoder = decoder
        self.num_beams = num_beams
        self.rows = batch_size * num_beams
        self.compiled = decoder.compile_options is not None
        self.length = 0
        # CUDA: a fixed cache length (static shapes, CUDA graphs) under a mask; CPU: views up to the position.
        self.fixed_length = uses_fixed_length_cache(device)
        buffer_length = (
            min(round_up(max_length, LENGTH_BUCKET), config.n_positions) if self.fixed_length else max_length
        )
        examples = batch_bucket(batch_size)
        padded_inputs = round_up(num_inputs, INPUTS_BUCKET)
        head_dim = width // config.n_head
        shape = (config.n_layer, examples * num_beams, config.n_head, buffer_length, head_dim)
        self.self_keys = torch.zeros(shape, dtype=dtype, device=device)
        self.self_values = torch.zeros(shape, dtype=dtype, device=device)
        # Padded examples attend to one zero input (a fully masked row would give NaN); their rows are dropped.
        states = encoder_hidden_states.new_zeros(examples, padded_inputs, width)
        states[:batch_size, :num_inputs] = encoder_hidden_states
        mask = torch.zeros(examples, padded_inputs, dtype=torch.bool, device=device)
        mask[:batch_size, :num_inputs] = encoder_attention_mask.bool()
        mask[batch_size:, 0] = True
        self.cross_mask = mask[:, None, None, :]
        keys, values = [], []
        for block in decoder_model.transformer.h:
            key, value = block.crossattention.c_attn(states).split(width, dim=2)
            keys.append(key.view(examples, padded_inputs, config.n_head, head_dim).transpose(1, 2))
            values.append(value.view(examples, padded_inputs, config.n_head, head_dim).transpose(1, 2))
        self.cross_keys = torch.stack(keys).to(dtype)  # [layers, examples, heads, N, head_dim]
        self.cross_values = torch.stack(values).to(dtype)
        self.input_ids = torch.zeros(examples * num_beams, dtype=torch.long, device=device)
        # The eager step's weights prepacked for its rows (see the module's docstring); the compiled step's are its
        # own.
        if not self.compiled and prepacks_weights(device, dtype):
            self.packed = decoder.packed_weights(examples * num_beams)
        else:  # copies this call does not use (the model moved, or a compiled step) are let go
            self.packed = decoder.packed = None
        self.key_positions = torch.arange(buffer_length, device=device).view(1, 1, 1, buffer_length)

    @property
    def is_linear(self) -> list[bool]:
        return [False]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length

    def decode(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits [rows, tokens, V] of the next token after each position of `input_ids` [rows, tokens] (the prompt
        at the first call, then one token); the logits of the last position only (all `generate` reads)."""
        for token in input_ids.unbind(1):
            logits = self._step(token)
        return logits[: self.rows, None]

    def _step(self, token: torch.Tensor) -> torch.Tensor:
        self.input_ids[: self.rows] = token
        position = torch.tensor(self.length, device=token.device)
        length = self.self_keys.shape[3] if self.fixed_length else self.length + 1
        key_mask = self.key_positions <= position if self.fixed_length else None
        # Position 0 (the prompt's first token) runs eagerly: a one-key view would pin the compiled length to 1.
        step = self.decoder.compiled_step() if self.compiled and self.length > 0 else self.decoder.step
        keys, values = self.self_keys[:, :, :, :length], self.self_values[:, :, :, :length]
        if step is not self.decoder.step and not self.fixed_length:
            # The cache length grows by one each step: one graph with a symbolic length instead of one per length.
            torch._dynamo.maybe_mark_dynamic(keys, 3)
            torch._dynamo.maybe_mark_dynamic(values, 3)
        logits = step(
            self.input_ids,
            position,
            keys,
            values,
            key_mask,
            self.cross_keys,
            self.cross_values,
            self.cross_mask,
            self.packed,
        )
        self.length += 1
        return logits

    def reorder_cache(self, beam_idx: torch.Tensor) -> None:
        """Beam search chose the rows `beam_idx` [rows] to continue: copy each moved row's keys and values."""
        beam_idx = beam_idx.to(self.self_keys.device)
        moved = (beam_idx != torch.arange(self.rows, device=beam_idx.device)).nonzero().squeeze(1)
        if moved.numel() == 0:
            return
        sources = beam_idx[moved]
        for buffer in (self.self_keys, self.self_values):
            buffer[:, moved, :, : self.length] = buffer[:, sources, :, : self.length]


def static_decoding_cache(
    model, inputs: torch.Tensor, encoder_hidden_states, encoder_attention_mask, kwargs: dict
):
    """The [`StaticDecodingCache`] for one `generate` call of `model` with these `kwargs` (the `generate` arguments
    after the prompt; read, not changed).

    The step is compiled on CUDA unless `disable_compile`; on CPU only when a `compile_config` (a transformers
    `CompileConfig`, which sets the `torch.compile` options; CUDA's default is `fullgraph=True`) is given.
    """
    if model.config.uses_gated_cross_attention:
        raise ValueError(
            "cache_implementation='static' serves the GPT-2 decoder; a gated decoder decodes eagerly"
        )
    config = kwargs.get("generation_config") or model.generation_config
    setting = lambda name: kwargs[name] if kwargs.get(name) is not None else getattr(config, name)  # noqa: E731
    mask = kwargs.get("attention_mask")
    if mask is not None and not bool(mask.all()):
        raise ValueError("cache_implementation='static' decodes unpadded prompts (an attention_mask of ones)")
    expand = max(setting("num_beams"), setting("num_return_sequences") or 1)
    max_new_tokens = setting("max_new_tokens")
    max_length = inputs.shape[1] + max_new_tokens if max_new_tokens is not None else setting("max_length")
    compile_config = setting("compile_config")
    if setting("disable_compile") or (compile_config is None and inputs.device.type != "cuda"):
        # On CPU the step is bound by its matrix products, which the eager step runs on prepacked weights; the
        # compiled step (plain weights) measured 2.8x slower than it (benchmarks/bench_generation.py), so CPU compiles
        # only when asked (`compile_config`), as transformers' own auto-compilation does.
        options = None
    else:
        options = {"fullgraph": True} if compile_config is None else compile_config.to_dict()
    decoders = model.__dict__.setdefault("_static_decoders", {})
    key = (expand, None if options is None else tuple(sorted(options.items())))
    if key not in decoders:
        decoders[key] = StaticDecoder(model, expand, options)
    dtype = (
        torch.get_autocast_dtype(inputs.device.type)
        if torch.is_autocast_enabled(inputs.device.type)
        else model.dtype
    )
    return StaticDecodingCache(
        decoders[key], encoder_hidden_states, encoder_attention_mask, expand, max_length, dtype
    )
