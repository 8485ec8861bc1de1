"""Figures of the HTML report, drawn in memory and embedded as ``data:`` URIs.

Nothing is written to disk: every figure is a matplotlib ``Figure`` on the Agg canvas saved
into a buffer, and existing PNG files (the overlays) are read, shrunk with Pillow and
re-encoded. The page therefore needs no other file and no network.
"""

from __future__ import annotations

import base64
import io
import os
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["png_data_uri", "curves_figure", "boxplot_figure", "embed_image"]

_DPI = 80


def png_data_uri(data: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _to_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return png_data_uri(buffer.getvalue())


def curves_figure(histories: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
                  max_panels: int = 4) -> str | None:
    """Training (solid) and validation (dashed) curves of every fold, one panel per quantity.

    Args:
        histories: ``[(fold name, {name: [value per epoch]})]`` with ``val_<name>`` for the
            validation values; each fold gets its own colour.
        max_panels: At most this many quantities (``loss`` first).

    Returns:
        A PNG data URI, or ``None`` when no history has a value.
    """
    keys = [k for _, history in histories for k in history if len(history[k])]
    names = sorted(dict.fromkeys(k[4:] if k.startswith("val_") else k for k in keys),
                   key=lambda n: (n != "loss", n))[:max_panels]
    if not names:
        return None
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    fig = _figure(4.4 * len(names), 3.3)
    fig.subplots_adjust(left=0.25 / len(names) + 0.04, right=0.98, bottom=0.16, top=0.88,
                        wspace=0.3)
    for panel, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), panel + 1)
        for k, (label, history) in enumerate(histories):
            for key, style, part in ((name, "-", "train"), ("val_" + name, "--", "val")):
                values = np.asarray(history.get(key) or [], dtype=float)
                if values.size:
                    ax.plot(np.arange(1, values.size + 1), values, style, marker=".",
                            color=palette(k % 10), label=f"{label} {part}")
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if panel == 0:
            ax.legend(fontsize="x-small")
    return _to_uri(fig)


def boxplot_figure(table: Any, metrics: Sequence[str], foreground_only: bool = False) -> str | None:
    """Box plots per class of ``metrics`` from a long table (``class`` + metric columns).

    Args:
        table: Long metric table.
        metrics: Metric columns (absent or all-NaN ones are skipped).
        foreground_only: Leave out class 0 (instance metrics are NaN there).

    Returns:
        A PNG data URI, or ``None`` when no metric has a value.
    """
    if foreground_only and "class" in table.columns:
        table = table[table["class"].astype(str) != "0"]
    shown = [m for m in metrics if m in table.columns
             and np.isfinite(np.asarray(table[m], dtype=float)).any()]
    if not shown:
        return None
    classes = sorted(table["class"].unique().tolist(), key=str)
    fig = _figure(max(2.6, 0.7 * len(classes) + 1.6) * len(shown), 3.0)
    fig.subplots_adjust(left=0.25 / len(shown) + 0.04, right=0.98, bottom=0.16, top=0.9,
                        wspace=0.35)
    for panel, metric in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), panel + 1)
        data = []
        for cls in classes:
            values = np.asarray(table.loc[table["class"] == cls, metric], dtype=float)
            data.append(values[np.isfinite(values)])
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(np.arange(1, len(classes) + 1), [str(c) for c in classes])
        ax.set_xlabel("class")
        ax.set_title(metric, fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
    return _to_uri(fig)


def embed_image(path: str | os.PathLike, max_width: int = 480) -> str:
    """Read an image file, shrink it to ``max_width`` pixels and return a data URI.

    The image is kept as PNG (the file's own bytes when it is a PNG of at most
    ``max_width`` pixels) or re-encoded as JPEG (quality 85), whichever is clearly smaller:
    PNG for flat figures, JPEG for photo-like slices, which keeps many overlays light.

    Raises:
        OSError: when the file cannot be read as an image.
    """
    from PIL import Image

    path = os.fspath(path)
    with Image.open(path) as image:
        image.load()
        source_png = image.format == "PNG" and image.width <= max_width
        rgba = image.convert("RGBA")
    picture = Image.new("RGB", rgba.size, "white")
    picture.paste(rgba, mask=rgba.getchannel("A"))  # transparent parts on white
    if picture.width > max_width:
        height = max(1, round(picture.height * max_width / picture.width))
        picture = picture.resize((max_width, height), Image.Resampling.LANCZOS)
    if source_png:
        with open(path, "rb") as handle:
            png = handle.read()
    else:
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        png = buffer.getvalue()
    jpeg = io.BytesIO()
    picture.save(jpeg, format="JPEG", quality=85)
    if jpeg.tell() < 0.8 * len(png):
        return "data:image/jpeg;base64," + base64.b64encode(jpeg.getvalue()).decode("ascii")
    return png_data_uri(png)
