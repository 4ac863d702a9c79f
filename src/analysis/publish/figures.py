"""One style for every figure of the reports, and figures as numbered, captioned HTML.

- :data:`PALETTE`: the Okabe & Ito colour-blind-safe palette; :data:`ROLE` names the colour
  of each meaning (the fit, a school above or below expected, a highlighted municipality),
  so a resilient school is never drawn in red.
- :func:`use_style`: matplotlib settings shared by all figures (no top/right spines, light
  grid, readable sizes, a true minus sign).
- :func:`figure_html`: a figure as ``<figure>`` with a PNG embedded as ``data:`` URL (no
  file, no request), its alt text and its numbered caption; tick labels follow the
  reader's number conventions (decimal comma in Russian); the PNG carries no software
  version or date, so the same figure gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib
from cycler import cycler
from PIL import Image

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from analysis.publish.typeset import number, typeset_text  # noqa: E402

#: Okabe, M. & Ito, K. (2008) Color Universal Design: distinguishable by colour-blind readers.
PALETTE = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
           "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
           "purple": "#CC79A7", "grey": "#999999"}
#: The colour of each meaning, the same in every figure.
ROLE = {"fit": PALETTE["blue"], "band": PALETTE["sky"], "schools": PALETTE["grey"],
        "above": PALETTE["blue"], "below": PALETTE["vermillion"],
        "resilient": PALETTE["green"], "highlight": PALETTE["orange"],
        "cut": PALETTE["black"], "secondary": PALETTE["orange"]}
#: Resolution of the embedded PNGs (pixels per inch): sharp on screen, small in bytes.
DPI = 96
#: Colours of the embedded PNGs' palette.
COLOURS = 32


def use_style() -> None:
    """Apply the reports' figure style to matplotlib (idempotent)."""
    plt.rcParams.update({
        "figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 10, "axes.titlesize": 11,
        "axes.labelsize": 10, "legend.fontsize": 9, "xtick.labelsize": 9,
        "ytick.labelsize": 9, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.color": "#e6e6e6", "grid.linewidth": 0.6,
        "axes.axisbelow": True, "axes.unicode_minus": True, "legend.frameon": False,
        "axes.prop_cycle": cycler(color=[PALETTE[k] for k in
                                         ("blue", "orange", "green", "vermillion", "purple",
                                          "sky", "yellow", "black")]),
        "svg.hashsalt": "school-context", "path.simplify": True,
    })


def localise_ticks(fig: Figure, lang: str) -> None:
    """Numbers in the figure by the reader's conventions (``0,25``, ``−1``): tick labels of
    every axis that uses matplotlib's default number formatter, and every text already
    placed (annotations, legends, titles)."""
    for text in fig.findobj(Text):
        if text.get_text():
            text.set_text(typeset_text(text.get_text(), lang))
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            fmt = axis.get_major_formatter()
            if isinstance(fmt, ticker.ScalarFormatter):
                axis.set_major_formatter(ticker.FuncFormatter(
                    lambda v, _pos: number(float(f"{v:.10g}"), "g", lang)))
            elif isinstance(fmt, ticker.PercentFormatter):
                axis.set_major_formatter(ticker.FuncFormatter(
                    lambda v, _pos, f=fmt: number(v / f.xmax, ".0%", lang)))


def png_bytes(fig: Figure) -> bytes:
    """The figure as a palette PNG without metadata (no software version, no date): small,
    stable bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    buf.seek(0)
    # an adaptive palette of COLOURS colours: a third of the bytes, no visible loss on
    # charts made of a few flat colours and their anti-aliased edges
    img = Image.open(buf).convert("RGB").quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT,
                                                  dither=Image.Dither.NONE)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def figure_html(fig: Figure, *, caption: str, alt: str, lang: str = "ru",
                close: bool = True) -> str:
    """``<figure>``: the PNG (``data:`` URL), its alt text, and the numbered caption.

    ``caption`` and ``alt`` are plain text (escaped here). The figure is closed afterwards
    unless ``close`` is false.
    """
    localise_ticks(fig, lang)
    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    w, h = (int(round(v * DPI)) for v in fig.get_size_inches())
    if close:
        plt.close(fig)
    return (f'<figure class="fig"><img src="data:image/png;base64,{data}" width="{w}" '
            f'height="{h}" alt="{html.escape(alt)}"><figcaption><span class="fig-no"></span> '
            f"{html.escape(caption)}</figcaption></figure>")
