"""Regenerate ``rounds.png`` in this folder: the Rounds tab with two real rounds.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_rounds_screenshot.py [--steps 40 20]

Builds a throw-away demo workspace and runs the loop for real (``tests/round_samples.py``):
round 1 trains on the demo's labelled pairs, its model writes candidates for unlabelled demo
prompts, the demo's style scorer stands in for the person judging them, round 2 trains from
round 1's adapter on them; then round 2's model writes candidates of its own (some left to
judge), and two blind A/B comparisons (base vs round 1, round 1 vs round 2) are judged by the
same stand-in, so the win-rate column has figures. Then the real main window, Rounds tab.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent


def judge_blind(ws, model_a: str, model_b: str, prompts: int) -> None:
    from core.operations import blind
    from tests.round_samples import JUDGE, scorer_choice

    outcome = blind.create_comparison(ws, model_a, model_b, settings={"max_new_tokens": 64}, limit=prompts)
    session = blind.open_judging(ws, JUDGE, outcome.comparison_id)
    session.fill()
    while session.current is not None:
        view = session.current
        session.record(scorer_choice(view.left_text, view.right_text, view.swapped))
        session.fill()
    session.close()


def build(root: Path, steps: tuple[int, int], prompts: int):
    from tests.round_samples import candidate_prompts, generate_from, judge_pairs, two_rounds

    made = two_rounds(root, prompts=prompts, round_1_steps=steps[0], round_2_steps=steps[1])
    print(f"round 1 {made.round_1}, round 2 {made.round_2}: {len(made.generated)} pairs between them")
    written = generate_from(made.ws, made.round_2, candidate_prompts(prompts, offset=prompts), seed=1)
    judge_pairs(made.ws, written[: len(written) // 2])      # half of round 2's candidates still to label
    judge_blind(made.ws, "base", made.round_1, prompts=16)
    judge_blind(made.ws, made.round_1, made.round_2, prompts=16)
    return made.ws


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs=2, default=(40, 20), help="round 1's and round 2's steps")
    parser.add_argument("--prompts", type=int, default=16, help="prompts each round's model answers")
    args = parser.parse_args()
    from loop_tab_window import loop_tab_window   # this folder's helper (the script's folder is on sys.path)

    with loop_tab_window(lambda root: build(root, tuple(args.steps), args.prompts), "Rounds") as (_app, window, _page):
        window.grab().save(str(OUT / "rounds.png"))
    print("saved rounds.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
