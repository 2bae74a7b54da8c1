"""`dip inpaint`'s answer when DIP may lose: the network, the classical fill, or a blend, chosen on held-out pixels.

At a laptop's budget DIP can lose to the biharmonic fill (:func:`dip.core.classical.fill`), which takes well under a
second. The fit's held-out known pixels (:mod:`dip.engine.holdout`) decide without a ground truth, fairly: the
classical fill is computed for the decision with the held-out pixels treated as missing too, exactly what the
network did not see. With d the network's candidate and c that fill, the blend

    b_w = w·d + (1 − w)·c,    w = argmin over [0, 1] of ||b_w − y||² on the held-out pixels (closed form)

contains both (w = 1: DIP; w = 0: the classical fill), so its held-out error is never above either's. The DIP
candidate d is one image, chosen without looking at the held-out pixels again: the validation rule's output
(what it watches, the output average or the estimate, at its best held-out PSNR) when the rule has fired, i.e.
the held-out PSNR stayed below its best for the whole patience; otherwise the end's image of the same kind, the
final average or the final iterate (a best held-out PSNR that the patience has not confirmed is mostly noise on
a small image: measured in docs/stopping.md). When the rule watches the average, the final iterate stands for
DIP instead where it predicts the held-out pixels better: at a short budget (320 iterations at 512x512 on a CPU)
the average still carries the early, blurred outputs (weight 0.99: those older than 100 iterations keep 37%).
The picture written is w·d + (1 − w)·c_all, with c_all the classical fill from every known pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dip.core.classical import fill
from dip.core.quality import psnr_known

# the fit's images that may stand for DIP, and what they are (dip.engine.fit, dip.engine.holdout)
CANDIDATES = {"output_val.png": "the {watched} at its best held-out PSNR, where the rule fired",
              "output.png": "the final iterate", "output_ema.png": "the final output average"}


@dataclass
class Choice:
    """The blend weight of DIP, the DIP candidate, and the held-out PSNRs (dB) that chose them."""

    weight: float
    candidate: str
    scores: dict[str, float] = field(default_factory=dict)
    watched: str = "estimate"  # what the validation rule watched (dip.engine.holdout.WATCHED), for output_val.png

    @property
    def what(self) -> str:
        if self.weight >= 1.0:
            return "DIP"
        if self.weight <= 0.0:
            return "the biharmonic fill"
        return f"a blend of {self.weight:.2f} DIP + {1 - self.weight:.2f} biharmonic fill"

    def line(self) -> str:
        """Why, in one line (printed by dip inpaint)."""
        s = self.scores
        dip = CANDIDATES[self.candidate].format(watched=self.watched)
        return (f"{self.what}: on the {s['pixels']:.0f} held-out known pixels DIP ({dip}) "
                f"scores {s['dip']:.2f} dB, the biharmonic fill {s['classical']:.2f} dB, the blend {s['blend']:.2f}"
                " dB")


def blend_weight(d: np.ndarray, c: np.ndarray, y: np.ndarray) -> float:
    """argmin over w in [0, 1] of ||w·d + (1 − w)·c − y||² (1.0 when d and c agree)."""
    diff = (d - c).astype(np.float64)
    den = float((diff * diff).sum())
    return 1.0 if den == 0 else float(np.clip((diff * (y - c)).sum() / den, 0.0, 1.0))


def choose(image: np.ndarray, known: np.ndarray, held: np.ndarray, dip: np.ndarray, name: str,
           watched: str = "estimate") -> Choice:
    """The blend of the DIP candidate ``dip`` (the fit's image ``name``) and the classical fill that best predicts
    the held-out pixels ``held`` of ``image``; ``known`` is the fit's known mask (held-out pixels removed),
    ``watched`` what the validation rule watched (for the line)."""
    y = image[:, held]
    classical = fill(image, known)
    d, c = np.clip(dip[:, held], 0, 1), classical[:, held]
    w = blend_weight(d, c, y)
    scores = {"pixels": float(held.sum()), "dip": psnr_known(image, dip, held),
              "classical": psnr_known(image, classical, held)}
    blended = np.where(held[None], w * np.clip(dip, 0, 1) + (1 - w) * classical, image)
    scores["blend"] = psnr_known(image, blended, held)
    return Choice(w, name, scores, watched)


def chosen_image(choice: Choice, image: np.ndarray, all_known: np.ndarray,
                 images: dict[str, np.ndarray]) -> np.ndarray:
    """The picture of ``choice``: w·DIP + (1 − w)·(the classical fill from every known pixel, ``all_known``)."""
    d = np.clip(images[choice.candidate], 0, 1)
    if choice.weight >= 1.0:
        return d
    classical = fill(image, all_known)
    return (choice.weight * d + (1 - choice.weight) * classical).astype(np.float32)


def candidate(fit) -> str:
    """The fit's image that stands for DIP (module docstring): the validation rule's output when it fired, else
    the end's image of what the rule watched (the final average or the final iterate); watching the average, the
    final iterate where its held-out PSNR is higher."""
    v = fit.validation
    name = "output_val.png" if v.fired() is not None else "output_ema.png" if v.watch == "average" else "output.png"
    if v.watch == "average":
        image = fit.inputs.image
        if psnr_known(image, fit.images["output.png"], v.held) > psnr_known(image, fit.images[name], v.held):
            return "output.png"
    return name


def decide(fit) -> tuple[np.ndarray, str]:
    """For a finished :class:`dip.engine.fit.Fit` with held-out pixels: the picture to write (at the fit's size) and
    what it is, in words (the choice and why)."""
    inputs, held = fit.inputs, fit.validation.held
    name = candidate(fit)
    choice = choose(inputs.image, inputs.known, held, fit.images[name], name, fit.validation.watched)
    fit.choice = choice
    return chosen_image(choice, inputs.image, inputs.known | held, fit.images), choice.line()
