"""The data term of inpainting: a degradation operator and the masked squared error the network is fitted to.

With m the known-pixel mask (1 known, 0 missing or padding) and y the observation, the degradation is
A(x) = m ⊙ x and the loss of a network output x is

    L(x) = ||m ⊙ (x − y)||² / (C·H·W),

the authors' ``mse(out * mask, img * mask)``: the squared error over the known pixels, divided by the number of
*all* values of the (unpadded) image, not of the known ones. Only known pixels carry gradient.
"""

from __future__ import annotations

import numpy as np
import torch


class MaskedMSE:
    """L(x) = ||m ⊙ (x − y)||² / (C·H·W) on the network's padded output size (the padding is unknown, m = 0)."""

    def __init__(self, image: np.ndarray, known: np.ndarray, padded: tuple[int, int], device: torch.device):
        c, h, w = image.shape
        obs = np.zeros((1, c, *padded), np.float32)
        mask = np.zeros((1, 1, *padded), np.float32)
        obs[0, :, :h, :w] = image * known
        mask[0, 0, :h, :w] = known
        self.observation = torch.from_numpy(obs).to(device)  # y = A(image): missing pixels are 0
        self.mask = torch.from_numpy(mask).to(device)
        self.norm = float(c * h * w)

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        """L(out), a 0-dim fp32 tensor."""
        return ((out - self.observation) * self.mask).pow(2).sum() / self.norm
