"""The report's figures are laid out to be read: per-target panels in a grid of at most three a row, each
panel of the same readable size however many targets there are, and ROC curves that never share a style."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from robustmia.reporting.figures import PANEL_COLUMNS, PANEL_SIZE, line_style, panels


@pytest.mark.parametrize("n, rows, columns", [(1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 2, 3), (6, 2, 3), (7, 3, 3)])
def test_panels_make_a_grid_of_readable_panels(n, rows, columns):
    fig, axes = panels(n)
    assert len(axes) == n and all(ax.get_visible() for ax in axes)
    assert sum(not ax.get_visible() for ax in fig.axes) == rows * columns - n  # the unused cells are hidden
    width, height = fig.get_size_inches()
    assert (width, height) == pytest.approx((PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows))
    assert width / min(n, PANEL_COLUMNS) >= 4  # inches per panel, whatever the number of targets
    plt.close(fig)


def test_every_roc_curve_has_its_own_colour_and_dash():
    styles = [line_style(i) for i in range(30)]
    assert len({(tuple(s["color"]), s["ls"]) for s in styles}) == 30
    assert len({tuple(s["color"]) for s in styles[:10]}) == 10  # the first ten differ in colour alone
