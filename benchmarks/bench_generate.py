"""Batched against one-at-a-time generation throughput (tokens/s), demo model, CPU (bar: >= 4x).

    python benchmarks/bench_generate.py [--prompts 16] [--n 4] [--max-new-tokens 64] [--threads 1]

The same prompts, settings and seed both ways through ``core.engine.generation.generate_replies``:
batched (``--batch-size`` rows per forward: several prompts and their n samples, left-padded, over
the KV cache) and one reply at a time (batch size 1, still with the KV cache). The replies are the
same both ways (each reply is seeded on its own), so the token counts match and the ratio is the
speed-up. ``--threads`` fixes torch's CPU threads (1 by default: the figure then does not depend
on how busy the machine's other cores are).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(model, tokenizer, prompts, settings, batch_size: int) -> tuple[int, float, list]:
    from core.engine.generation import generate_replies

    started = time.perf_counter()
    replies = generate_replies(model, tokenizer, prompts, settings, batch_size=batch_size)
    seconds = time.perf_counter() - started
    return sum(len(r.token_ids) for r in replies), seconds, replies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=4, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per forward when batched")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    from core.demo.demo_workspace import held_out_prompts
    from core.engine.bundled_models import DEMO_MODEL
    from core.engine.generation import SamplingSettings, load_generator

    torch.set_num_threads(args.threads)
    model, tokenizer = load_generator(DEMO_MODEL, device=args.device)
    prompts = held_out_prompts(args.prompts)
    settings = SamplingSettings(temperature=0.8, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0, n=args.n)
    measure(model, tokenizer, prompts[:2], settings, args.batch_size)          # warm-up
    batched_tokens, batched_s, batched = measure(model, tokenizer, prompts, settings, args.batch_size)
    single_tokens, single_s, single = measure(model, tokenizer, prompts, settings, 1)
    rows = len(prompts) * args.n
    print(f"demo model on {args.device}, {args.threads} thread(s): {len(prompts)} prompts x {args.n} samples "
          f"= {rows} replies, up to {args.max_new_tokens} new tokens, temperature 0.8, top-p 0.95")
    print(f"{'':>16} {'tokens':>7} {'seconds':>8} {'tokens/s':>9}")
    print(f"{'batched (' + str(min(args.batch_size, rows)) + ')':>16} {batched_tokens:>7} {batched_s:>8.2f} "
          f"{batched_tokens / batched_s:>9.1f}")
    print(f"{'one at a time':>16} {single_tokens:>7} {single_s:>8.2f} {single_tokens / single_s:>9.1f}")
    speedup = (batched_tokens / batched_s) / (single_tokens / single_s)
    same = [r.token_ids for r in batched] == [r.token_ids for r in single]
    print(f"speed-up {speedup:.1f}x (bar: 4x); same replies both ways: {'yes' if same else 'NO'}")
    return 0 if speedup >= 4 and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
