"""vaegui's VAE backend: torch + numpy only, never Qt.

Usable from a script or a notebook::

    from models import ModelConfig, TrainConfig, load_dataset, Trainer
    data = load_dataset("digits")
    trainer = Trainer(ModelConfig(input_shape=data.image_shape), TrainConfig(epochs=2), data)
    for event in trainer.run():
        print(event)
"""

from models.checkpoint import Checkpoint, CheckpointError, read_checkpoint, save_checkpoint
from models.config import ModelConfig, TrainConfig
from models.data import DATASETS, ImageDataset, load_dataset
from models.events import EpochEnd, StepBatch, TrainingDone
from models.objectives import ELBOTerms, bernoulli_log_likelihood, elbo_terms, gaussian_kl
from models.trainer import NonFiniteLossError, Trainer, best_device
from models.vae import MLPVAE, VAE

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "read_checkpoint",
    "save_checkpoint",
    "DATASETS",
    "ELBOTerms",
    "EpochEnd",
    "ImageDataset",
    "MLPVAE",
    "VAE",
    "ModelConfig",
    "NonFiniteLossError",
    "StepBatch",
    "TrainConfig",
    "Trainer",
    "TrainingDone",
    "bernoulli_log_likelihood",
    "best_device",
    "elbo_terms",
    "gaussian_kl",
    "load_dataset",
]
