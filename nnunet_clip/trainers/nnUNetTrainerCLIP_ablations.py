"""The paper's two ablations of the Universal Model, as trainer variants."""
import torch

from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP


class nnUNetTrainerCLIPUnmasked(nnUNetTrainerCLIP):
    """Every class supervised in every case: classes a source does not annotate count as background."""

    mask_unannotated_classes = False


class nnUNetTrainerOneHot(nnUNetTrainerCLIP):
    """One-hot class codes instead of text embeddings (DoDNet-style): the controller learns one vector per class."""

    def load_class_embeddings(self) -> tuple[torch.Tensor, None]:
        return torch.eye(len(self.class_names)), None
