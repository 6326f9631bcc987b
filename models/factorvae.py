"""FactorVAE's discriminator with its own Adam, trained alongside the VAE (Kim & Mnih 2018,
algorithm 1), and saved with the trainer's state for an exact resume."""

from __future__ import annotations

import torch

from models.penalties import TCDiscriminator
from models.state import optimizer_state, optimizer_tensors, state_tensors


class FactorVAEDiscriminator:
    """The discriminator :class:`~models.penalties.TCDiscriminator` (``net``) and its Adam
    (lr 1e-4, betas 0.5, 0.9: Kim & Mnih 2018, appendix).

    Args:
        latent_dim: D; width: units of each of its 6 layers; device: where it trains.
    """

    def __init__(self, latent_dim: int, width: int, device: torch.device | str = "cpu"):
        self.net = TCDiscriminator(latent_dim, width).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def step(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One update on the batch's samples ``z`` ``(B, D)`` against their dimension-permuted copy;
        returns its accuracy before the update (a scalar tensor)."""
        loss, accuracy = self.net.loss(z.float(), generator)
        self.optimizer.zero_grad(set_to_none=True)  # the VAE's backward also reached these weights
        loss.backward()
        self.optimizer.step()
        return accuracy

    def export(self) -> dict[str, torch.Tensor]:
        """Weights (``discriminator.*``) and Adam state (``disc_optimizer.<i>.<name>``) as CPU tensors."""
        return {**state_tensors(self.net, "discriminator."), **optimizer_tensors(self.optimizer, "disc_optimizer")}

    def load(self, tensors: dict[str, torch.Tensor], untrained: bool) -> None:
        """Restore :meth:`export`'s tensors (``untrained``: no Adam state yet is fine).

        Raises:
            ValueError: when they are missing or do not fit.
        """
        weights = {k[len("discriminator."):]: v for k, v in tensors.items() if k.startswith("discriminator.")}
        state = optimizer_state(tensors, "disc_optimizer")
        if not weights or (not state and not untrained):
            raise ValueError("the FactorVAE discriminator's state is missing, so training cannot resume exactly")
        groups = self.optimizer.state_dict()["param_groups"]
        try:
            self.net.load_state_dict(weights, strict=True)
            self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ValueError(f"the FactorVAE discriminator's state does not fit: {str(exc).splitlines()[0]}") from exc
