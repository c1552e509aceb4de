"""ipywidgets controls that redraw a figure when moved."""
from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt


def slider_figure(draw: Callable, *, description: str, value: float, min: float, max: float,
                  step: float, readout_format: str = ".2f"):
    """A float slider and an output area; moving the slider calls ``draw(value, ax)`` on a
    fresh figure. Returns the widget box (display it as the cell's last line)."""
    import ipywidgets as widgets
    from IPython.display import display

    slider = widgets.FloatSlider(value=value, min=min, max=max, step=step, description=description,
                                 continuous_update=False, readout_format=readout_format)
    out = widgets.Output()

    def redraw(change=None):
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6, 4))
            draw(slider.value, ax)
            display(fig)
            plt.close(fig)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, out])
