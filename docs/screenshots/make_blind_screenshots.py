"""Regenerate the Blind A/B screenshots in this folder.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_blind_screenshots.py [--adapter-scale 0.15]

Builds a throw-away demo workspace, gives it a run whose LoRA adapter is drawn at random
(``tests/blind_samples.add_perturbed_adapter_run``: training the demo takes minutes, and the
screen is the same for a trained adapter), has the base and that run answer 20 held-out
prompts (``core.operations.blind.create_comparison``, the real generation), and lets the demo's
style scorer stand in for a person on all but four pairs — judged through the same comparison
queue, by the side it sees, knowing no model names: a helpful answer beats a curt one, which
beats a reckless or broken one; equal helpful or curt answers tie; two broken ones are both bad.
Then the real main window, Blind A/B tab: ``blind_ab.png`` (the pairs left to judge, as "ana")
and ``blind_ab_results.png`` (the results with those verdicts).
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
RANK = {"helpful": 2, "curt": 1}
SCORER = "style scorer (stand-in)"


def scorer_choice(left: str, right: str) -> str:
    """What the stand-in judge says of the two sides it sees."""
    from core.demo.style_scorer import classify

    left_rank, right_rank = RANK.get(classify(left), 0), RANK.get(classify(right), 0)
    if left_rank != right_rank:
        return "left" if left_rank > right_rank else "right"
    return "tie" if left_rank else "both_bad"


def build(root: Path, scale: float, prompts: int, leave: int):
    from core.demo.demo_workspace import create_demo_workspace
    from core.operations import blind
    from storage.annotation_queue import choice_for_side
    from storage.models import Choice
    from storage.workspace import Workspace
    from tests.blind_samples import add_perturbed_adapter_run

    create_demo_workspace(root)
    ws = Workspace.open(root)
    add_perturbed_adapter_run(ws, ws.runs_dir / "round-1", "round-1", "round 1", scale=scale)
    outcome = blind.create_comparison(ws, "base", "round-1", settings={"max_new_tokens": 96}, limit=prompts,
                                      progress=lambda p: print(f"\r{p.model_label}: {p.done}/{p.total}", end=""))
    print(f"\ncomparison #{outcome.comparison_id}: {outcome.pairs} pairs, {outcome.skipped_identical} identical")
    session = blind.open_judging(ws, SCORER, outcome.comparison_id)
    session.fill()
    for _ in range(max(0, outcome.pairs - leave)):
        view = session.current
        said = scorer_choice(view.left_text, view.right_text)
        session.record(choice_for_side(said, view.swapped) if said in ("left", "right") else Choice(said))
    session.release_pairs(session.close())   # the pairs it did not judge are free for "ana"
    result = blind.comparison_result(ws, outcome.comparison_id)
    rate = result.win_rate
    print(f"B won {result.outcomes.b_won}, A won {result.outcomes.a_won}, ties {result.outcomes.ties}, "
          f"both bad {result.outcomes.both_bad}; rate {rate.rate:.3f} [{rate.low:.3f}, {rate.high:.3f}]")
    return ws


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter-scale", type=float, default=0.15)
    parser.add_argument("--prompts", type=int, default=20)
    args = parser.parse_args()
    from loop_tab_window import loop_tab_window   # this folder's helper (the script's folder is on sys.path)

    with loop_tab_window(lambda root: build(root, args.adapter_scale, args.prompts, leave=4), "Blind A/B") as (
            app, window, page):
        window.grab().save(str(OUT / "blind_ab.png"))
        page.view.show_page(1)
        app.processEvents()
        window.grab().save(str(OUT / "blind_ab_results.png"))
    print("saved blind_ab.png, blind_ab_results.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
