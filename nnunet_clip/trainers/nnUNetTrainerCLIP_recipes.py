"""Recipe variants of the Universal Model, measured against the default with
``benchmarks/phantom_benchmark.py`` (docs/demo_experiments.md, "Issue 19")."""
import torch
from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
from batchgeneratorsv2.transforms.utils.random import RandomTransform

from nnunet_clip.text.codes import with_identity
from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP


class nnUNetTrainerCLIP_Baseline(nnUNetTrainerCLIP):
    """The default before issue 19: heads generated from the class embeddings alone, nnU-Net's draw of
    the class a foreground patch is centred on, every annotated (case, class) pair alike in the loss."""

    head_options = {}
    class_sampling_power = None
    class_weight_power = 0.0


class nnUNetTrainerCLIP_NormHeadsWarmup(nnUNetTrainerCLIP_Baseline):
    """The heads read normalised, activated features; their generated weight rows have fixed norms
    (``DynamicHeads(normalized=True)``); 10 epochs of learning-rate warm-up."""

    head_options = {"normalized_head_input": True, "normalized_heads": True}
    warmup_epochs = 10


class nnUNetTrainerCLIP_NormHeadsWarmupRareClasses(nnUNetTrainerCLIP_NormHeadsWarmup):
    """NormHeadsWarmup, its foreground patches centred on each class about equally often over the training
    set (``class_sampling``, power 1)."""

    class_sampling_power = 1.0


class nnUNetTrainerCLIP_NormHeadsWarmupExclusion(nnUNetTrainerCLIP_NormHeadsWarmup):
    """NormHeadsWarmup, each unannotated class also told where it is not: in the voxels of annotated
    classes it never overlaps (``loss``, exclusion)."""

    exclusion_loss = True


class nnUNetTrainerCLIP_Exclusion(nnUNetTrainerCLIP):
    """The default with the exclusion loss: aimed at heads that fire on organs their class's sources
    never label (a femoral head's voxels are known negatives for the celiac trunk)."""

    exclusion_loss = True


class nnUNetTrainerCLIP_ClassOffsets(nnUNetTrainerCLIP_Baseline):
    """Each class's heads are its generated parameters plus free parameters of its own (``ClassTable``)."""

    head_options = {"class_head_offsets": True}


class nnUNetTrainerCLIP_ClassOffsetsRareClasses(nnUNetTrainerCLIP_ClassOffsets):
    """ClassOffsets, its foreground patches centred on each class about equally often (``class_sampling``)."""

    class_sampling_power = 1.0


class nnUNetTrainerCLIP_LogitPenalty(nnUNetTrainerCLIP_Baseline):
    """The loss also penalises squared logits (``loss``, λ = 1e-3), so they stay in the range where
    every class keeps learning."""

    logit_penalty = 1e-3


class nnUNetTrainerCLIP_ClassOffsetsRareClassesWeighted(nnUNetTrainerCLIP):
    """The default with each class weighted by (cases / cases annotating it), not its square root: in
    expectation the loss of a fully labelled collection."""

    class_weight_power = 1.0


class nnUNetTrainerCLIPSourceBalanced(nnUNetTrainerCLIP):
    """Every source drawn equally often, then one of its cases (the original Universal Model's sampling)."""

    source_sampling_power = 0.0


class nnUNetTrainerCLIPSqrtSources(nnUNetTrainerCLIP):
    """A source of N cases drawn with probability ∝ √N (MultiTalent's sampling)."""

    source_sampling_power = 0.5


class nnUNetTrainerCLIPLesionWeights(nnUNetTrainerCLIP):
    """Tumours and cysts weighted by (cases / cases annotating them)^0.5 like every other class: a tumour that
    2 of 47 cases annotate counts 4.8 times, not once, so its few cases teach the shared features more."""

    lesions_weighted = True


class nnUNetTrainerCLIPSharpTumours(nnUNetTrainerCLIP):
    """The default without nnU-Net's Gaussian blur and simulated low resolution: at the phantoms' 6 × 6 × 9 mm
    voxels they can erase a tumour of one to three voxels while its label stays."""

    @staticmethod
    def get_training_transforms(*args, **kwargs):
        transforms = nnUNetTrainerCLIP.get_training_transforms(*args, **kwargs)
        transforms.transforms = [t for t in transforms.transforms if not blurs(t)]
        return transforms


class nnUNetTrainerCLIPIdentityCodes(nnUNetTrainerCLIP):
    """Each class's code is its text embedding beside a one-hot identity of the same norm
    (``text.codes.with_identity``): the cosine between two classes' codes is half their text's. Classes not
    trained cannot be asked for by name (the identity has no entry for them)."""

    def load_class_embeddings(self) -> tuple[torch.Tensor, None]:
        return with_identity(super().load_class_embeddings()[0]), None


def blurs(transform) -> bool:
    """Whether an augmentation of nnU-Net's pipeline blurs the image: Gaussian blur or simulated low resolution."""
    inner = transform.transform if isinstance(transform, RandomTransform) else transform
    return isinstance(inner, (GaussianBlurTransform, SimulateLowResolutionTransform))
