"""The training form: dataset, model and optimiser settings, Train / Pause / Stop,
progress with samples/s and ETA, and the error banner."""

from __future__ import annotations

import torch
from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.config import ARCHS, CONV_SIZES, MODELS, ModelConfig, TrainConfig
from models.data import DATASETS
from models.likelihoods import LIKELIHOODS
from models.trainer import StepBatch, available_devices
from models.vae import VAE


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``."""
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainingPanel(QWidget):
    """The form. ``train_requested`` / ``pause_requested`` / ``stop_requested`` are
    emitted by the buttons; the window decides what they do."""

    train_requested = Signal()
    continue_requested = Signal()
    pause_requested = Signal()
    stop_requested = Signal()
    dataset_selected = Signal(str)


    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.dataset_combo = QComboBox()
        for key, title in DATASETS.items():
            self.dataset_combo.addItem(title, key)
        self.dataset_combo.setToolTip("The images to train on (shipped with the app, no download)")
        self.latent_spin = QSpinBox()
        self.latent_spin.setRange(2, 64)
        self.latent_spin.setValue(20)
        self.latent_spin.setToolTip("D, the number of latent dimensions (2 gives the classic manifold figure)")
        self.hidden_spin = QSpinBox()
        self.hidden_spin.setRange(8, 4096)
        self.hidden_spin.setValue(400)
        self.hidden_spin.setToolTip("Width of the hidden layer of the encoder and the decoder")
        self.beta_spin = QDoubleSpinBox()
        self.beta_spin.setRange(0.0, 100.0)
        self.beta_spin.setDecimals(2)
        self.beta_spin.setSingleStep(0.5)
        self.beta_spin.setValue(1.0)
        self.beta_spin.setToolTip("β: weight of the KL term in the training loss (β-VAE). Plots show the true ELBO.")
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setRange(1e-6, 10.0)
        self.lr_spin.setDecimals(6)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setValue(1e-3)
        self.lr_spin.setToolTip("Adam learning rate")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 8192)
        self.batch_spin.setValue(128)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 100000)
        self.epochs_spin.setValue(10)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(0)
        self.seed_spin.setToolTip("Seeds the initial weights, the batch order and the reparameterization noise")
        self.device_combo = QComboBox()
        self.device_combo.addItem("auto (best available)", "auto")
        for name in available_devices():
            self.device_combo.addItem(name, name)
        self.precision_combo = QComboBox()
        for label, key in (("auto", "auto"), ("float32", "fp32"), ("bfloat16 matmuls", "bf16")):
            self.precision_combo.addItem(label, key)
        self.precision_combo.setToolTip(
            "Matmul precision of training steps; auto uses bfloat16 where the hardware runs it natively. "
            "Evaluation and the reported ELBO are always float32."
        )

        data_box = QGroupBox("Data")
        data_form = QFormLayout(data_box)
        data_form.addRow("Dataset:", self.dataset_combo)
        self.shapes_spin = QSpinBox()
        self.shapes_spin.setRange(10, 737_280)
        self.shapes_spin.setSingleStep(1000)
        self.shapes_spin.setValue(5000)
        self.shapes_spin.setSuffix(" images")
        self.shapes_spin.setToolTip("How many of the 737,280 shape/scale/orientation/position combinations to draw")
        self.shapes_label = QLabel("Shapes drawn:")
        data_form.addRow(self.shapes_label, self.shapes_spin)
        self.shapes_spin.editingFinished.connect(
            lambda: self.dataset_combo.currentData() == "shapes" and self.dataset_selected.emit(self.dataset_key())
        )
        self.data_label = QLabel()
        self.data_label.setWordWrap(True)
        data_form.addRow(self.data_label)
        self.model_combo = QComboBox()
        for key, title in MODELS.items():
            self.model_combo.addItem(title, key)
        self.model_combo.setToolTip("VAE (set β for a β-VAE), a plain autoencoder for comparison, or a "
                                    "conditional VAE p(x|y, z) that takes the label")
        self.arch_combo = QComboBox()
        for key, title in ARCHS.items():
            self.arch_combo.addItem(title, key)
        self.arch_combo.setToolTip("Convolutional: stride-2 4×4 convolutions, for 28, 32 or 64 pixel images")
        self.likelihood_combo = QComboBox()
        for key, (title, _) in LIKELIHOODS.items():
            self.likelihood_combo.addItem(title, key)
        self.likelihood_combo.setToolTip("p(x|z); every choice reports its ELBO terms in nats per image")
        self.sigma_spin = QDoubleSpinBox()
        self.sigma_spin.setRange(0.001, 1.0)
        self.sigma_spin.setDecimals(3)
        self.sigma_spin.setSingleStep(0.01)
        self.sigma_spin.setValue(0.1)
        self.sigma_spin.setToolTip("σ of the fixed-variance Gaussian likelihood, in pixel units")
        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        model_form.addRow("Model:", self.model_combo)
        model_form.addRow("Network:", self.arch_combo)
        model_form.addRow("Likelihood:", self.likelihood_combo)
        model_form.addRow("Gaussian σ:", self.sigma_spin)
        model_form.addRow("Latent dimensions:", self.latent_spin)
        model_form.addRow("Hidden width:", self.hidden_spin)
        self.model_card = QLabel()
        self.model_card.setWordWrap(True)
        model_form.addRow(self.model_card)
        train_box = QGroupBox("Training")
        train_form = QFormLayout(train_box)
        train_form.addRow("β (KL weight):", self.beta_spin)
        train_form.addRow("Learning rate:", self.lr_spin)
        train_form.addRow("Batch size:", self.batch_spin)
        train_form.addRow("Epochs:", self.epochs_spin)
        train_form.addRow("Seed:", self.seed_spin)
        train_form.addRow("Device:", self.device_combo)
        train_form.addRow("Precision:", self.precision_combo)
        self.warmup_spin = QSpinBox()
        self.warmup_spin.setRange(0, 10_000_000)
        self.warmup_spin.setSuffix(" steps")
        self.warmup_spin.setSpecialValueText("none")
        self.warmup_spin.setToolTip("KL warm-up: the KL weight rises linearly from 0 to β over these steps")
        self.free_bits_spin = QDoubleSpinBox()
        self.free_bits_spin.setRange(0.0, 10.0)
        self.free_bits_spin.setSingleStep(0.05)
        self.free_bits_spin.setDecimals(2)
        self.free_bits_spin.setSpecialValueText("none")
        self.free_bits_spin.setToolTip("Free bits: nats per latent dimension that the KL term does not penalise")
        self.iw_k_spin = QSpinBox()
        self.iw_k_spin.setRange(1, 5000)
        self.iw_k_spin.setToolTip("1: train on the ELBO; k > 1: train on the importance-weighted bound (IWAE)")
        self.eval_iw_spin = QSpinBox()
        self.eval_iw_spin.setRange(0, 5000)
        self.eval_iw_spin.setSpecialValueText("off")
        self.eval_iw_spin.setToolTip("Estimate log p(x) with K importance samples after each epoch")
        self.eval_images_spin = QSpinBox()
        self.eval_images_spin.setRange(1, 100_000)
        self.eval_images_spin.setValue(500)
        self.eval_images_spin.setSuffix(" test images")
        eval_row = QHBoxLayout()
        eval_row.addWidget(self.eval_iw_spin, 1)
        eval_row.addWidget(self.eval_images_spin, 1)
        train_form.addRow("KL warm-up:", self.warmup_spin)
        train_form.addRow("Free bits:", self.free_bits_spin)
        train_form.addRow("IWAE samples:", self.iw_k_spin)
        train_form.addRow("log p(x) estimate, K:", eval_row)
        self.autosave_spin = QSpinBox()
        self.autosave_spin.setRange(0, 240)
        self.autosave_spin.setValue(5)
        self.autosave_spin.setSuffix(" min")
        self.autosave_spin.setSpecialValueText("each epoch only")
        self.autosave_spin.setToolTip("Autosave at the end of each epoch and also every N minutes")
        self.keep_spin = QSpinBox()
        self.keep_spin.setRange(1, 50)
        self.keep_spin.setValue(3)
        self.keep_spin.setToolTip("Autosaves kept in this session's folder")
        autosave_row = QHBoxLayout()
        autosave_row.addWidget(self.autosave_spin, 1)
        autosave_row.addWidget(QLabel("keep"))
        autosave_row.addWidget(self.keep_spin)
        train_form.addRow("Autosave:", autosave_row)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train a new model with these settings (Ctrl+Return)")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip(
            "Train the current model further, up to Epochs in total, with this learning rate and β "
            "(Ctrl+Shift+Return)"
        )
        self.continue_button.setEnabled(False)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause or resume training (Ctrl+P)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop training after the current step (Ctrl+.)")
        buttons = QHBoxLayout()
        for b in (self.train_button, self.continue_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        self.speed_label = QLabel("")
        self.speed_label.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(
            "QLabel { color: #8b0000; background: #fde8e8; border: 1px solid #e0a0a0; padding: 4px; }"
        )
        self.error_label.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(data_box)
        layout.addWidget(model_box)
        layout.addWidget(train_box)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.speed_label)
        layout.addWidget(self.error_label)
        layout.addStretch(1)

        self.train_button.clicked.connect(self.train_requested)
        self.continue_button.clicked.connect(self.continue_requested)
        self.pause_button.clicked.connect(self.pause_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.dataset_combo.currentIndexChanged.connect(lambda _i: self.dataset_selected.emit(self.dataset_key()))
        for w in (self.latent_spin, self.hidden_spin, self.sigma_spin):
            w.valueChanged.connect(self._update_model_card)
        for w in (self.model_combo, self.arch_combo, self.likelihood_combo):
            w.currentIndexChanged.connect(self._update_model_card)
        self._input_shape = (1, 28, 28)
        self._n_classes = 10
        self._restore()
        self.set_running(False)
        self._update_model_card()

    # -- configs ---------------------------------------------------------------------------
    def shapes_key(self) -> str:
        return f"shapes:{self.shapes_spin.value()}"

    def dataset_key(self) -> str:
        """The key to load: the combo's, with the chosen count for the shapes."""
        key = self.dataset_combo.currentData()
        visible = key == "shapes"
        self.shapes_spin.setVisible(visible)
        self.shapes_label.setVisible(visible)
        return self.shapes_key() if visible else key

    def set_dataset_key(self, key: str) -> None:
        i = self.dataset_combo.findData(key)
        if i >= 0:
            self.dataset_combo.setCurrentIndex(i)

    def set_data_info(self, text: str, input_shape: tuple[int, int, int], n_classes: int) -> None:
        self.data_label.setText(text)
        self._input_shape = tuple(input_shape)
        self._n_classes = n_classes
        conv_ok = input_shape[1] == input_shape[2] and input_shape[1] in CONV_SIZES
        item = self.arch_combo.model().item(self.arch_combo.findData("conv"))
        item.setEnabled(conv_ok)
        item.setToolTip("" if conv_ok else f"not for {input_shape[1]}×{input_shape[2]} images")
        if not conv_ok and self.arch_combo.currentData() == "conv":
            self.arch_combo.setCurrentIndex(self.arch_combo.findData("mlp"))
        self._update_model_card()

    def model_config(
        self, input_shape: tuple[int, int, int] | None = None, n_classes: int | None = None
    ) -> ModelConfig:
        """The form's model; raises ValueError for a combination that does not exist."""
        model = self.model_combo.currentData()
        return ModelConfig(
            input_shape=tuple(input_shape or self._input_shape),
            latent_dim=self.latent_spin.value(),
            hidden_dim=self.hidden_spin.value(),
            model=model,
            arch=self.arch_combo.currentData(),
            likelihood=self.likelihood_combo.currentData(),
            sigma=self.sigma_spin.value(),
            n_classes=(self._n_classes if n_classes is None else n_classes) if model == "cvae" else 0,
        )

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            lr=self.lr_spin.value(),
            beta=self.beta_spin.value(),
            seed=self.seed_spin.value(),
            device=self.device_combo.currentData(),
            precision=self.precision_combo.currentData(),
            kl_warmup=self.warmup_spin.value(),
            free_bits=self.free_bits_spin.value(),
            iw_k=self.iw_k_spin.value(),
            eval_iw=self.eval_iw_spin.value(),
            eval_iw_images=self.eval_images_spin.value(),
        )

    def _update_model_card(self) -> None:
        self.sigma_spin.setEnabled(self.likelihood_combo.currentData() == "gaussian")
        vae_only = self.model_combo.currentData() != "ae"
        for w in (self.beta_spin, self.warmup_spin, self.free_bits_spin, self.iw_k_spin, self.eval_iw_spin,
                  self.eval_images_spin):
            w.setEnabled(vae_only)
        try:
            config = self.model_config()
            with torch.device("meta"):  # count the parameters without allocating or initialising them
                params = VAE(config).parameter_count()
        except ValueError as exc:
            self.model_card.setText(f"<span style='color:#8b0000'>{exc}</span>")
            return
        self.model_card.setText(f"{config.describe()} · {params:,} parameters")

    # -- state -----------------------------------------------------------------------------
    def show_configs(self, model_config: ModelConfig, train_config: TrainConfig) -> None:
        """Set the form to an opened model's settings."""
        for combo, value in ((self.model_combo, model_config.model), (self.arch_combo, model_config.arch),
                             (self.likelihood_combo, model_config.likelihood)):
            combo.setCurrentIndex(max(0, combo.findData(value)))
        self.sigma_spin.setValue(model_config.sigma)
        self.latent_spin.setValue(model_config.latent_dim)
        self.hidden_spin.setValue(model_config.hidden_dim)
        self.warmup_spin.setValue(train_config.kl_warmup)
        self.free_bits_spin.setValue(train_config.free_bits)
        self.iw_k_spin.setValue(train_config.iw_k)
        self.eval_iw_spin.setValue(train_config.eval_iw)
        self.eval_images_spin.setValue(train_config.eval_iw_images)
        self.beta_spin.setValue(train_config.beta)
        self.lr_spin.setValue(train_config.lr)
        self.batch_spin.setValue(train_config.batch_size)
        self.epochs_spin.setValue(train_config.epochs)
        self.seed_spin.setValue(train_config.seed)

    def autosave_settings(self) -> tuple[float, int]:
        """``(every_s, keep)``: seconds between timed autosaves (0: epoch ends only) and how many to keep."""
        return self.autosave_spin.value() * 60.0, self.keep_spin.value()

    def set_running(self, running: bool, paused: bool = False, can_continue: bool = False) -> None:
        self.setEnabled(True)
        for box in self.findChildren(QGroupBox):
            box.setEnabled(not running)
        self.train_button.setEnabled(not running)
        if not running:
            self._update_model_card()
        self.continue_button.setEnabled(can_continue and not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Resume" if paused else "Pause")

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def show_progress(self, batch: StepBatch, epochs: int, batch_size: int) -> None:
        done = (batch.epoch - 1) * batch.steps_per_epoch + batch.step_in_epoch
        self.progress.setRange(0, batch.total_steps)
        self.progress.setValue(done)
        self.progress.setFormat(
            f"Epoch {batch.epoch}/{epochs} · step {done}/{batch.total_steps} (%p%)"
        )
        remaining = (batch.total_steps - done) * batch_size
        eta = remaining / batch.samples_per_s if batch.samples_per_s > 0 else 0.0
        self.speed_label.setText(f"{batch.samples_per_s:,.0f} samples/s · ETA {format_duration(eta)}")

    # -- remembered settings ---------------------------------------------------------------
    def _widgets(self):
        return {
            "dataset": self.dataset_combo, "shapes_count": self.shapes_spin, "latent": self.latent_spin,
            "hidden": self.hidden_spin,
            "beta": self.beta_spin, "lr": self.lr_spin, "batch": self.batch_spin, "epochs": self.epochs_spin,
            "seed": self.seed_spin, "device": self.device_combo, "precision": self.precision_combo,
            "autosave_minutes": self.autosave_spin, "autosave_keep": self.keep_spin,
            "model": self.model_combo, "arch": self.arch_combo, "likelihood": self.likelihood_combo,
            "sigma": self.sigma_spin, "kl_warmup": self.warmup_spin, "free_bits": self.free_bits_spin,
            "iw_k": self.iw_k_spin, "eval_iw": self.eval_iw_spin, "eval_iw_images": self.eval_images_spin,
        }

    def save_settings(self) -> None:
        if self.settings is None:
            return
        for key, w in self._widgets().items():
            value = w.currentData() if isinstance(w, QComboBox) else w.value()
            self.settings.setValue(f"form/{key}", value)

    def _restore(self) -> None:
        if self.settings is None:
            return
        for key, w in self._widgets().items():
            value = self.settings.value(f"form/{key}")
            if value is None:
                continue
            try:
                if isinstance(w, QComboBox):
                    i = w.findData(value)
                    if i >= 0:
                        w.setCurrentIndex(i)
                elif isinstance(w, QDoubleSpinBox):
                    w.setValue(float(value))
                else:
                    w.setValue(int(value))
            except (TypeError, ValueError):
                continue  # a damaged settings file must not stop the app
