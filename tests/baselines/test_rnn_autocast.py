"""The recurrent baselines (Ref2Seq's GRUs, Show-and-Tell's LSTM) run their RNNs outside autocast, in float32.

CUDA autocast would run cuDNN's RNNs in float16 whatever the autocast dtype: a bf16 run would train them in float16
with no loss scaler (the GPU suite's first H200 run failed on the float16 outputs). CPU autocast leaves RNNs alone,
so these tests record what each RNN call sees under CPU autocast: autocast off and float32 inputs.
"""

import pytest
import torch
from image_baseline_fixtures import SPECIAL_TOKENS, images, tiny_batch
from text_baseline_fixtures import reference_inputs, text_batch

from gest_showcases.baselines.configuration_ref2seq import Ref2SeqConfig
from gest_showcases.baselines.configuration_show_and_tell import ShowAndTellConfig
from gest_showcases.baselines.generation_utils import run_outside_autocast
from gest_showcases.baselines.modeling_ref2seq import Ref2SeqForExplanation
from gest_showcases.baselines.modeling_show_and_tell import ShowAndTellForExplanation


@pytest.fixture
def rnn_calls(monkeypatch) -> list[tuple[bool, torch.dtype]]:
    """(autocast on, input dtype) of every GRU and LSTM call."""
    calls = []
    for rnn in (torch.nn.GRU, torch.nn.LSTM):
        forward = rnn.forward

        def recording(self, input, *args, forward=forward, **kwargs):
            data = input.data if isinstance(input, torch.nn.utils.rnn.PackedSequence) else input
            calls.append((torch.is_autocast_enabled("cpu"), data.dtype))
            return forward(self, input, *args, **kwargs)

        monkeypatch.setattr(rnn, "forward", recording)
    return calls


def test_run_outside_autocast_casts_to_the_weights_dtype_and_matches_a_plain_call(rnn_calls):
    torch.manual_seed(0)
    gru = torch.nn.GRU(4, 6, batch_first=True)
    inputs = torch.randn(2, 3, 4)
    expected, _ = gru(inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, _ = run_outside_autocast(gru, inputs.to(torch.bfloat16))
    assert rnn_calls[-1] == (False, torch.float32) and outputs.dtype == torch.float32
    torch.testing.assert_close(outputs, expected, atol=0.02, rtol=0.02)  # the input's bf16 rounding only


def test_ref2seq_and_show_and_tell_call_their_rnns_outside_autocast(rnn_calls):
    torch.manual_seed(0)
    ref2seq = Ref2SeqForExplanation(Ref2SeqConfig(**SPECIAL_TOKENS, hidden_size=16, num_layers=2))
    show_and_tell = ShowAndTellForExplanation(
        ShowAndTellConfig(
            **SPECIAL_TOKENS, image_feature_dim=images(tiny_batch())["image_features"].shape[-1]
        )
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = [ref2seq(**text_batch() | reference_inputs()).loss, show_and_tell(**tiny_batch()).loss]
    assert len(rnn_calls) == 4  # Ref2Seq: user and item reference encoders, decoder; Show-and-Tell: its LSTM
    assert set(rnn_calls) == {(False, torch.float32)}
    assert all(torch.isfinite(loss) for loss in losses)
