"""The training plots make what they draw only when it is needed (the Train tab's first opening
builds six panels on the UI thread): a curve's items at its first data, a panel's right-click
menu at the first right-click. What they draw is what the series holds."""

from __future__ import annotations

import pytest

from core.operations.metric_series import MetricSeries
from gui.train.training_plots import PANELS, MetricPanel


def _series(steps: int) -> MetricSeries:
    series = MetricSeries()
    for step in range(1, steps + 1):
        series.add(step, "train", {"loss": 1.0 / step, "rewards/chosen": 0.1 * step, "rewards/rejected": -0.1 * step,
                             "rewards/margins": 0.2 * step})
    return series


def test_a_curve_has_no_plot_items_until_its_metric_has_data(qtbot) -> None:
    rewards = next(spec for spec in PANELS if spec.key == "rewards")
    panel = MetricPanel(rewards)
    qtbot.addWidget(panel)
    assert all(curve.line is None and curve.raw is None for curve in panel.curves)
    assert panel.point_count("rewards/margins") == 0
    items_before = len(panel.plot.listDataItems())
    assert items_before == 0
    panel.redraw(_series(5), 0.0, [])
    made = {curve.spec.label: curve.line is not None for curve in panel.curves}
    assert made == {"chosen": True, "rejected": True, "margin (chosen − rejected)": True, "eval margin": False}
    assert panel.point_count("rewards/margins") == 5
    assert panel.curves[2].raw.getData()[1].tolist() == pytest.approx([0.2 * s for s in range(1, 6)])
    assert len(panel.plot.listDataItems()) == 6          # raw + smoothed line of the three with data


def test_the_right_click_menu_is_made_at_its_first_use(qtbot) -> None:
    panel = MetricPanel(PANELS[0])
    qtbot.addWidget(panel)
    view_box = panel.plot.vb
    assert view_box.menu is None and view_box.menuEnabled()
    menu = view_box.getMenu(None)
    assert menu is view_box.menu and "View All" in [action.text() for action in menu.actions()]
    assert view_box.getMenu(None) is menu                 # made once
