"""Short schedules of nnUNetTrainerCLIP, named as nnU-Net names its own (nnUNetTrainer_Xepochs)."""
from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP


class nnUNetTrainerCLIP_1epoch(nnUNetTrainerCLIP):
    schedule_epochs = 1


class nnUNetTrainerCLIP_5epochs(nnUNetTrainerCLIP):
    schedule_epochs = 5


class nnUNetTrainerCLIP_100epochs(nnUNetTrainerCLIP):
    schedule_epochs = 100
