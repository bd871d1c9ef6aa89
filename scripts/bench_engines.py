"""Generation throughput of the two engines (train.engine hf | vllm) on the same prompts.

For each pair: the policy, the first B pool questions rendered as the run renders them, each
repeated G times (the pair's own generation step: B, G and max_new_tokens from its config, or
the flags), sampled at the pair's temperature with no stop token, so that every sequence is
exactly max_new_tokens long and both engines generate the same number of tokens. Each engine
samples ``--repeats`` times after one warm-up; tokens/s uses the median time. Also timed: engine
start-up and one weight push (``sync_weights``, what each training step pays).

Needs vLLM: run it with .venv-vllm/bin/python (bash scripts/setup_vllm.sh). Writes a markdown
table to results/bench/engines.md (and .json) and prints it:

    .venv-vllm/bin/python scripts/bench_engines.py --pairs smollm2-arith tiny1m-chainsum
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import config  # noqa: E402
from harness.core import engines  # noqa: E402
from harness.instrument import policy  # noqa: E402
from harness.instrument.tasks import load_pool  # noqa: E402
from harness.runs.paths import results_dir  # noqa: E402


def bench_pair(pair: str, args: argparse.Namespace) -> list[dict]:
    cfg = config.resolve(pair, "uniform", seed=0)
    b = args.prompts or cfg.train.batch_size
    g = args.samples or cfg.train.group_size
    new_tokens = args.new_tokens or cfg.train.max_new_tokens
    temperature = cfg.train.temperature
    model, tokenizer, path = policy.load(cfg.model, progress=False)
    pool = load_pool(cfg.task, cfg.pair)
    questions = [policy.render_prompt(cfg.model, tokenizer, q.text) for q in pool.train[:b]]
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for q in questions
               for t in [q] * g]
    n_params = sum(p.numel() for p in model.parameters())
    rows = []
    for name in args.engines:
        start = time.perf_counter()
        engine = engines.make_engine(name, model, path, seed=0)
        startup = time.perf_counter() - start

        def draw(seed: int, eng=engine) -> tuple[float, int]:
            gen = torch.Generator().manual_seed(seed)
            t0 = time.perf_counter()
            # no stop token: every row is exactly new_tokens long on both engines
            ro = eng.sample(prompts, max_new_tokens=new_tokens, temperature=temperature,
                            eos_ids=[], pad_id=tokenizer.pad_token_id, generator=gen)
            return time.perf_counter() - t0, ro.num_tokens

        draw(0)  # warm-up: first-call allocations, kernel selection
        timed = [draw(1 + r) for r in range(args.repeats)]
        tokens = timed[0][1]
        assert all(t == tokens for _, t in timed) and tokens == len(prompts) * new_tokens
        seconds = statistics.median(s for s, _ in timed)
        t0 = time.perf_counter()
        engine.sync_weights(model)
        sync_s = time.perf_counter() - t0
        engine.close()
        rows.append({"pair": pair, "model": cfg.model.name or cfg.model.kind, "params_m": n_params / 1e6,
                     "engine": name, "sequences": len(prompts), "new_tokens": new_tokens,
                     "prompt_tokens_mean": sum(map(len, prompts)) / len(prompts),
                     "temperature": temperature, "tokens": tokens, "seconds": seconds,
                     "tokens_per_s": tokens / seconds, "startup_s": startup, "sync_s": sync_s,
                     "threads": torch.get_num_threads()})
        print(f"{pair} {name}: {tokens / seconds:.0f} tokens/s ({tokens} tokens in {seconds:.2f} s; "
              f"start-up {startup:.1f} s, weight push {sync_s * 1000:.0f} ms)", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| pair | model (M params) | engine | sequences x new tokens | tokens/s | vllm / hf | "
             "start-up s | weight push ms |", "|---|---|---|---|---|---|---|---|"]
    hf = {r["pair"]: r["tokens_per_s"] for r in rows if r["engine"] == "hf"}
    for r in rows:
        ratio = r["tokens_per_s"] / hf[r["pair"]] if r["pair"] in hf else float("nan")
        lines.append(f"| {r['pair']} | {r['model']} ({r['params_m']:.1f}) | {r['engine']} | "
                     f"{r['sequences']} x {r['new_tokens']} | {r['tokens_per_s']:.0f} | "
                     f"{ratio:.2f} | {r['startup_s']:.1f} | {r['sync_s'] * 1000:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", nargs="+", default=["smollm2-arith", "tiny1m-chainsum"])
    parser.add_argument("--engines", nargs="+", default=["hf", "vllm"], choices=engines.ENGINES)
    parser.add_argument("--prompts", type=int, default=0, help="questions (default: the pair's B)")
    parser.add_argument("--samples", type=int, default=0, help="samples each (default: the pair's G)")
    parser.add_argument("--new-tokens", type=int, default=0,
                        help="tokens per sequence (default: the pair's max_new_tokens)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=None, help="default: results/bench/engines.md")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [row for pair in args.pairs for row in bench_pair(pair, args)]
    out = args.out or results_dir() / "bench" / "engines.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (f"Generation throughput, {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
              f"{rows[0]['threads']} torch threads; median of {args.repeats} runs after a warm-up; "
              f"fp32; no stop token (every sequence is full length).\n"
              f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n\n")
    text = header + table(rows) + "\n"
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
