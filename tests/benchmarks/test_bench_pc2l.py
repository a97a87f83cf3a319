"""benchmarks/bench_pc2l.py and memory_stats.py: one model for every training variant, each step's memory."""

import json
import sys
from pathlib import Path

import pytest
import torch

from gest_showcases.generation.configuration_pc2l import PC2LConfig
from gest_showcases.generation.gradients import SeparateNormaliserAdamW
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.modeling_pc2l import PC2LForConditionalGeneration

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
linux_only = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc only")


@pytest.fixture
def memory_stats(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import memory_stats

    return memory_stats


@pytest.fixture
def bench(monkeypatch):
    """`bench_pc2l` with a tiny GPT-2 of GPT-2's vocabulary (its batches are GPT-2's), dropout off."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_pc2l

    def tiny_config(image_contrastive: str, review_contrastive: str) -> PC2LConfig:
        decoder = {"n_embd": 16, "n_layer": 2, "n_head": 2, "vocab_size": 50257, "n_positions": 128,
                   "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}  # fmt: skip
        return PC2LConfig(decoder=decoder, image_feature_dim=bench_pc2l.FEATURE_DIM,
                          review_feature_dim=bench_pc2l.FEATURE_DIM, encoder_layers=1, encoder_attention_heads=2,
                          encoder_ffn_dim=32, encoder_dropout=0.0, projection_dim=8,
                          image_contrastive=image_contrastive, review_contrastive=review_contrastive)  # fmt: skip

    monkeypatch.setattr(bench_pc2l, "gpt2_small_config", tiny_config)
    return bench_pc2l


def test_parse_status_reads_the_vm_sizes_in_gib(memory_stats):
    text = "Name:\tpython\nVmHWM:\t 2097152 kB\nVmRSS:\t 1048576 kB\nThreads:\t3\nVmSwap:\t       0 kB\n"
    assert memory_stats.parse_status(text) == {"VmHWM": 2.0, "VmRSS": 1.0, "VmSwap": 0.0}


def test_tensor_gib_counts_each_storage_once(memory_stats):
    weight = torch.zeros(2**20, 64)  # 0.25 GiB
    assert memory_stats.tensor_gib([weight, weight.T, weight[:10], None]) == 0.25  # views, tied weights: once
    assert memory_stats.tensor_gib([weight, weight.clone()]) == 0.5


def test_optimizer_state_gib_counts_adams_moments(memory_stats):
    layer = torch.nn.Linear(1024, 256)  # 262,400 parameters
    optimizer = torch.optim.AdamW(layer.parameters())
    assert memory_stats.optimizer_state_gib(optimizer) == 0.0  # states come with the first step
    layer(torch.randn(2, 1024)).sum().backward()
    optimizer.step()
    moments = 2 * 262_400 * 4  # exp_avg and exp_avg_sq, float32
    steps = 2 * 4  # one float32 step count per parameter tensor
    assert memory_stats.optimizer_state_gib(optimizer) * 2**30 == moments + steps


def test_optimizer_state_gib_counts_the_separate_normalisers_nested_moments(memory_stats):
    layer = torch.nn.Linear(1024, 256)  # 262,400 parameters
    optimizer = SeparateNormaliserAdamW(layer.parameters(), lr=0.1)
    layer(torch.randn(2, 1024)).sum().backward()
    for parameter in layer.parameters():
        parameter.contrastive_grad = torch.ones_like(parameter)
    optimizer.step()
    moments = 2 * 2 * 262_400 * 4  # exp_avg and exp_avg_sq of each part, float32
    steps = 2 * 2 * 4  # one float32 step count per part and parameter tensor
    assert memory_stats.optimizer_state_gib(optimizer) * 2**30 == moments + steps


@linux_only
def test_peak_during_counts_the_block_alone(memory_stats):
    larger = torch.ones(2**27)  # 0.5 GiB, touched: resident
    del larger  # a peak before the block must not count in it
    with memory_stats.peak_during() as memory:
        block = torch.ones(2**26)  # 0.25 GiB
        del block
    assert 0.2 < memory["added"] < 0.4
    assert memory["peak"] == pytest.approx(memory["before"] + memory["added"])
    # The earlier peak is still the process's.
    assert memory_stats.process_peak_gib() >= memory["before"] + 0.45
    mark = memory_stats.peak_mark()
    with memory_stats.peak_during():
        pass
    assert memory_stats.process_peak_gib(since=mark) < memory["before"] + 0.2


@linux_only
def test_phase_log_gives_each_phase_its_own_peak(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import memory_pc2l

    log = memory_pc2l.PhaseLog()
    block = torch.ones(2**26)  # 0.25 GiB, touched: resident
    del block
    log("allocated and freed")
    log("nothing")
    imports, allocated, nothing = log.rows
    assert imports["phase"] == "imports" and nothing["phase"] == "nothing"
    assert allocated["peak_gib"] - allocated["resident_released_gib"] > 0.2
    # The earlier phase's peak is not this one's.
    assert nothing["peak_gib"] - nothing["resident_released_gib"] < 0.1
    assert allocated["resident_released_gib"] <= allocated["resident_gib"]


def test_every_variant_trains_one_model_as_its_own_would(bench):
    """Each variant's step on the shared model computes the loss a model built with the variant's configuration
    computes from the same weights; CE-only leaves the heads without gradients (AdamW skips them)."""
    device = torch.device("cpu")
    batch = bench.synthetic_batch(2, 50257, device)
    model, optimizer = bench.build_model(device)
    for name, losses in bench.VARIANTS.items():
        own = PC2LForConditionalGeneration(bench.gpt2_small_config(*losses)).train()
        missing, unexpected = own.load_state_dict(model.state_dict(), strict=False)
        assert not missing
        assert all(key.split(".")[0] in ("image_head", "review_head", "target_head") for key in unexpected)
        inputs = {key: value for key, value in batch.items() if losses[0] == "ccl" or "negative" not in key}
        expected, _ = total_loss(own.config, own(**inputs), inputs)
        frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # every variant sees the same weights
        step = bench.training_step(name, batch, model, frozen)
        torch.testing.assert_close(step(), expected.detach(), rtol=1e-5, atol=1e-5, msg=name)
    # The optimizer of `build_model` serves every variant: one set of Adam states after any step.
    bench.training_step("ce_only", batch, model, optimizer)()
    assert set(optimizer.state) == {p for k, p in model.named_parameters() if "_head." not in k}


class GradientRecorder:
    """An optimizer that moves nothing and keeps, at each step, every parameter's `.grad` and `contrastive_grad`
    (clearing the latter, as `SeparateNormaliserAdamW` does)."""

    def __init__(self, parameters):
        self.parameters = list(parameters)

    def step(self):
        self.grads = [parameter.grad for parameter in self.parameters]
        self.contrastive_grads = [getattr(parameter, "contrastive_grad", None) for parameter in self.parameters]
        for parameter in self.parameters:
            parameter.contrastive_grad = None

    def zero_grad(self, set_to_none=True):
        for parameter in self.parameters:
            parameter.grad = None


def flat(gradients, parameters) -> torch.Tensor:
    """The gradients as one vector, a missing one as zeros."""
    pairs = zip(gradients, parameters, strict=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for g, p in pairs])


def test_gradient_options_write_the_gradients_the_formulas_give(bench):
    """pc2l_projected's step writes one-sided PCGrad's gradient (H28), pc2l_separate's puts cross-entropy's in
    `.grad` and the contrastive part's in `contrastive_grad` (H30), as `PC2LTrainer` does: gradients by hand. With
    the loss weights negated the two gradients conflict, so the projection is exercised too."""
    device = torch.device("cpu")
    batch = bench.synthetic_batch(2, 50257, device)
    model, _ = bench.build_model(device)
    parameters = list(model.parameters())
    recorder = GradientRecorder(parameters)
    for weight in (0.2, -0.2):
        model.config.lambda1 = model.config.lambda2 = weight
        loss, parts = total_loss(model.config, model(**batch), batch)  # the model's configuration is PC2L's
        ce = flat(torch.autograd.grad(parts["loss_ce"], parameters, retain_graph=True, allow_unused=True), parameters)
        contrastive = flat(torch.autograd.grad(loss - parts["loss_ce"], parameters, allow_unused=True), parameters)
        inner = float(ce @ contrastive)
        assert (inner > 0) == (weight > 0), inner
        bench.training_step("pc2l_separate", batch, model, recorder)()
        torch.testing.assert_close(flat(recorder.grads, parameters), ce, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(flat(recorder.contrastive_grads, parameters), contrastive, rtol=1e-4, atol=1e-7)
        bench.training_step("pc2l_projected", batch, model, recorder)()
        projected = ce + contrastive - min(0.0, inner) / float(ce @ ce) * ce
        # Float32 sums of 0.8M products in another order: differences to about 1e-6 of the largest coordinate.
        atol = 1e-5 * float(projected.abs().max())
        torch.testing.assert_close(flat(recorder.grads, parameters), projected, rtol=1e-4, atol=atol)
        assert all(gradient is None for gradient in recorder.contrastive_grads)


@pytest.mark.slow  # about 20 s: four variants' steps and two generate calls of 64 tokens
def test_report_has_each_variants_step_memory(bench, tmp_path, monkeypatch):
    output = tmp_path / "pc2l.json"
    argv = ["bench_pc2l.py", "--batch-size", "2", "--gen-batch-size", "1", "--steps", "1", "--warmup", "1",
            "--gen-repeats", "1", "--noisy", "--output", str(output)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)
    bench.main()
    report = json.loads(output.read_text())
    model, _ = bench.build_model(torch.device("cpu"))
    parameters = sum(parameter.numel() for parameter in model.parameters()) * 4 / 2**30
    # One model's parameters and Adam moments (plus a step count per tensor), not one per configuration.
    assert report["training_resident_gib"]["parameters"] == pytest.approx(parameters)
    assert report["training_resident_gib"]["optimizer_states"] == pytest.approx(2 * parameters, rel=1e-3)
    # pc2l_separate's optimizer: two moments for each gradient a parameter gets (the heads only the contrastive's).
    assert 2 * parameters < report["training_resident_gib"]["separate_normaliser_states"] <= 4 * parameters
    for name in bench.VARIANTS:
        row = report["training"][name]
        assert {"step_s", "flops_per_step", "saved_for_backward_gib"} <= row.keys()
        assert 0 < row["step_memory_gib"] < row["step_peak_memory_gib"] <= report["peak_memory_gib"]
    saved = {name: row["saved_for_backward_gib"] for name, row in report["training"].items()}
    assert saved["pc2l"] > saved["ce_only"]
    for row in report["generation"].values():
        assert 0 < row["peak_memory_gib"] <= report["peak_memory_gib"]


def test_add_rate_shares_gives_each_variants_share_and_its_bound():
    """Hand-computed: CE-only 200 GFLOP in 2 s, PC2L 340 GFLOP in 3 s, a matmul rate of 0.175 TFLOP/s. PC2L's extra
    140 GFLOP ran in 1 s (0.14 TFLOP/s); at 0.175 they would take 0.8 s: 1.4x CE-only."""
    import bench_pc2l

    training = {
        "ce_only": {"step_s": 2.0, "flops_per_step": 200e9, "achieved_tflops": 0.1},
        "pc2l": {"step_s": 3.0, "flops_per_step": 340e9, "achieved_tflops": 340e9 / 3.0 / 1e12},
    }
    bench_pc2l.add_rate_shares(training, "fp32_matmul_tflops", 0.175)
    assert training["ce_only"]["share_of_fp32_matmul_rate"] == pytest.approx(0.1 / 0.175)
    assert "extra_over_ce_only" not in training["ce_only"]
    extra = training["pc2l"]["extra_over_ce_only"]
    assert extra["flops"] == pytest.approx(140e9) and extra["seconds"] == pytest.approx(1.0)
    assert extra["tflops"] == pytest.approx(0.14)
    assert extra["x_ce_only_if_extra_at_matmul_rate"] == pytest.approx(1.4)


def test_the_benchmark_steps_the_optimizer_the_trainer_builds_by_default(bench, tmp_path):
    """On CPU too: the Trainer's default optim (`adamw_torch_fused`) builds a fused AdamW, and the step timed here is
    the Trainer's (the unfused one, stepped on CPU until session 40, cost about 0.3 s more per GPT-2-small step)."""
    from transformers import Trainer, TrainingArguments

    optimizer_class, kwargs = Trainer.get_optimizer_cls_and_kwargs(TrainingArguments(tmp_path, report_to=[]))
    _, optimizer = bench.build_model(torch.device("cpu"))
    assert type(optimizer) is optimizer_class
    assert optimizer.defaults["fused"] == kwargs.get("fused", False) and kwargs.get("fused") is True
