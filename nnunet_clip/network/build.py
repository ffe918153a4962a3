"""Build the Universal Model from nnU-Net plans (used in training and by nnU-Net's predictor).

nnU-Net builds networks from the plans alone (``build_network_architecture`` is static), so the
trainer writes what the network's shape depends on into the plans under ``universal_model``
before building it; the plans saved with the trained model carry it to inference. One key of that
entry is the user's to set before training, as nnU-Net's ``arch_kwargs`` are: ``head_in_channels``,
the width of the feature map the per-class heads read (default 8, the paper's).
"""
from __future__ import annotations

from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from nnunet_clip.network.universal_unet import UniversalUNet

PLANS_KEY = "universal_model"
HEAD_IN_CHANNELS = 8


def universal_model_plans(class_names: list[str], embedding_dim: int, text_encoder: dict | None,
                          head_in_channels: int = HEAD_IN_CHANNELS) -> dict:
    """The plans entry: class names in output order, embedding width, the text encoder (None: one-hot)
    and the heads' input width."""
    return {"class_names": list(class_names), "embedding_dim": int(embedding_dim), "text_encoder": text_encoder,
            "head_in_channels": int(head_in_channels)}


def build_universal_network(plans_manager, configuration_manager, num_input_channels: int,
                            num_output_channels: int, enable_deep_supervision: bool = True) -> UniversalUNet:
    """The plans' backbone (any U-Net of dynamic-network-architectures) with text-conditioned heads."""
    spec = plans_manager.plans.get(PLANS_KEY)
    if spec is None:
        raise RuntimeError(f"the plans have no '{PLANS_KEY}' entry: they were not written by an nnunet-clip "
                           "trainer (nnUNetTrainerCLIP and its variants write it when training starts)")
    if len(spec["class_names"]) != num_output_channels:
        raise RuntimeError(f"plans name {len(spec['class_names'])} classes but the dataset has "
                           f"{num_output_channels} regions")
    backbone = get_network_from_plans(
        configuration_manager.network_arch_class_name,
        configuration_manager.network_arch_init_kwargs,
        configuration_manager.network_arch_init_kwargs_req_import,
        num_input_channels, num_output_channels, allow_init=True, deep_supervision=enable_deep_supervision)
    if not hasattr(getattr(backbone, "decoder", None), "seg_layers"):
        raise RuntimeError(f"{configuration_manager.network_arch_class_name} has no U-Net decoder with "
                           "segmentation layers; the Universal Model needs one (PlainConvUNet, ResEnc U-Nets)")
    return UniversalUNet(backbone, spec["class_names"], spec["embedding_dim"],
                         head_in_channels=spec.get("head_in_channels", HEAD_IN_CHANNELS),
                         normalized_head_input=spec.get("normalized_head_input", False),
                         normalized_heads=spec.get("normalized_heads", False),
                         class_head_offsets=spec.get("class_head_offsets", False))
