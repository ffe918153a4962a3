"""Recipe candidates under measurement (issue 19); temporary."""
from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP


class nnUNetTrainerCLIP_NormInput(nnUNetTrainerCLIP):
    head_options = {"normalized_head_input": True}


class nnUNetTrainerCLIP_NormHeads(nnUNetTrainerCLIP):
    head_options = {"normalized_head_input": True, "normalized_heads": True}


class nnUNetTrainerCLIP_Warmup(nnUNetTrainerCLIP):
    warmup_epochs = 10


class nnUNetTrainerCLIP_NormHeadsWarmup(nnUNetTrainerCLIP):
    head_options = {"normalized_head_input": True, "normalized_heads": True}
    warmup_epochs = 10


class nnUNetTrainerCLIP_SlowController(nnUNetTrainerCLIP):
    controller_lr_scale = 0.1


class nnUNetTrainerCLIP_SqrtSources(nnUNetTrainerCLIP):
    source_sampling_power = 0.5


class nnUNetTrainerCLIP_ClassOnly(nnUNetTrainerCLIP):
    head_options = {"image_conditioned": False}


class nnUNetTrainerCLIP_NormHeadsClassOnly(nnUNetTrainerCLIP):
    head_options = {"normalized_head_input": True, "normalized_heads": True, "image_conditioned": False}


class nnUNetTrainerCLIP_ClassResidual(nnUNetTrainerCLIP):
    head_options = {"class_residual": True}
