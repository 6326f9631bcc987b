"""vaegui: a desktop latent-space explorer for Variational Autoencoders."""

__version__ = "0.1.0"
