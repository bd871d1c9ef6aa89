"""The analytic useful-work count against torch's own FLOP counter on a real Qwen2 forward."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import Qwen2Config, Qwen2ForCausalLM

from harness.instrument.workfloor import Shapes, forward_flops, matmul_rate, rollout_groups


def _model() -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                      tie_word_embeddings=True)
    # eager attention: its two matmuls are what the counter sees (torch's CPU SDPA kernel is
    # not in its table, so it would count no attention at all)
    cfg._attn_implementation = "eager"
    return Qwen2ForCausalLM(cfg).eval()


def test_forward_flops_match_the_flop_counter_on_an_unpadded_sequence() -> None:
    model = _model()
    shapes = Shapes.of(model)
    prompt, response = 7, 5
    seq = prompt + response - 1  # the response's last token is never fed
    ids = torch.arange(seq).unsqueeze(0) % 300
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids, logits_to_keep=response)  # logits where a response token is scored
    # the counter charges attention for the full seq x seq square; the floor, causal, for the
    # triangle below the diagonal
    square_minus_triangle = 4 * shapes.layers * shapes.attn_width * (seq * seq - seq * (seq + 1) // 2)
    assert counter.get_total_flops() - square_minus_triangle == forward_flops(shapes, prompt,
                                                                              [response])


def test_a_group_shares_its_prompt() -> None:
    shapes = Shapes.of(_model())
    one, two = forward_flops(shapes, 9, [4]), forward_flops(shapes, 9, [4, 4])
    prompt_only = forward_flops(shapes, 9, [])
    assert two - one == one - prompt_only > 0  # a second response adds only its own tokens
    assert forward_flops(shapes, 9, [1]) == prompt_only  # a one-token response feeds nothing


def test_rollout_groups_and_rate() -> None:
    p_mask = torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]])
    r_mask = torch.tensor([[1.0, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]])
    assert rollout_groups(p_mask, r_mask, 2) == [(2, [2, 1]), (3, [3, 2])]
    assert matmul_rate(Shapes.of(_model()), rows=32, seconds=0.005) > 1e6


def test_the_step_benchmark_script_measures_a_real_step(config_dir, built_test_model) -> None:
    """scripts/bench_step.py (results/bench/step.md) runs the real trainer: kept runnable here."""
    import importlib.util
    import sys

    from harness.runs.paths import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("bench_step", PROJECT_ROOT / "scripts" / "bench_step.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_step"] = bench
    spec.loader.exec_module(bench)
    result = bench.bench_pair("test-pair", steps=1, threads=1, config_dir=config_dir)
    for phase in ("generate", "update"):
        p = result["phases"][phase]
        assert p["measured"] > 0 and p["flops"] > 0 and p["floor"] > 0
        assert 0 < p["real"] <= p["padded"]
    text = bench.table([result], 1, 1)
    assert "| test-pair | | whole step |" in text
