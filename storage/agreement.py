"""Inter-annotator agreement statistics for nominal labels (pure functions, no database).

A *unit* is one item (a pair) with the labels its annotators gave it: ``{annotator: label}``.
Only units with at least two labels carry information about agreement.

- percent agreement: for each unit, the share of its annotator pairs that agree,
  averaged over units (= Fleiss' P-bar).
- Cohen's kappa for two annotators over the units both labelled:
  (p_o - p_e) / (1 - p_e), p_e from each annotator's own label frequencies.
- Fleiss' kappa, generalised to a varying number of raters per unit: P_i =
  (sum_j n_ij^2 - m_i) / (m_i (m_i - 1)), P-bar their mean, p_j = pooled label shares,
  P_e = sum_j p_j^2 (Fleiss 1971; equal to the original when every unit has m raters).
- Krippendorff's alpha (nominal) from the coincidence matrix: alpha = 1 - (n - 1) D_o / D_e
  with D_o = sum_{c != k} o_ck and D_e = sum_{c != k} n_c n_k (Krippendorff 2011).

A statistic is ``None`` where it is undefined (no units, or expected agreement of 1).
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Hashable, Mapping, Sequence

Unit = Mapping[str, Hashable]  # annotator name -> label


def _rated(units: Sequence[Unit]) -> list[Unit]:
    return [u for u in units if len(u) >= 2]


def percent_agreement(units: Sequence[Unit]) -> float | None:
    rated = _rated(units)
    if not rated:
        return None
    shares = []
    for unit in rated:
        labels = list(unit.values())
        pairs = list(combinations(labels, 2))
        shares.append(sum(x == y for x, y in pairs) / len(pairs))
    return sum(shares) / len(shares)


def cohen_kappa(labels_1: Sequence[Hashable], labels_2: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two annotators' labels on the same items (equal-length sequences)."""
    if len(labels_1) != len(labels_2):
        raise ValueError("cohen_kappa needs two label sequences of equal length")
    n = len(labels_1)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(labels_1, labels_2)) / n
    freq_1, freq_2 = Counter(labels_1), Counter(labels_2)
    expected = sum(freq_1[c] * freq_2[c] for c in freq_1) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def pairwise_cohen_kappa(units: Sequence[Unit]) -> dict[tuple[str, str], tuple[float | None, int]]:
    """Cohen's kappa for every two annotators who share at least one unit: (kappa, n shared)."""
    annotators = sorted({name for unit in units for name in unit})
    result: dict[tuple[str, str], tuple[float | None, int]] = {}
    for first, second in combinations(annotators, 2):
        shared = [(u[first], u[second]) for u in units if first in u and second in u]
        if shared:
            result[(first, second)] = (cohen_kappa([x for x, _ in shared], [y for _, y in shared]), len(shared))
    return result


def fleiss_kappa(units: Sequence[Unit]) -> float | None:
    rated = _rated(units)
    if not rated:
        return None
    per_unit = []
    pooled: Counter = Counter()
    for unit in rated:
        counts = Counter(unit.values())
        m = len(unit)
        per_unit.append((sum(c * c for c in counts.values()) - m) / (m * (m - 1)))
        pooled.update(counts)
    p_bar = sum(per_unit) / len(per_unit)
    total = sum(pooled.values())
    p_e = sum((c / total) ** 2 for c in pooled.values())
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def krippendorff_alpha_nominal(units: Sequence[Unit]) -> float | None:
    rated = _rated(units)
    if not rated:
        return None
    coincidences: Counter = Counter()  # (c, k) -> o_ck
    for unit in rated:
        labels = list(unit.values())
        m = len(labels)
        for i, c in enumerate(labels):
            for j, k in enumerate(labels):
                if i != j:
                    coincidences[(c, k)] += 1.0 / (m - 1)
    n_c: Counter = Counter()
    for (c, _k), o in coincidences.items():
        n_c[c] += o
    n = sum(n_c.values())
    observed_disagreement = sum(o for (c, k), o in coincidences.items() if c != k)
    expected_disagreement = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    if expected_disagreement == 0:
        return None
    return 1.0 - (n - 1) * observed_disagreement / expected_disagreement
