"""nnU-Net's predictor running only the selected heads of the Universal Model.

Sliding window, Gaussian weighting, mirroring and preprocessing are nnU-Net's own
(``nnUNetPredictor``). What differs: the network computes only the selected classes (their
embeddings go to ``UniversalUNet.forward``), fold ensembles average sigmoid probabilities rather
than logits, the window's final inf check runs class by class (``rowwise``), and the probabilities
come back on the input's grid one class at a time, through the plans' own resampling, so that a
full-size CT with 32 classes never holds 32 full-size float32 maps.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import SimpleITK as sitk
import torch
from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image
from torch import nn
from torch._dynamo import OptimizedModule

from nnunetv2.configuration import default_num_processes
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunet_clip.errors import InputError
from nnunet_clip.inference.classes import ClassSelection
from nnunet_clip.inference.rowwise import RowWiseIsinf
from nnunet_clip.network.build import PLANS_KEY
from nnunet_clip.network.universal_unet import CLASS_TABLE
from nnunet_clip.plugin import with_plugin_trainers


class SelectedHeads(nn.Module):
    """The Universal Model computing only some heads: trained ones by index, new ones from embeddings."""

    def __init__(self, network: nn.Module, index: list[int], extra_embeddings: torch.Tensor | None):
        super().__init__()
        self.network = network
        width = network.class_embeddings.shape[1]
        self.register_buffer("index", torch.tensor(index, dtype=torch.long))
        self.register_buffer("extra", torch.zeros(0, width) if extra_embeddings is None else extra_embeddings.float())

    def forward(self, x: torch.Tensor):
        embeddings = self.network.class_embeddings[self.index]
        trained = torch.cat([self.network.class_trained[self.index],
                             torch.ones(len(self.extra), dtype=torch.bool, device=self.extra.device)])
        offsets = self.network.classes.head_offsets
        if offsets is not None:  # zero-shot classes have none
            offsets = torch.cat([offsets[self.index], offsets.new_zeros((len(self.extra), *offsets.shape[1:]))])
        return self.network(x, torch.cat([embeddings, self.extra.to(embeddings.dtype)]), trained, offsets)

    def outputs(self, outputs: range) -> "SelectedHeads":
        """The same network computing only the outputs ``outputs`` (a range of this module's outputs)."""
        trained = len(self.index)
        extra = self.extra[max(outputs.start - trained, 0):max(outputs.stop - trained, 0)]
        return SelectedHeads(self.network, self.index[outputs.start:outputs.stop].tolist(), extra)


class SelectedLabels(LabelManager):
    """One sigmoid output per selected class: what nnU-Net's sliding window sizes its output by."""

    def __init__(self, names: list[str]):
        super().__init__({"background": 0, **{n: i + 1 for i, n in enumerate(names)}}, None,
                         inference_nonlin=torch.sigmoid)

    @property
    def num_segmentation_heads(self) -> int:
        return len(self.foreground_labels)


class UniversalPredictor(nnUNetPredictor):
    """``nnUNetPredictor`` for nnunet-clip models: selected heads, sigmoid-averaged fold ensembles."""

    def initialize_from_trained_model_folder(self, model_training_output_dir: str, use_folds,
                                             checkpoint_name: str = "checkpoint_final.pth"):
        for name in ("plans.json", "dataset.json"):
            if not os.path.isfile(os.path.join(model_training_output_dir, name)):
                raise InputError(f"{model_training_output_dir}: not an nnU-Net model folder (no {name})")
        folds = use_folds or self.auto_detect_available_folds(model_training_output_dir, checkpoint_name)
        missing = [f for f in folds if not os.path.isfile(
            os.path.join(model_training_output_dir, f"fold_{f}", checkpoint_name))]
        if not folds or missing:
            raise InputError(f"{model_training_output_dir}: no {checkpoint_name} for fold(s) "
                             f"{', '.join(map(str, missing)) or 'any'}")
        try:
            with_plugin_trainers(super().initialize_from_trained_model_folder, model_training_output_dir, folds,
                                 checkpoint_name)
        except InputError as e:
            raise InputError(f"{model_training_output_dir}: {e}") from None
        spec = self.plans_manager.plans.get(PLANS_KEY)
        if spec is None:
            raise InputError(f"{model_training_output_dir}: not an nnunet-clip model (its plans have no "
                             f"'{PLANS_KEY}' entry)")
        self.folds = list(folds)
        self.universal_network = self.network._orig_mod if isinstance(self.network, OptimizedModule) else self.network
        self.model_classes: list[str] = list(spec["class_names"])
        self.text_encoder: dict | None = spec["text_encoder"]
        self.orientation: str = spec.get("orientation")
        if self.orientation is None:
            raise InputError(f"{model_training_output_dir}: the model does not record the orientation its training "
                             "cases had (trained by an older nnunet-clip, or read by another reader); retrain it")
        self.selection: ClassSelection | None = None

    @staticmethod
    def auto_detect_available_folds(model_training_output_dir: str, checkpoint_name: str) -> list:
        """nnU-Net's numbered folds with the checkpoint, else ``all`` if it has one (a model trained on
        every case, as the demo's; nnU-Net's own detection leaves ``fold_all`` out)."""
        folds = nnUNetPredictor.auto_detect_available_folds(model_training_output_dir, checkpoint_name)
        if not folds and os.path.isfile(os.path.join(model_training_output_dir, "fold_all", checkpoint_name)):
            folds = ["all"]
        return folds

    def untrained_folds(self) -> dict[str, list]:
        """Model class -> the folds whose training cases never annotated it (``UniversalUNet.class_trained``)."""
        untrained: dict[str, list] = {}
        for fold, parameters in zip(self.folds, self.list_of_parameters):
            for name, trained in zip(self.model_classes, parameters[f"{CLASS_TABLE}.class_trained"].tolist()):
                if not trained:
                    untrained.setdefault(name, []).append(fold)
        return untrained

    def select(self, selection: ClassSelection) -> None:
        """Compute only ``selection.computed`` from now on, in that order; warn about requested
        classes that some fold never saw annotated."""
        untrained = self.untrained_folds()
        never = [n for n in selection.requested if len(untrained.get(n, ())) == len(self.folds)]
        if never:
            print(f"warning: no training case annotated {', '.join(never)}: the model predicts "
                  f"{'it' if len(never) == 1 else 'them'} absent (empty masks)", file=sys.stderr)
        for name in (n for n in selection.requested if n in untrained and n not in never):
            print(f"warning: {name}: fold(s) {', '.join(map(str, untrained[name]))} never saw it annotated and "
                  "add probability 0 to the ensemble's average", file=sys.stderr)
        index = [self.model_classes.index(c) for c in selection.model_classes]
        self.network = SelectedHeads(self.universal_network, index, selection.zero_shot_embeddings)
        self.label_manager = SelectedLabels(selection.computed)
        self.selection = selection

    def _internal_predict_sliding_window_return_logits(self, data: torch.Tensor, slicers, do_on_device: bool = True):
        """nnU-Net's sliding window, its final inf check run class by class (``rowwise``: 2 B/voxel/class less)."""
        with RowWiseIsinf():
            return super()._internal_predict_sliding_window_return_logits(data, slicers, do_on_device)

    def preprocess(self, image: sitk.Image) -> tuple[torch.Tensor, dict]:
        """nnU-Net's preprocessing of an image read as nnU-Net's SimpleITK reader reads it."""
        data = sitk.GetArrayFromImage(image)[None].astype(np.float32)
        properties = {"spacing": list(image.GetSpacing())[::-1]}
        preprocessor = self.configuration_manager.preprocessor_class(verbose=self.verbose_preprocessing)
        data, _, properties = preprocessor.run_case_npy(data, None, properties, self.plans_manager,
                                                        self.configuration_manager, self.dataset_json)
        return torch.from_numpy(data), properties

    @torch.inference_mode()
    def predict_probabilities(self, data: torch.Tensor) -> torch.Tensor:
        """(K, ...) float16 sigmoid probabilities on the preprocessed grid, averaged over the folds.

        Threads as in ``predict_logits_from_preprocessed_data``, which this replaces (it averages logits).
        A fold ensemble sums the folds into one result and runs the window for half the classes at
        a time, so the window's 3 bytes per voxel and class cover only half of them (the network
        then runs twice per fold).
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(min(default_num_processes, threads))
        names, folds = self.selection.computed, len(self.list_of_parameters)
        if folds == 1:
            total = self._sum_over_folds(data)
        else:
            total = torch.zeros((len(names), *data.shape[1:]), dtype=torch.half)
            half = (len(names) + 1) // 2
            for outputs in filter(len, (range(0, half), range(half, len(names)))):
                with self._computing(outputs):
                    self._sum_over_folds(data, total[outputs.start:outputs.stop])
            total.div_(folds)
        torch.set_num_threads(threads)
        return total

    def _sum_over_folds(self, data: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Sum over the folds of the computed classes' sigmoid probabilities, added into ``out`` if given."""
        for parameters in self.list_of_parameters:
            self.universal_network.load_state_dict(parameters)
            probabilities = torch.sigmoid_(self.predict_sliding_window_return_logits(data).to("cpu"))
            out = probabilities if out is None else out.add_(probabilities)
        return out

    @contextmanager
    def _computing(self, outputs: range):
        """Compute only the selection's outputs ``outputs`` inside the block; the whole selection again after."""
        selected, labels = self.network, self.label_manager
        self.network = selected.outputs(outputs)
        self.label_manager = SelectedLabels(self.selection.computed[outputs.start:outputs.stop])
        try:
            yield
        finally:
            self.network, self.label_manager = selected, labels

    def to_input_grid(self, probabilities: torch.Tensor, properties: dict) -> np.ndarray:
        """One class's probabilities resampled (plans' resampling), uncropped and transposed back to the input."""
        spacing = [properties["spacing"][i] for i in self.plans_manager.transpose_forward]
        shape = properties["shape_after_cropping_and_before_resampling"]
        current = self.configuration_manager.spacing
        current = current if len(current) == len(shape) else [spacing[0], *current]
        resampled = self.configuration_manager.resampling_fn_probabilities(probabilities[None], shape, current,
                                                                           spacing)[0]
        full = np.zeros(properties["shape_before_cropping"], dtype=resampled.dtype)
        full = insert_crop_into_image(full, resampled, properties["bbox_used_for_cropping"])
        return full.transpose(self.plans_manager.transpose_backward)

    def predict_image(self, image: sitk.Image) -> Iterator[tuple[str, np.ndarray]]:
        """(class name, probabilities on the input's voxel grid) of every computed class, one at a time."""
        data, properties = self.preprocess(image)
        probabilities = self.predict_probabilities(data)
        del data
        for k, name in enumerate(self.selection.computed):
            yield name, self.to_input_grid(probabilities[k], properties)
