"""nnUNetTrainerCLIP: the CLIP-Driven Universal Model inside nnU-Net's training loop.

nnU-Net imports the modules of this folder as top-level modules (``nnUNet_extTrainer``), so they
use absolute imports only.
"""
from __future__ import annotations

import functools
import os
import shutil
from contextlib import contextmanager
from os.path import isfile, join
from pathlib import Path

import numpy as np
import torch
from torch import autocast
from torch._dynamo import OptimizedModule

from batchgenerators.utilities.file_and_folder_operations import load_pickle

from nnunetv2.configuration import default_num_processes
from nnunetv2.paths import nnUNet_raw
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import get_tp_fp_fn_tn
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.helpers import dummy_context

from nnunet_clip.atomic import atomic_path, remove_leftovers
from nnunet_clip.class_sampling import ClassBalancedCases
from nnunet_clip.dataset_classes import as_regions, class_names, training_notes
from nnunet_clip.errors import InputError
from nnunet_clip.evaluation.evaluate_folder import evaluate_folders
from nnunet_clip.evaluation.report import write_json
from nnunet_clip.logit_range import LogitRange
from nnunet_clip.loss import PartialLabelDiceBCELoss, disjoint_regions
from nnunet_clip.network.build import HEAD_IN_CHANNELS, PLANS_KEY, build_universal_network, universal_model_plans
from nnunet_clip.orientation import case_orientation
from nnunet_clip.partial_labels import AnnotatedClasses
from nnunet_clip.progress_plot import ThrottledProgressPlot
from nnunet_clip.seeding import seed_everything, training_seed
from nnunet_clip.source_sampling import weighted_identifiers
from nnunet_clip.taxonomy import is_lesion
from nnunet_clip.text.embedding_file import EMBEDDING_FILE, TextEmbeddings
from nnunet_clip.transfer import (carry_head_offsets, changed_embeddings, check_pretrained, class_transfer,
                                  load_checkpoint, pretrained_weights_argument)


def training_orientation(properties_files: dict[str, str]) -> str | None:
    """The one orientation in which nnU-Net's reader gave every case to preprocessing (the model's:
    ``nnunet-clip predict`` reorients inputs to it); InputError naming a case of each if they differ."""
    seen: dict[str | None, str] = {}
    for key, path in properties_files.items():
        seen.setdefault(case_orientation(load_pickle(path)), key)
    if len(seen) > 1:
        raise InputError("the training cases are stored in different orientations ("
                         + ", ".join(f"{key}: {code}" for code, key in seen.items())
                         + "); a model would learn mirrored anatomy. Store them alike, or set "
                         '"overwrite_image_reader_writer": "NibabelIOWithReorient" in dataset.json and preprocess again')
    return next(iter(seen), None)


class WarmupPolyLRScheduler(PolyLRScheduler):
    """nnU-Net's poly schedule after a linear warm-up over the first ``warmup_steps`` steps (epochs)."""

    def __init__(self, optimizer, initial_lr: float, max_steps: int, warmup_steps: int = 0):
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, initial_lr, max_steps)

    def step(self, current_step=None):
        if current_step is None or current_step == -1:
            current_step = self.ctr
            self.ctr += 1
        super().step(current_step)
        warmup = min(1.0, (current_step + 1) / (self.warmup_steps + 1))
        for group in self.optimizer.param_groups:
            group["lr"] *= warmup
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def cpu_computes_bfloat16() -> bool:
    """Whether PyTorch's CPU backend (oneDNN) has bfloat16 kernels for this CPU (AVX-512 or newer)."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


class nnUNetTrainerCLIP(nnUNetTrainer):
    """Text-conditioned per-class sigmoid heads; the loss counts only the classes a case annotates.

    Two departures from nnUNetTrainer's recipe, both for the heads: AdamW (the paper's optimiser)
    with nnU-Net's poly schedule, because under SGD the gradients of all classes add up on the
    controller's shared output and drive every logit into saturation; and no mirroring, in training
    or at test time, because the classes have sides (left/right kidney, lung, adrenal gland, femur).
    It also redraws nnU-Net's progress.png at most every 30 s instead of after every epoch, and keeps
    the pseudo Dice's moving average through validation epochs that see no annotated class.

    Three choices keep the rarely annotated classes learning (docs/demo_experiments.md, "Issue 19"):
    each class's heads add free parameters of its own to those generated from its embedding
    (``class_head_offsets``); forced-foreground patches are centred on each class about equally often
    (``class_sampling_power`` 1); and each class counts in the loss by √(cases / cases annotating it)
    (``class_weight_power`` 0.5). ``nnUNetTrainerCLIP_Baseline`` is the recipe without them.
    """

    schedule_epochs: int | None = None
    """Number of epochs of a short-schedule variant (None: nnU-Net's 1000)."""
    mask_unannotated_classes: bool = True
    """False: every class is supervised in every case, unannotated ones as background (ablation)."""
    source_sampling_power: float | None = None
    """Draw training cases source by source, a source with probability ∝ (its cases)^power
    (``source_sampling``); None: nnU-Net's uniform case sampling."""
    exclusion_loss: bool = False
    """Also supervise unannotated classes where a case annotates a class disjoint from them (``loss``)."""
    logit_penalty: float = 0.0
    """Weight of the loss's penalty on squared logits (``loss``; 0: none)."""
    class_sampling_power: float | None = 1.0
    """Centre forced-foreground patches on a class drawn with probability ∝ (cases with it)^-power
    (``class_sampling``); None: nnU-Net's uniform draw among the case's classes."""
    class_weight_power: float = 0.5
    """Weigh each class in the loss by (cases / cases annotating it)^power (``AnnotatedClasses.class_weights``;
    0: every annotated pair alike)."""
    lesions_weighted: bool = False
    """Weigh tumours and cysts by their rarity too (by default a lesion counts 1: a source annotates it where it looks
    for one, so its rarity is not a gap in the labels)."""
    head_options: dict = {"class_head_offsets": True}
    """Entries of the plans' ``universal_model`` that shape the heads (``network.build``):
    ``normalized_head_input``, ``normalized_heads``, ``class_head_offsets``."""
    warmup_epochs: int = 0
    """Epochs of linear learning-rate warm-up before nnU-Net's poly schedule."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, as_regions(dataset_json), device)
        self.logger = ThrottledProgressPlot(self.logger)
        self.seed = training_seed()
        self.logit_range: LogitRange | None = None
        self.pretrained_weights: str | None = pretrained_weights_argument()
        """The checkpoint nnU-Net's loader copies in after ``initialize`` (``nnUNetv2_train -pretrained_weights``);
        set it before ``initialize`` when training in-process (``demo.pipeline.train``)."""
        self.pretrained_classes: list[str] = []
        """Classes the ``-pretrained_weights`` checkpoint was trained on (``check_pretrained_weights``)."""
        if self.schedule_epochs is not None:
            self.num_epochs = self.schedule_epochs
        self.initial_lr = 1e-3
        if self.label_manager.has_ignore_label:
            raise InputError("dataset.json: nnUNetTrainerCLIP trains on datasets without an ignore label; "
                             "partially labelled cases say which classes they annotate in 'annotated_classes'")
        source = join(self.preprocessed_dataset_folder_base, "dataset.json")
        self.class_names = class_names(self.dataset_json["labels"], source)
        self.annotations = AnnotatedClasses(self.dataset_json, self.class_names, source)
        for note in training_notes(self.dataset_json, self.class_names):
            self.print_to_log_file(note)
        self.class_embeddings, text_encoder = self.load_class_embeddings()
        configured = self.plans_manager.plans.get(PLANS_KEY, {})
        self.plans_manager.plans[PLANS_KEY] = {**universal_model_plans(
            self.class_names, self.class_embeddings.shape[1], text_encoder,
            configured.get("head_in_channels", HEAD_IN_CHANNELS)), **self.head_options}

    def load_class_embeddings(self) -> tuple[torch.Tensor, dict | None]:
        """(K, D) embeddings of the classes in output order, and the text encoder that made them.

        Read from the preprocessed dataset, else from the raw dataset; then rank 0 alone copies the
        raw file into the preprocessed dataset, atomically, while any other DDP rank reads the raw one."""
        path = join(self.preprocessed_dataset_folder_base, EMBEDDING_FILE)
        source = path
        if not isfile(path):
            source = join(nnUNet_raw.get(), self.plans_manager.dataset_name, EMBEDDING_FILE) if nnUNet_raw.is_set() else None
            if source is None or not isfile(source):
                raise InputError(f"{path}: no text embeddings; run `nnunet-clip embed -d "
                                 f"{self.plans_manager.dataset_name}` first")
            if self.local_rank == 0:
                with atomic_path(Path(path)) as tmp:
                    shutil.copyfile(source, tmp)
        stored = TextEmbeddings.load(source)
        return stored.for_classes(self.class_names, source), vars(stored.encoder)

    @staticmethod
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True):
        return build_universal_network(plans_manager, configuration_manager, num_input_channels,
                                       num_output_channels, enable_deep_supervision)

    def _unwrapped_network(self):
        network = self.network.module if self.is_ddp else self.network
        return network._orig_mod if isinstance(network, OptimizedModule) else network

    def initialize(self):
        if self.seed is not None:  # each DDP rank its own patches; DDP gives every rank rank 0's initial weights
            seed_everything(self.seed + self.local_rank)
            self.print_to_log_file(f"Seeded with nnUNet_clip_seed={self.seed}")
        super().initialize()
        self.logit_range = LogitRange(self.output_folder)
        self._unwrapped_network().set_class_embeddings(self.class_embeddings.to(self.device))
        if self.device.type == "cpu":
            self.use_cpu_fast_paths()
        if self.pretrained_weights is not None:
            self.check_pretrained_weights(self.pretrained_weights)

    def check_pretrained_weights(self, path: str) -> None:
        """Before nnU-Net's loader copies ``path``'s weights in (``-pretrained_weights``): one line for what
        would stop it, and the log lists the classes carried over and those new to the checkpoint."""
        checkpoint = load_checkpoint(path)
        weights = checkpoint["network_weights"]
        check_pretrained(weights, self._unwrapped_network(), path)
        carried, new = class_transfer(checkpoint, self.class_names)
        self.pretrained_classes = carried
        self.print_to_log_file(f"Starting from {path}: backbone, projections and controller carried over; "
                               f"classes it was trained on: {', '.join(carried) or 'none'}; new classes, heads "
                               f"from their text embeddings: {', '.join(new) or 'none'}")
        changed = [c for c in changed_embeddings(weights, self.class_names, self.class_embeddings) if c in carried]
        if changed:
            self.print_to_log_file(f"WARNING: the embeddings of {', '.join(changed)} differ from those the checkpoint "
                                   "trained with (another text encoder, template or weights): their heads start "
                                   "from the new embeddings; embed with the checkpoint's text encoder to carry them")
        if carry_head_offsets(weights, self._unwrapped_network()):
            self.print_to_log_file("The carried classes keep their own head parameters (head offsets)")

    def use_cpu_fast_paths(self) -> None:
        """Channels-last memory and, where the CPU computes in it (oneDNN), bfloat16 autocast: a training
        pass of the demo's network is 1.2–1.5× faster so (docs/performance.md). nnU-Net autocasts only
        on a GPU (float16). Final validation and ``nnunet-clip predict`` compute in float32."""
        network = self._unwrapped_network()
        three_d = len(self.configuration_manager.patch_size) == 3
        network.to(memory_format=torch.channels_last_3d if three_d else torch.channels_last)
        if cpu_computes_bfloat16():
            network.autocast_dtype = torch.bfloat16
            self.print_to_log_file("Training on the CPU in bfloat16 autocast, channels-last")

    def on_train_start(self):
        super().on_train_start()
        self.mark_trained_classes()

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        if self.local_rank == 0:
            largest = self.logit_range.end_epoch(self.current_epoch)
            self.print_to_log_file(f"largest |logit| in the epoch's training batches: {largest:.1f}")

    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint, written atomically (nnU-Net writes in place): a run killed while saving
        keeps the previous checkpoint whole for ``nnUNetv2_train --c``."""
        if self.local_rank != 0 or self.disable_checkpointing:
            return super().save_checkpoint(filename)
        remove_leftovers(Path(filename))
        with atomic_path(Path(filename)) as tmp:
            super().save_checkpoint(str(tmp))

    def on_train_end(self):
        if self.local_rank == 0:
            self.logger.plot_progress_png(self.output_folder, force=True)
        super().on_train_end()

    def mark_trained_classes(self) -> None:
        """Record in the network which classes the loss sees in some training case; the others
        it predicts absent (``UniversalUNet.class_trained``)."""
        train_keys, _ = self.do_split()
        trained = self.loss_mask(train_keys).bool().any(0)
        self._unwrapped_network().class_trained.copy_(trained)
        if not trained.all():
            never = [name for name, seen in zip(self.class_names, trained) if not seen]
            self.print_to_log_file(f"No training case annotates {', '.join(never)}: the model will not learn "
                                   f"{'this class' if len(never) == 1 else 'these classes'} and predicts "
                                   f"{'it' if len(never) == 1 else 'them'} absent.")

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.initial_lr, weight_decay=self.weight_decay)
        return optimizer, WarmupPolyLRScheduler(optimizer, self.initial_lr, self.num_epochs, self.warmup_epochs)

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """nnU-Net's augmentation without mirroring: a mirrored image would show a left organ on the right."""
        rotation, dummy_2d, initial_patch_size, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, initial_patch_size, None

    def _do_i_compile(self):
        """torch.compile is untested with the heads' custom autograd function: opt-in with nnUNet_compile=1."""
        return "nnUNet_compile" in os.environ and super()._do_i_compile()

    def _build_loss(self):
        loss = super()._build_loss()
        disjoint = disjoint_regions(self.label_manager.foreground_regions) if self.exclusion_loss else None
        weights = None
        if self.class_weight_power:
            lesions = [] if self.lesions_weighted else [name for name in self.class_names if is_lesion(name)]
            weights = self.annotations.class_weights(self.class_weight_power, lesions)
        partial = PartialLabelDiceBCELoss(batch_dice=self.configuration_manager.batch_dice, ddp=self.is_ddp,
                                          disjoint=disjoint, logit_penalty=self.logit_penalty, class_weights=weights)
        if isinstance(loss, DeepSupervisionWrapper):
            loss.loss = partial
            return loss
        return partial

    def get_tr_and_val_datasets(self):
        dataset_tr, dataset_val = super().get_tr_and_val_datasets()
        self.annotations.check_cases([*dataset_tr.identifiers, *dataset_val.identifiers])
        self.plans_manager.plans[PLANS_KEY]["orientation"] = training_orientation(
            {key: join(dataset.source_folder, f"{key}.pkl") for dataset in (dataset_tr, dataset_val)
             for key in dataset.identifiers})
        if self.source_sampling_power is not None:
            dataset_tr.identifiers = weighted_identifiers(dataset_tr.identifiers, self.source_sampling_power)
        if self.class_sampling_power is not None:
            dataset_tr = ClassBalancedCases(dataset_tr, self.class_sampling_power)
        return dataset_tr, dataset_val

    def loss_mask(self, keys) -> torch.Tensor:
        """(B, K) mask of the (case, class) pairs the loss counts."""
        annotated = self.annotations.mask(keys)
        return annotated if self.mask_unannotated_classes else torch.ones_like(annotated)

    def _masked_loss(self, loss, mask: torch.Tensor, output, target):
        if self.network.training:
            self.logit_range.see(output)
        if isinstance(output, (list, tuple)):
            return loss(output, target, [mask] * len(output))
        return loss(output, target, mask)

    @contextmanager
    def _loss_for_cases(self, keys):
        """The loss masked to the cases' annotated classes, and the network computing only those (all
        classes with the exclusion loss)."""
        loss, mask = self.loss, self.loss_mask(keys).to(self.device)
        self.loss = functools.partial(self._masked_loss, loss, mask)
        try:
            with self._unwrapped_network().computing_only(torch.ones_like(mask) if self.exclusion_loss else mask):
                yield
        finally:
            self.loss = loss

    def train_step(self, batch: dict) -> dict:
        with self._loss_for_cases(batch["keys"]):
            return super().train_step(batch)

    def validation_step(self, batch: dict) -> dict:
        """Loss as in training; pseudo Dice counts only the classes each case annotates."""
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        target = [t.to(self.device, non_blocking=True) for t in target] if isinstance(target, list) \
            else target.to(self.device, non_blocking=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            output = self.network(data)
            loss = self._masked_loss(self.loss, self.loss_mask(batch["keys"]).to(self.device), output, target)
        if self.enable_deep_supervision:
            output, target = output[0], target[0]
        annotated = self.annotations.mask(batch["keys"]).to(self.device)
        tp, fp, fn, _ = get_tp_fp_fn_tn((output > 0).float(), target, axes=tuple(range(2, output.ndim)))
        tp, fp, fn = ((t * annotated).sum(0).detach().cpu().numpy() for t in (tp, fp, fn))
        return {"loss": loss.detach().cpu().numpy(), "tp_hard": tp, "fp_hard": fp, "fn_hard": fn}

    def on_validation_epoch_end(self, val_outputs: list[dict]):
        """nnU-Net's, except that an epoch whose validation patches hold no annotated class (pseudo Dice
        NaN; likely with few validation iterations) keeps the moving average. nnU-Net's average would
        stay NaN from then on, and ``checkpoint_best.pth`` would no longer be updated."""
        super().on_validation_epoch_end(val_outputs)
        ema = self.logger.get_value("ema_fg_dice", step=None)
        if np.isnan(ema[-1]):
            previous = ema[-2] if len(ema) > 1 else np.nan
            restart = self.logger.get_value("mean_fg_dice", step=-1)
            self.logger.log("ema_fg_dice", restart if np.isnan(previous) else previous, self.current_epoch)
        if self._best_ema is not None and np.isnan(self._best_ema):
            self._best_ema = None

    def perform_actual_validation(self, save_probabilities: bool = False):
        """nnU-Net's validation, then a summary that scores only the classes each case annotates.

        nnU-Net's ``validation/summary.json`` counts every class of every case, so a class a
        case's source does not annotate shows as a miss there; ``summary_annotated.json`` leaves
        those out (DSC and NSD per class, see ``nnunet-clip evaluate``). The network computes in
        float32 here, without the CPU's training autocast, as prediction does.
        """
        network = self._unwrapped_network()
        autocast_dtype, network.autocast_dtype = network.autocast_dtype, None  # as `predict` computes
        try:
            super().perform_actual_validation(save_probabilities)
        finally:
            network.autocast_dtype = autocast_dtype
        if self.local_rank == 0:
            self.summarize_annotated_validation()

    def summarize_annotated_validation(self) -> dict:
        validation = Path(self.output_folder, "validation")
        _, val_keys = self.do_split()
        metrics = evaluate_folders(join(self.preprocessed_dataset_folder_base, "gt_segmentations"), validation,
                                   self.dataset_json, num_processes=default_num_processes, progress=False,
                                   cases=val_keys)
        write_json(metrics, validation / "summary_annotated.json")
        scores = ", ".join(f"{name} {s['dsc']['mean']:.4f}" for name, s in metrics["per_class"].items()
                           if s["dsc"]["mean"] is not None)
        self.print_to_log_file(f"Validation DSC over annotated classes only: {scores}")
        return metrics
