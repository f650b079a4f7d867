"""Learn DPO with numbers: the loss calculator, the explainer's worked example in six steps, and
the same six steps filled with a real pair's log-probs under a run's adapter.

Everything but ``explain_pair`` is plain ``math`` (no torch), cheap enough for the UI thread to
call on every slider move. The numbers follow the DPO paper (Rafailov et al. 2023, Eq. 7) and
TRL's ``DPOTrainer`` names: for a pair (x, y_w, y_l), policy π_θ and reference π_ref,

- log-ratio      ``h(y) = log π_θ(y|x) − log π_ref(y|x)`` (log-probs summed over the completion tokens);
- implicit reward ``r(y) = β · h(y)`` (``rewards/chosen``, ``rewards/rejected``);
- margin          ``r(y_w) − r(y_l)`` (``rewards/margins``);
- preference      ``P(y_w ≻ y_l) = σ(margin)``, the Bradley–Terry probability;
- loss            ``−log σ(margin)`` (the ``sigmoid`` loss);
- gradient weight ``σ(−margin)``: the paper's weight on each pair's gradient (§4, "What does the
  DPO update do?"), high when the implicit reward model ranks the pair wrongly.

The real pair (``explain_pair``) reuses the engine: ``core.engine.evaluation.evaluate_pairs`` for
the policy pass and ``core.engine.reference_cache`` for the reference (cached per workspace).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

LN2 = math.log(2.0)


def sigmoid(x: float) -> float:
    """σ(x), without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def log_sigmoid(x: float) -> float:
    """log σ(x) = −log(1 + e^(−x)), stable for large |x| (what ``F.logsigmoid`` computes)."""
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


@dataclass(frozen=True)
class DpoNumbers:
    """What the loss of one pair is made of, from β and the two log-ratios."""

    beta: float
    chosen_logratio: float      # log π_θ(y_w|x) − log π_ref(y_w|x)
    rejected_logratio: float    # log π_θ(y_l|x) − log π_ref(y_l|x)

    @property
    def chosen_reward(self) -> float:
        return self.beta * self.chosen_logratio

    @property
    def rejected_reward(self) -> float:
        return self.beta * self.rejected_logratio

    @property
    def margin(self) -> float:
        return self.chosen_reward - self.rejected_reward

    @property
    def preference(self) -> float:
        """P(chosen ≻ rejected) = σ(margin)."""
        return sigmoid(self.margin)

    @property
    def loss(self) -> float:
        return -log_sigmoid(self.margin)

    @property
    def gradient_weight(self) -> float:
        """σ(−margin) = 1 − P: how hard this pair still pushes the weights."""
        return sigmoid(-self.margin)


def calculate(beta: float, chosen_logratio: float, rejected_logratio: float) -> DpoNumbers:
    """The calculator: β and the two log-ratios directly."""
    if not beta > 0:
        raise ValueError(f"β must be positive, not {beta}")
    return DpoNumbers(float(beta), float(chosen_logratio), float(rejected_logratio))


def from_logps(beta: float, policy_chosen: float, policy_rejected: float, reference_chosen: float,
               reference_rejected: float) -> DpoNumbers:
    """The calculator from the four log-probabilities (policy and reference, chosen and rejected)."""
    return calculate(beta, policy_chosen - reference_chosen, policy_rejected - reference_rejected)


def loss_curve(beta: float, differences: list[float]) -> list[float]:
    """−log σ(β·x) for each log-ratio difference x = h(y_w) − h(y_l): the loss as a function of
    how much more the policy has moved towards the chosen answer than towards the rejected one."""
    return [-log_sigmoid(beta * x) for x in differences]


# -- the six steps ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    number: int
    title: str
    why: str                       # the plain-words reason for the step, as the explainer gives it
    formula: str                   # plain Unicode (β, π, σ, subscripts as _w / _l)
    lines: tuple[str, ...]         # the step's numbers, written out
    note: str = ""                 # what the numbers mean
    result: str = ""               # the step's outcome in a few characters ("gap 0.059")
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StepInputs:
    """The four numbers a pair's steps start from. ``kind`` "probability": whole-answer
    probabilities (the explainer's toy numbers); "logp": summed log-probs of real completions,
    with their token counts (a real answer's probability is far too small to print)."""

    beta: float
    policy_chosen: float
    policy_rejected: float
    reference_chosen: float
    reference_rejected: float
    kind: str = "logp"
    chosen_tokens: int = 0
    rejected_tokens: int = 0

    def logps(self) -> tuple[float, float, float, float]:
        values = (self.policy_chosen, self.policy_rejected, self.reference_chosen, self.reference_rejected)
        return tuple(math.log(v) for v in values) if self.kind == "probability" else values

    def numbers(self) -> DpoNumbers:
        return from_logps(self.beta, *self.logps())


def num(x: float, signed: bool = False, digits: int = 3) -> str:
    """A number as the explainer writes it: 3 decimals, a real minus sign; tiny values keep 3
    significant digits instead of rounding to 0.000."""
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    if x != 0 and abs(x) < 0.5 * 10 ** -digits:
        text = f"{x:+.3g}" if signed else f"{x:.3g}"
    return text.replace("-", "−")


def percent(p: float) -> str:
    return f"{100 * p:.1f}%"


def _likelihood_lines(inputs: StepInputs, who: str, chosen: float, rejected: float) -> tuple[str, ...]:
    if inputs.kind == "probability":
        return (f"{who} says chosen has probability: {chosen:.2f} ({100 * chosen:.0f}%)",
                f"{who} says rejected has probability: {rejected:.2f} ({100 * rejected:.0f}%)")
    lines = []
    for name, logp, tokens in (("chosen", chosen, inputs.chosen_tokens), ("rejected", rejected, inputs.rejected_tokens)):
        per_token = f" ({tokens} tokens, {math.exp(logp / tokens):.3f} per token)" if tokens else ""
        lines.append(f"{who} log-probability of {name}{per_token}: {num(logp, digits=2)}")
    return tuple(lines)


def _reward_line(inputs: StepInputs, name: str, numbers: DpoNumbers) -> str:
    beta = f"{inputs.beta:g}"
    if name == "chosen":
        policy, reference, ratio, reward = (inputs.policy_chosen, inputs.reference_chosen,
                                            numbers.chosen_logratio, numbers.chosen_reward)
    else:
        policy, reference, ratio, reward = (inputs.policy_rejected, inputs.reference_rejected,
                                            numbers.rejected_logratio, numbers.rejected_reward)
    if inputs.kind == "probability":
        inside = f"log({policy:.2f} / {reference:.2f})"
    else:
        inside = f"({num(policy, digits=2)} − ({num(reference, digits=2)}))"
    return (f"{name.capitalize()} reward = {beta} × {inside} = {beta} × {num(ratio)} = {num(reward, signed=True)}")


def six_steps(inputs: StepInputs) -> list[Step]:
    """The explainer's "Step-by-Step: One Training Example", filled with ``inputs``."""
    n = inputs.numbers()
    prefer = n.preference
    if n.margin < 0:
        confidence_note = (f"The model prefers the rejected answer: only {percent(prefer)} for chosen — "
                           "this pair is ranked the wrong way")
    elif prefer < 0.6:
        confidence_note = f"Model is only {percent(prefer)} sure chosen is better — needs more training"
    else:
        confidence_note = f"Model is {percent(prefer)} sure chosen is better"
    grade_note = ("High loss = model hasn't learned yet" if n.loss > 0.5
                  else "Low loss = the model tells this pair's answers apart")
    grade_note += ("; the gradient weight is how hard this pair still pulls chosen up and pushes rejected "
                   "down — it fades as the model gets the pair right")
    if inputs.kind == "probability":
        likely = (f"{inputs.policy_chosen:.2f} · {inputs.policy_rejected:.2f}",
                  f"{inputs.reference_chosen:.2f} · {inputs.reference_rejected:.2f}")
    else:
        likely = (f"{num(inputs.policy_chosen, digits=1)} · {num(inputs.policy_rejected, digits=1)}",
                  f"{num(inputs.reference_chosen, digits=1)} · {num(inputs.reference_rejected, digits=1)}")
    return [
        Step(1, "Get model probabilities", "First, ask the model how likely it would generate each response.",
             "π_θ(y_w | x),  π_θ(y_l | x)",
             _likelihood_lines(inputs, "Model", inputs.policy_chosen, inputs.policy_rejected),
             result=f"π {likely[0]}", values={"policy_chosen": inputs.policy_chosen, "policy_rejected": inputs.policy_rejected}),
        Step(2, "Get reference model probabilities",
             "Next, ask the ORIGINAL model (before training) the same question. This is our baseline.",
             "π_ref(y_w | x),  π_ref(y_l | x)",
             _likelihood_lines(inputs, "Reference", inputs.reference_chosen, inputs.reference_rejected),
             result=f"π_ref {likely[1]}", values={"reference_chosen": inputs.reference_chosen, "reference_rejected": inputs.reference_rejected}),
        Step(3, "Measure how much the model's preference shifted",
             "Now compare: has the model become more or less likely to say each response? Above 0 = "
             "\"likes it more\" than the original did, below 0 = \"likes it less\".",
             "r(y) = β · log( π_θ(y | x) / π_ref(y | x) )",
             (_reward_line(inputs, "chosen", n), _reward_line(inputs, "rejected", n)),
             result=f"r {num(n.chosen_reward, signed=True)} · {num(n.rejected_reward, signed=True)}",
             values={"chosen_logratio": n.chosen_logratio, "rejected_logratio": n.rejected_logratio,
                     "chosen_reward": n.chosen_reward, "rejected_reward": n.rejected_reward}),
        Step(4, "How strong is the preference?",
             "Subtract the two scores. A bigger gap means the model has a stronger preference for the good answer.",
             "gap = r(y_w) − r(y_l)",
             (f"Gap = {num(n.chosen_reward, signed=True)} − ({num(n.rejected_reward, signed=True)}) = {num(n.margin)}",),
             result=f"gap {num(n.margin)}", values={"margin": n.margin}),
        Step(5, "Turn the gap into a confidence score",
             "Convert the gap into a percentage: how sure is the model that the good answer is better?",
             "P(y_w ≻ y_l) = σ(gap) = 1 / (1 + e^(−gap))",
             (f"Confidence = σ({num(n.margin)}) = {percent(prefer)}",), confidence_note,
             result=f"P {percent(prefer)}", values={"preference": prefer}),
        Step(6, "Grade the model",
             "The loss is the model's grade: high means it still can't tell good from bad; training "
             "keeps going until it drops.",
             "loss = −log σ(gap)",
             (f"Loss = −log({prefer:.3f}) = {num(n.loss)}",
              f"Gradient weight = σ(−gap) = {num(n.gradient_weight)}"),
             grade_note, result=f"loss {num(n.loss)}", values={"loss": n.loss, "gradient_weight": n.gradient_weight}),
    ]


@dataclass(frozen=True)
class WorkedExample:
    prompt: str
    chosen: str
    rejected: str
    inputs: StepInputs


# The explainer's Section 6 example (its probabilities and β): the loss comes out 0.664.
WORKED_EXAMPLE = WorkedExample(
    prompt="Should I invest all my savings in crypto?",
    chosen="Research thoroughly, diversify...",
    rejected="YES! Buy Bitcoin NOW!",
    inputs=StepInputs(beta=0.1, policy_chosen=0.30, policy_rejected=0.25, reference_chosen=0.20,
                      reference_rejected=0.30, kind="probability"),
)


def worked_example_steps() -> list[Step]:
    return six_steps(WORKED_EXAMPLE.inputs)


# -- a real pair of the workspace ---------------------------------------------------------------
class LearnError(RuntimeError):
    """The pair or the run cannot be explained; the message says which and why."""


@dataclass(frozen=True)
class PairChoice:
    pair_id: int
    label: str        # the prompt, shortened
    split: str        # "train" (the run may have trained on it) or "eval" (held out)


@dataclass(frozen=True)
class RunChoice:
    run_id: str
    label: str


@dataclass(frozen=True)
class RealPair:
    run_id: str
    pair_id: int
    held_out: bool | None   # True: the run never trained on it; None: the run drew its own split
    prompt: str
    chosen: str
    rejected: str
    loss_type: str          # what the run trained with (the steps always show DPO's sigmoid loss)
    inputs: StepInputs
    steps: tuple[Step, ...]
    sft_weight: float = 0.0  # the run's SFT term (its training loss adds it; the steps are DPO's loss alone)

    @property
    def numbers(self) -> DpoNumbers:
        return self.inputs.numbers()


def plain_text(value) -> str:
    """A prompt or completion as text: a message list becomes its last message's content."""
    if isinstance(value, list):
        return str(value[-1].get("content", "")) if value else ""
    return str(value)


def shorten(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def pair_choices(ws, limit: int = 500) -> list[PairChoice]:
    """Labelled pairs (as training sees them: merged verdicts, ties and skips left out), held-out first."""
    from storage.training_set import build_training_set

    examples = build_training_set(ws).examples
    examples = sorted(examples, key=lambda e: (e.split != "eval", e.pair_id))[:limit]
    return [PairChoice(e.pair_id, shorten(plain_text(e.prompt), 80), e.split) for e in examples]


def run_choices(ws) -> list[RunChoice]:
    """Runs that have an adapter to explain with (a final one or a checkpoint), newest first."""
    from core.operations.runs import runs_with_adapter

    return [RunChoice(run.id, f"{run.name or run.id} · step {run.step} ({run.status.value})")
            for run, _folder in runs_with_adapter(ws, checkpoints=True)]


def explain_pair(ws, run_id: str, pair_id: int, report: Callable[[str], None] | None = None) -> RealPair:
    """The six steps for pair ``pair_id`` under run ``run_id``'s adapter (policy) and its base model
    (reference), computed as training and evaluation compute them. Loads a model: call from a worker."""
    from core.engine.batching import tokenize_examples
    from core.engine.evaluation import EvaluationError, evaluate_pairs, resolve_adapter
    from core.engine.modeling import load_with_adapter, model_fingerprint, tokenization_fingerprint
    from core.engine.reference_cache import compute_reference_logps, ensure_reference_logps
    from storage.training_set import build_training_set

    try:
        adapter_dir, config = resolve_adapter(ws, run_id)
    except EvaluationError as exc:
        raise LearnError(str(exc)) from exc
    example = next((e for e in build_training_set(ws, config.selection_policy).examples if e.pair_id == pair_id), None)
    if example is None:
        raise LearnError(f"pair {pair_id} has no verdict that picks a chosen and a rejected answer")
    if report is not None:
        report(f"loading {config.base_model} with the adapter of run {run_id}")
    loaded = load_with_adapter(config.base_model, adapter_dir, config.device, config.dtype, config.trust_remote_code)
    pairs, _dropped = tokenize_examples(loaded.tokenizer, [example], config.max_length, config.truncation_mode)
    if not pairs:
        raise LearnError(f"pair {pair_id} has no completion token left at max_length={config.max_length}")
    if report is not None:
        report("computing the reference and policy log-probabilities")
    pad = loaded.tokenizer.pad_token_id
    if ws.read_only:    # nothing can be cached: compute the reference for this pair alone
        rows = compute_reference_logps(loaded.model, pairs, pad, 1, loaded.device, packed_pairs=config.packed_pairs)
        reference = {row["example_hash"]: (row["chosen_logp"], row["rejected_logp"]) for row in rows}
    else:
        reference, _computed = ensure_reference_logps(
            ws, loaded.model, pairs, model_fingerprint(config.base_model, loaded.dtype),
            tokenization_fingerprint(loaded.tokenizer, config.max_length, config.truncation_mode),
            pad, 1, loaded.device, packed_pairs=config.packed_pairs)
    metrics = evaluate_pairs(loaded.model, pairs, reference, config, pad, loaded.device, batch_size=1)
    inputs = StepInputs(beta=config.beta, policy_chosen=metrics["logps/chosen"],
                        policy_rejected=metrics["logps/rejected"], reference_chosen=metrics["logps/ref_chosen"],
                        reference_rejected=metrics["logps/ref_rejected"], kind="logp",
                        chosen_tokens=pairs[0].chosen_tokens, rejected_tokens=pairs[0].rejected_tokens)
    held_out = {"workspace": example.split == "eval", "none": False}.get(config.eval_split)
    return RealPair(run_id, pair_id, held_out, plain_text(example.prompt), plain_text(example.chosen),
                    plain_text(example.rejected), config.loss_type, inputs, tuple(six_steps(inputs)), config.sft_weight)
