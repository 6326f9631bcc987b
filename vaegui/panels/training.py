"""The training form: dataset, model and optimiser settings, Train / Pause / Stop,
progress with samples/s and ETA, and the error banner."""

from __future__ import annotations

import torch
from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.config import CONDITIONAL_MODELS, CONV_SIZES, HIERARCHICAL_MODELS, ModelConfig, TrainConfig, fields_of
from models.data import DATASETS
from models.datasets import parse_dataset
from models.evaluation import test_terms_text
from models.run import Progress
from models.trainer import available_devices
from models.vae import build_model
from vaegui.fields import field_widget, label, set_value, value
from vaegui.panels.runprogress import RunProgress

#: per model, the form's settings it does not use: disabled, and set to the value given (None: left as it is)
_NO_POSTERIOR = {"objective": "beta", "beta": None, "kl_warmup": None, "free_bits": None, "iw_k": None,
                 "eval_iw": None, "eval_iw_images": None}
NOT_USED = {
    "ae": _NO_POSTERIOR,
    "m2": {"objective": "beta", "free_bits": 0.0, "iw_k": 1, "eval_iw": 0, "eval_iw_images": None},
    "hvae": {"objective": "beta", "free_bits": 0.0, "arch": "mlp"},
    "ladder": {"objective": "beta", "free_bits": 0.0, "arch": "mlp"},
    "vqvae": {**_NO_POSTERIOR, "beta": 1.0, "kl_warmup": 0, "free_bits": 0.0, "iw_k": 1, "eval_iw": 0,
              "latent_dim": None, "hidden_dim": None, "arch": None},
}
GATED = set().union(*NOT_USED.values())
#: the form's rows shown only for some models
OWN_ROWS = {"layer1_dim": HIERARCHICAL_MODELS, "codebook_size": ("vqvae",), "codebook": ("vqvae",),
            "code_prior": ("vqvae",), "commitment": ("vqvae",), "labels_per_class": ("m2",)}
#: the β field's label and tooltip under each objective (DIP-VAE does not use it)
BETA_LABELS = {"capacity": "γ (weight of |KL − C|):", "tcvae": "β (TC weight):", "factorvae": "γ (TC weight):"}
BETA_TIPS = {"beta": "β: weight of the KL term (β-VAE, Higgins et al. 2017; every layer's KL in a two-layer VAE)",
             "capacity": "γ: weight of |KL − C| (Burgess et al. 2018)",
             "tcvae": "β: weight of the total correlation (β-TCVAE, Chen et al. 2018); 1 is the plain VAE",
             "factorvae": "γ: weight of the discriminator's total correlation (FactorVAE, Kim & Mnih 2018)"}
#: settings keys of vaegui 0.1 that were not the field names
OLD_SETTINGS_KEYS = {"latent_dim": "latent", "hidden_dim": "hidden", "batch_size": "batch"}


def _pair(first: QWidget, word: str, second: QWidget) -> QHBoxLayout:
    """One form row of two fields, with a word between them ("" for none)."""
    row = QHBoxLayout()
    row.addWidget(first, 1)
    if word:
        row.addWidget(QLabel(word))
    row.addWidget(second, 1)
    return row


class RunOutputs:
    """The form's rows of what a run leaves behind: autosaves (every N minutes besides each
    epoch's end, keeping the newest K) and the run's folder (with TensorBoard events)."""

    def __init__(self):
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
        self.autosave_row = QHBoxLayout()
        self.autosave_row.addWidget(self.autosave_spin, 1)
        self.autosave_row.addWidget(QLabel("keep"))
        self.autosave_row.addWidget(self.keep_spin)
        self.run_folder_check = QCheckBox("keep")
        self.run_folder_check.setChecked(True)
        self.run_folder_check.setToolTip(
            "Write each run into its own folder under the app's data folder: config, metrics.jsonl, status, "
            "checkpoints (latest, best), samples; open it later with File ▸ Open run folder or the Runs tab")
        self.tensorboard_check = QCheckBox("TensorBoard")
        self.tensorboard_check.setToolTip("Also write TensorBoard event files into the run folder "
                                          "(needs the 'tensorboard' extra)")
        self.run_row = QHBoxLayout()
        self.run_row.addWidget(self.run_folder_check)
        self.run_row.addWidget(self.tensorboard_check)
        self.run_row.addStretch(1)
        self.run_folder_check.toggled.connect(self.tensorboard_check.setEnabled)

    def autosave_settings(self) -> tuple[float, int]:
        """``(every_s, keep)``: seconds between timed autosaves (0: epoch ends only) and how many to keep."""
        return self.autosave_spin.value() * 60.0, self.keep_spin.value()

    def run_folder_settings(self) -> tuple[bool, bool]:
        """``(keep, tensorboard)``: write a run folder for the next run, with TensorBoard events."""
        return self.run_folder_check.isChecked(), self.tensorboard_check.isChecked()

    def widgets(self) -> dict:
        """The remembered widgets by settings key."""
        return {"autosave_minutes": self.autosave_spin, "autosave_keep": self.keep_spin,
                "run_folder": self.run_folder_check, "tensorboard": self.tensorboard_check}


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
        #: one widget per config field the form offers, made from the field's metadata
        #: (range, default, choices, unit, help): ``{field name: widget}``
        self.fields: dict[str, QWidget] = {
            f.name: field_widget(cls, f.name)
            for cls in (ModelConfig, TrainConfig) for f in fields_of(cls, form=True) if f.name != "device"
        }
        self.device_combo = QComboBox()
        self.device_combo.addItem("auto (best available)", "auto")
        for name in available_devices():
            self.device_combo.addItem(name, name)
        self.device_combo.setToolTip("The device to train on: CUDA, then Apple's MPS, then the CPU by default")
        self.fields["device"] = self.device_combo
        f = self.fields
        self.latent_spin, self.hidden_spin, self.sigma_spin = f["latent_dim"], f["hidden_dim"], f["sigma"]
        self.model_combo, self.arch_combo, self.likelihood_combo = f["model"], f["arch"], f["likelihood"]
        self.beta_spin, self.lr_spin = f["beta"], f["lr"]
        self.batch_spin, self.epochs_spin = f["batch_size"], f["epochs"]
        self.seed_spin, self.precision_combo = f["seed"], f["precision"]
        self.warmup_spin, self.free_bits_spin, self.iw_k_spin = f["kl_warmup"], f["free_bits"], f["iw_k"]
        self.eval_iw_spin, self.eval_images_spin = f["eval_iw"], f["eval_iw_images"]

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
        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        for name in ("model", "arch", "likelihood", "sigma", "latent_dim", "layer1_dim", "hidden_dim"):
            model_form.addRow(label(ModelConfig, name), self.fields[name])
        self._own_rows = {"layer1_dim": self.fields["layer1_dim"]}
        for first, word, second in (("codebook_size", "× D", "code_dim"), ("codebook", "decay", "ema_decay")):
            self._own_rows[first] = _pair(f[first], word, f[second])
            model_form.addRow(label(ModelConfig, first), self._own_rows[first])
        model_form.addRow(label(ModelConfig, "code_prior"), self.fields["code_prior"])
        self._own_rows["code_prior"] = self.fields["code_prior"]
        self.model_form = model_form
        self.model_card = QLabel()
        self.model_card.setWordWrap(True)
        model_form.addRow(self.model_card)
        train_box = QGroupBox("Training")
        train_form = QFormLayout(train_box)
        train_form.addRow(label(TrainConfig, "objective"), self.fields["objective"])
        self._capacity_row = _pair(f["capacity_max"], "over", f["capacity_steps"])
        train_form.addRow(label(TrainConfig, "capacity_max"), self._capacity_row)
        train_form.addRow(label(TrainConfig, "dip_lambda"), self.fields["dip_lambda"])
        m2_row = _pair(f["labels_per_class"], "α / N", f["alpha"])
        train_form.addRow(label(TrainConfig, "labels_per_class"), m2_row)
        train_form.addRow(label(TrainConfig, "commitment"), self.fields["commitment"])
        self._own_rows.update(labels_per_class=m2_row, commitment=self.fields["commitment"])
        self.train_form = train_form
        for name in ("beta", "lr", "batch_size", "epochs", "seed", "device", "precision", "kl_warmup", "free_bits",
                     "iw_k"):
            train_form.addRow(label(TrainConfig, name), self.fields[name])
        train_form.addRow(label(TrainConfig, "metrics"), _pair(f["metrics"], "", f["metrics_points"]))
        train_form.addRow(label(TrainConfig, "eval_iw"), _pair(self.eval_iw_spin, "", self.eval_images_spin))
        self.outputs = RunOutputs()
        self.autosave_spin, self.keep_spin = self.outputs.autosave_spin, self.outputs.keep_spin
        self.run_folder_check, self.tensorboard_check = self.outputs.run_folder_check, self.outputs.tensorboard_check
        train_form.addRow("Autosave:", self.outputs.autosave_row)
        train_form.addRow("Run folder:", self.outputs.run_row)

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
        #: the progress bar and the line below it
        self.run_progress = RunProgress(self)
        self.progress, self.speed_label = self.run_progress.bar, self.run_progress.speed_label
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
        layout.addStretch(1)
        #: Train / Continue / Pause / Stop, the progress and the error banner: the window
        #: pins this strip below the scrolling form, so it is always in view
        self.controls = QWidget()
        self.controls.setObjectName("training-controls")
        strip = QVBoxLayout(self.controls)
        strip.setContentsMargins(6, 4, 6, 6)
        strip.addLayout(buttons)
        strip.addWidget(self.progress)
        strip.addWidget(self.speed_label)
        strip.addWidget(self.error_label)

        self.train_button.clicked.connect(self.train_requested)
        self.continue_button.clicked.connect(self.continue_requested)
        self.pause_button.clicked.connect(self.pause_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.dataset_combo.currentIndexChanged.connect(lambda _i: self.dataset_selected.emit(self.dataset_key()))
        for w in (self.latent_spin, self.hidden_spin, self.sigma_spin, f["layer1_dim"], f["codebook_size"],
                  f["code_dim"]):
            w.valueChanged.connect(self._update_model_card)
        f["metrics"].currentIndexChanged.connect(
            lambda _i: f["metrics_points"].setEnabled(f["metrics"].currentData() != "off"))
        f["metrics_points"].setEnabled(False)
        for w in (self.model_combo, self.arch_combo, self.likelihood_combo, f["objective"], f["code_prior"]):
            w.currentIndexChanged.connect(self._update_model_card)
        self._input_shape = (1, 28, 28)
        self._n_classes = 10
        self._restore()
        self.set_running(False)
        self._update_model_card()

    # -- configs ---------------------------------------------------------------------------
    def shapes_key(self) -> str:
        """``"shapes:N"`` with the chosen count of shapes."""
        return f"shapes:{self.shapes_spin.value()}"

    def dataset_key(self) -> str:
        """The key to load: the combo's, with the chosen count for the shapes."""
        key = self.dataset_combo.currentData()
        visible = key == "shapes"
        self.shapes_spin.setVisible(visible)
        self.shapes_label.setVisible(visible)
        return self.shapes_key() if visible else key

    def set_dataset_key(self, key: str) -> None:
        """Select the drop-down entry with this key (no change when there is none)."""
        i = self.dataset_combo.findData(key)
        if i >= 0:
            self.dataset_combo.setCurrentIndex(i)

    def add_dataset_entry(self, title: str, key: str) -> None:
        """Offer one more dataset in the drop-down (once per key)."""
        if self.dataset_combo.findData(key) < 0:
            self.dataset_combo.addItem(title, key)

    def show_epoch(self, end) -> None:
        """Say how an epoch (:class:`~models.trainer.EpochEnd`) went, below the progress bar."""
        text = (f"Epoch {end.epoch}: test −ELBO {end.test_neg_elbo:.2f} nats per image "
                f"(reconstruction {end.test_recon:.2f} + KL {end.test_kl:.2f}); {end.samples_per_s:,.0f} samples/s"
                + (f"; test error {100 * end.test_error:.1f}%" if end.test_error is not None else "")
                + (f"; {test_terms_text(end.test_terms)}" if end.test_terms else ""))
        self.run_progress.show_text(text)

    def show_dataset(self, name: str, load: bool = True) -> None:
        """Select the drop-down entry of a dataset name (``shapes:N`` sets the count of
        shapes too); with ``load=False`` without asking the window to load it."""
        try:
            spec = parse_dataset(name)
        except ValueError:
            spec = None
        was_blocked = self.dataset_combo.blockSignals(not load)
        if spec is not None and spec.kind == "shapes":
            self.shapes_spin.setValue(spec.count)
            self.set_dataset_key("shapes")
        else:
            self.set_dataset_key(name)
        self.dataset_combo.blockSignals(was_blocked)

    def set_data_info(self, text: str, input_shape: tuple[int, int, int], n_classes: int) -> None:
        """Describe the chosen dataset; its image shape ``(C, H, W)`` and label count shape
        the model the form describes (conv only for 28, 32 or 64 pixel squares)."""
        self.data_label.setText(text)
        self._input_shape = tuple(input_shape)
        self._n_classes = n_classes
        conv_ok = input_shape[1] == input_shape[2] and input_shape[1] in CONV_SIZES
        for combo, key, other in ((self.arch_combo, "conv", "mlp"), (self.model_combo, "vqvae", "vae")):
            item = combo.model().item(combo.findData(key))
            item.setEnabled(conv_ok)
            item.setToolTip("" if conv_ok else f"not for {input_shape[1]}×{input_shape[2]} images")
            if not conv_ok and combo.currentData() == key:
                combo.setCurrentIndex(combo.findData(other))
        self._update_model_card()

    def model_config(
        self, input_shape: tuple[int, int, int] | None = None, n_classes: int | None = None
    ) -> ModelConfig:
        """The form's model, for images of ``input_shape`` ``(C, H, W)`` (the dataset's
        by default); raises ValueError for a combination that does not exist."""
        values = {f.name: value(self.fields[f.name]) for f in fields_of(ModelConfig, form=True)}
        n = self._n_classes if n_classes is None else n_classes
        return ModelConfig(input_shape=tuple(input_shape or self._input_shape),
                           n_classes=n if values["model"] in CONDITIONAL_MODELS else 0, **values)

    def train_config(self) -> TrainConfig:
        """The form's training settings (every :class:`TrainConfig` field)."""
        return TrainConfig(**{f.name: value(self.fields[f.name]) for f in fields_of(TrainConfig, form=True)})

    def _update_model_card(self) -> None:
        self.sigma_spin.setEnabled(self.likelihood_combo.currentData() == "gaussian")
        model = self.model_combo.currentData()
        unused = NOT_USED.get(model, {})
        for name, fixed in unused.items():  # settings this model does not use: disabled (and set, where needed)
            if fixed is not None:
                set_value(self.fields[name], fixed)
        objective = self.fields["objective"].currentData()
        if objective != "beta":  # the IWAE bound is for the β-VAE objective
            self.iw_k_spin.setValue(1)
        for name in GATED:
            self.fields[name].setEnabled(name not in unused)
        self.iw_k_spin.setEnabled("iw_k" not in unused and objective == "beta")
        self.beta_spin.setEnabled("beta" not in unused and objective not in ("dip1", "dip2"))
        # only the chosen model's and objective's own settings are shown
        for name, row in self._own_rows.items():
            form = self.model_form if name in ModelConfig.__dataclass_fields__ else self.train_form
            form.setRowVisible(row, model in OWN_ROWS[name])
        self.train_form.setRowVisible(self._capacity_row, objective == "capacity")
        self.train_form.setRowVisible(self.fields["dip_lambda"], objective in ("dip1", "dip2"))
        beta_label = self.train_form.labelForField(self.beta_spin)
        if beta_label is not None:
            beta_label.setText(BETA_LABELS.get(objective, "β (unused):") if objective != "beta"
                               else label(TrainConfig, "beta"))
        self.beta_spin.setToolTip(BETA_TIPS.get(objective, "not used by DIP-VAE: its penalty is weighted by λ_od"))
        try:
            config = self.model_config()
            with torch.device("meta"):  # count the parameters without allocating or initialising them
                params = build_model(config).parameter_count()
        except ValueError as exc:
            self.model_card.setText(f"<span style='color:#8b0000'>{exc}</span>")
            return
        self.model_card.setText(f"{config.describe()} · {params:,} parameters")

    # -- state -----------------------------------------------------------------------------
    def show_configs(self, model_config: ModelConfig, train_config: TrainConfig) -> None:
        """Set every field of the form to an opened model's settings (a device this
        machine lacks stays as chosen)."""
        for config in (model_config, train_config):
            for f in fields_of(type(config), form=True):
                set_value(self.fields[f.name], getattr(config, f.name))

    def set_running(self, running: bool, paused: bool = False, can_continue: bool = False) -> None:
        """Enable the buttons and fields that make sense while a run is (not) running."""
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
        """Show ``message`` in the red banner below the buttons ("" hides it)."""
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def show_progress(self, progress: Progress) -> None:
        """Show a run's :class:`~models.run.Progress` below the buttons (:meth:`RunProgress.show`)."""
        self.run_progress.show(progress)

    def window_restored(self) -> None:
        """The window came back from being minimised: show the progress that came meanwhile."""
        self.run_progress.window_restored()

    # -- remembered settings ---------------------------------------------------------------
    def _widgets(self) -> dict[str, QWidget]:
        """Remembered widgets by settings key: the config fields under their field names."""
        return {
            "dataset": self.dataset_combo, "shapes_count": self.shapes_spin,
            **self.outputs.widgets(), **self.fields,
        }

    def save_settings(self) -> None:
        """Remember every field under its config field name (``form/latent_dim``, ...)."""
        if self.settings is None:
            return
        for key, w in self._widgets().items():
            self.settings.setValue(f"form/{key}", value(w))

    def _restore(self) -> None:
        if self.settings is None:
            return
        for key, w in self._widgets().items():
            stored = self.settings.value(f"form/{key}")
            if stored is None and key in OLD_SETTINGS_KEYS:  # written by vaegui 0.1
                stored = self.settings.value(f"form/{OLD_SETTINGS_KEYS[key]}")
            if stored is None:
                continue
            try:
                set_value(w, stored)
            except (TypeError, ValueError):
                continue  # a damaged settings file must not stop the app
