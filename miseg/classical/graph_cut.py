"""Graph cut: binary s-t min-cut with an intensity data term and a contrast-sensitive
boundary term (Boykov-Jolly), solved by PyMaxflow, 2D and 3D."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from miseg.classical import _common
from miseg.classical.base import ClassicalMethod, register
from miseg.errors import ConfigurationError

__all__ = ["GraphCut", "Box"]


@dataclass(frozen=True)
class Box:
    """A box scribble ``[start, stop)`` in voxel indices: everything outside is background,
    the object's intensity model is estimated inside (GrabCut-style, re-estimated after
    every cut)."""

    start: Sequence[int]
    stop: Sequence[int]

    def mask(self, shape: tuple[int, ...], sample: Any) -> np.ndarray:
        start, stop = tuple(int(s) for s in self.start), tuple(int(s) for s in self.stop)
        if len(start) != len(shape) or len(stop) != len(shape):
            raise ConfigurationError(
                f"Case {_common.case_name(sample)}: box {start}-{stop} does not have {len(shape)} coordinates "
                f"for the {len(shape)}D image {shape}."
            )
        if any(a < 0 or b > s or a >= b for a, b, s in zip(start, stop, shape)):
            raise ConfigurationError(
                f"Case {_common.case_name(sample)}: box {start}-{stop} is empty or outside the image {shape}."
            )
        inside = np.zeros(shape, bool)
        inside[tuple(slice(a, b) for a, b in zip(start, stop))] = True
        return inside


@register("graph_cut")
class GraphCut(ClassicalMethod):
    """Binary graph cut per foreground class with PyMaxflow.

    Energy: ``sum_p D_p(label_p) + sum_{p~q, label_p != label_q} w_pq``, with the data term
    ``D_p(l) = -log p(I_p | l)`` under Gaussian intensity models and the contrast-sensitive
    boundary term ``w_pq = lam * exp(-(I_p - I_q)^2 / (2 sigma^2)) / dist_pq`` between
    face neighbours (``dist_pq`` in mm, so the term is spacing-aware; ``sigma`` defaults to
    the root mean square of the neighbour differences of the case). Scribbled voxels are
    hard constraints.

    Where the intensity models come from:

    * scribbles (``predict(sample, seeds=...)``, forms as in region growing; class 0 is
      background): each class's model from its scribbled voxels. Scribbles of only one class
      are refused.
    * a :class:`Box` (``seeds=Box(start, stop)``, binary): background outside (hard), the
      object inside, re-estimated from the cut ``box_iterations`` times.
    * nothing (unattended use): the per-class models learned by :meth:`fit`, with class
      priors; no hard constraints.

    Multi-class: each foreground class ``c`` is cut against all other classes (their
    mixture), in increasing class order; a later class wins where cuts overlap.

    Args:
        lam: Weight of the boundary term.
        sigma: Contrast scale of the boundary term; ``None``: from the image.
        box_iterations: Model re-estimations for a box scribble.
        smoothing: Gaussian sigma (voxels) applied first.
        channel: Image channel.

    Example:
        >>> GraphCut(lam=2.0).predict(sample, seeds={1: [(8, 8)], 0: [(0, 0), (15, 15)]})
    """

    learns = True

    def __init__(self, lam: float = 1.0, sigma: float | None = None, box_iterations: int = 3,
                 smoothing: float | None = None, channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        if not float(lam) >= 0:
            raise ConfigurationError(f"graph_cut: lam must be >= 0, got {lam!r}.")
        if sigma is not None and not float(sigma) > 0:
            raise ConfigurationError(f"graph_cut: sigma must be positive or None, got {sigma!r}.")
        self.lam = float(lam)
        self.sigma = None if sigma is None else float(sigma)
        self.box_iterations = int(box_iterations)

    def _fit(self, samples: list) -> dict[str, Any]:
        classes = _common.check_samples(samples, "graph_cut")
        return {"model": _common.gaussian_model(_common.class_values(samples, self.image, classes))}

    # ------------------------------------------------------------------ prediction
    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:
        image = self.image(sample)
        spacing = _common.spacing_of(sample)
        weights = self.boundary_weights(image, spacing)
        labels = np.zeros(image.shape, np.int64)
        if isinstance(seeds, Box):
            return _common.paint(labels, {1: self._box_cut(image, weights, seeds.mask(image.shape, sample))})
        masks = _common.resolve_seeds(seeds, sample, int(sample.classes))
        if masks is None:
            return _common.paint(labels, self._unattended(image, weights, sample))
        if len(masks) < 2:
            raise ConfigurationError(
                f"Case {_common.case_name(sample)}: the graph cut got scribbles of only class(es) "
                f"{sorted(masks)}; mark the object and the background (at least two classes)."
            )
        cuts = {}
        for c in sorted(k for k in masks if k > 0):
            other = np.logical_or.reduce([m for k, m in masks.items() if k != c])
            fg_cost, bg_cost = self._scribble_costs(image, masks[c], other)
            cuts[c] = cut(fg_cost, bg_cost, weights, hard_fg=masks[c], hard_bg=other)
        return _common.paint(labels, cuts)

    def _unattended(self, image: np.ndarray, weights: list, sample: Any) -> dict[int, np.ndarray]:
        model = _common.require_model(self._learned.get("model"), sample, "the graph cut")
        posteriors = _common.class_log_posteriors(image, model)
        cuts = {}
        for c in range(1, posteriors.shape[0]):
            if not np.isfinite(posteriors[c]).any():
                continue
            rest = np.delete(posteriors, c, axis=0)
            cuts[c] = cut(-posteriors[c], -np.logaddexp.reduce(rest, axis=0), weights)
        return cuts

    @staticmethod
    def _scribble_costs(image: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Data costs from Gaussians of the scribbled intensities; a class with few scribbles
        (e.g. one clicked voxel) gets at least the pooled within-class standard deviation."""
        values = [image[bg], image[fg]]
        model = _common.gaussian_model(values)
        pooled = float(np.sqrt(sum(v.size * v.var() for v in values) / sum(v.size for v in values)))
        std = [max(s, pooled) for s in model["std"]]
        return (-_common.log_likelihood(image, model["mean"][1], std[1]),
                -_common.log_likelihood(image, model["mean"][0], std[0]))

    def _box_cut(self, image: np.ndarray, weights: list, inside: np.ndarray) -> np.ndarray:
        if inside.all():
            raise ConfigurationError("graph_cut: the box covers the whole image, so there is no background scribble.")
        fg = inside
        for _ in range(max(1, self.box_iterations)):
            fg_cost, bg_cost = self._scribble_costs(image, fg if fg.any() else inside, ~fg)
            fg = cut(fg_cost, bg_cost, weights, hard_bg=~inside)
        return fg

    def boundary_weights(self, image: np.ndarray, spacing: Sequence[float]) -> list[np.ndarray]:
        """Per axis ``a``: the weight of the edge between voxel ``p`` and ``p + e_a`` (0 on the last slice)."""
        diffs = [np.diff(image.astype(np.float64), axis=a) for a in range(image.ndim)]
        sigma2 = self.sigma ** 2 if self.sigma is not None else float(np.mean(np.concatenate(
            [(d * d).ravel() for d in diffs])))
        sigma2 = max(sigma2, 1e-12)
        weights = []
        for a, d in enumerate(diffs):
            w = self.lam * np.exp(-(d * d) / (2 * sigma2)) / float(spacing[a])
            pad = [(0, 0)] * image.ndim
            pad[a] = (0, 1)
            weights.append(np.pad(w, pad))
        return weights


def cut(fg_cost: np.ndarray, bg_cost: np.ndarray, weights: Sequence[np.ndarray],
        hard_fg: np.ndarray | None = None, hard_bg: np.ndarray | None = None) -> np.ndarray:
    """Minimum s-t cut of a grid graph (PyMaxflow); returns the foreground mask.

    Args:
        fg_cost: Cost of labelling each voxel foreground.
        bg_cost: Cost of labelling each voxel background.
        weights: Per axis, the edge weight between ``p`` and ``p + e_axis``.
        hard_fg: Voxels forced to foreground.
        hard_bg: Voxels forced to background.
    """
    import maxflow

    shape = fg_cost.shape
    offset = min(float(np.min(fg_cost)), float(np.min(bg_cost)))
    fg_cost, bg_cost = fg_cost - offset, bg_cost - offset
    infinity = 1e3 * (1.0 + float(np.max(fg_cost)) + float(np.max(bg_cost)) + sum(float(w.max()) for w in weights) * 2)
    source, sink = bg_cost.copy(), fg_cost.copy()  # the source side is foreground
    if hard_fg is not None:
        source[hard_fg], sink[hard_fg] = infinity, 0.0
    if hard_bg is not None:
        source[hard_bg], sink[hard_bg] = 0.0, infinity
    graph = maxflow.Graph[float]()
    nodes = graph.add_grid_nodes(shape)
    for axis, w in enumerate(weights):
        structure = np.zeros((3,) * len(shape))
        structure[tuple(2 if a == axis else 1 for a in range(len(shape)))] = 1
        graph.add_grid_edges(nodes, weights=w, structure=structure, symmetric=True)
    graph.add_grid_tedges(nodes, source, sink)
    graph.maxflow()
    return ~graph.get_grid_segments(nodes)
