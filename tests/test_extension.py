"""A trained universal model extended to a class its dataset gained (``nnUNetTrainerCLIP_Extend``): the
teacher's pseudo-labels, the frozen teacher, replay, and nnU-Net's route from the checkpoint to prediction."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.run.run_training import maybe_load_checkpoint

from conftest import NNUNET_ROOT, make_trainer
from nnunet_clip.class_sampling import ClassBalancedCases
from nnunet_clip.cli import main as nnunet_clip
from nnunet_clip.errors import InputError, one_line
from nnunet_clip.extension import replay_identifiers
from nnunet_clip.inference.outputs import file_name
from nnunet_clip.plugin import with_plugin_trainers
from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP
from nnunet_clip.trainers.nnUNetTrainerCLIP_Extend import nnUNetTrainerCLIP_Extend

NEW = "liver tumor"
"""The class the tiny dataset gains; its other four classes are those of the starting checkpoint."""


class OldModel(nnUNetTrainerCLIP):
    """The starting model's trainer (its own results folder)."""


class FixedTeacher:
    """A teacher whose logits are given; it records which (case, class) pairs it was asked for."""

    def __init__(self, logits: list[torch.Tensor]):
        self.logits, self.computed = logits, None

    @contextmanager
    def computing_only(self, classes: torch.Tensor):
        self.computed = classes
        yield

    def __call__(self, data: torch.Tensor) -> list[torch.Tensor]:
        return self.logits


def without_new_class(dataset: dict) -> dict:
    """The tiny dataset before it gained ``NEW``."""
    labels = {name: value for name, value in dataset["labels"].items() if name != NEW}
    order = dict(zip([n for n in dataset["labels"] if n != "background"], dataset["regions_class_order"]))
    return {**dataset, "labels": labels, "regions_class_order": [order[n] for n in labels if n != "background"],
            "annotated_classes": {case: [c for c in classes if c != NEW]
                                  for case, classes in dataset["annotated_classes"].items()}}


def batch_target(trainer, generator: torch.Generator, batch_size: int = 2) -> list[torch.Tensor]:
    patch = trainer.configuration_manager.patch_size
    return [torch.randn(batch_size, 5, *(int(p * s) for p, s in zip(patch, scale)), generator=generator)
            for scale in trainer._get_deep_supervision_scales()]


def test_targets_are_ground_truth_where_annotated_and_the_teachers_labels_for_unannotated_old_classes(
        tiny_preprocessed):
    trainer = make_trainer(tiny_preprocessed, nnUNetTrainerCLIP_Extend)
    assert trainer.class_names == ["spleen", "right kidney", "left kidney", "liver", NEW]
    trainer.old_classes = torch.tensor([True, True, True, True, False])
    generator = torch.Generator().manual_seed(0)
    truth = [(t > 0).float() for t in batch_target(trainer, generator)]
    logits = batch_target(trainer, generator)
    trainer.teacher = FixedTeacher(logits)
    keys = ["liversrc_000", "abdsrc_001"]  # annotate liver and liver tumor; spleen, both kidneys and liver
    patch = trainer.configuration_manager.patch_size
    batch = trainer.with_pseudo_labels({"data": torch.zeros(2, 1, *patch), "target": truth, "keys": keys})
    pseudo = [[True, True, True, False, False], [False] * 5]
    assert trainer.teacher.computed.tolist() == pseudo
    assert len(batch["target"]) == len(truth) > 1
    for target, gt, teacher in zip(batch["target"], truth, logits):  # every deep-supervision level
        assert torch.equal(target[0, :3], (teacher[0, :3] > 0).float())
        assert torch.equal(target[0, 3:], gt[0, 3:]) and torch.equal(target[1], gt[1])
    assert trainer.loss_mask(keys).tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]  # the new class unannotated: masked


def test_replay_draws_the_cases_of_new_classes_with_the_given_share():
    identifiers = ["a_0", "a_0", "a_1", "b_0", "b_1", "b_2", "b_3", "b_4"]  # a_0 already drawn twice as often
    for share in (0.5, 0.2, 0.9):
        draws = Counter(replay_identifiers(identifiers, {"a_0", "a_1"}, share))
        new = draws["a_0"] + draws["a_1"]
        assert new / sum(draws.values()) == pytest.approx(share, abs=0.02)
        assert draws["a_0"] == 2 * draws["a_1"] and len({draws[f"b_{i}"] for i in range(5)}) == 1
    assert replay_identifiers(["b_0", "b_1"], {"a_0"}, 0.5) == ["b_0", "b_1"]


def test_without_pretrained_weights_the_trainer_stops_in_one_line(tiny_preprocessed, monkeypatch):
    monkeypatch.setattr("sys.argv", ["nnUNetv2_train", "991", "3d_fullres", "0", "-tr", "nnUNetTrainerCLIP_Extend"])
    trainer = make_trainer(tiny_preprocessed, nnUNetTrainerCLIP_Extend)
    with pytest.raises(InputError, match="pass its checkpoint with -pretrained_weights") as error:
        trainer.on_train_start()
    assert one_line(error.value) == str(error.value)


@pytest.fixture(scope="module")
def extended(tiny_preprocessed, tmp_path_factory):
    """A universal checkpoint of four classes (saved by nnU-Net after initialization: the route is tested, not
    accuracy), extended to the dataset's fifth as ``nnUNetv2_train 991 3d_fullres 0 -tr nnUNetTrainerCLIP_Extend
    -pretrained_weights CHECKPOINT`` runs it, for two training iterations and one of validation."""
    dataset = json.loads((tiny_preprocessed / "dataset.json").read_text())
    old = make_trainer(tiny_preprocessed, OldModel, dataset_json=without_new_class(dataset))
    old.initialize()
    checkpoint = tmp_path_factory.mktemp("old_model") / "checkpoint_final.pth"
    old.save_checkpoint(str(checkpoint))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr("sys.argv", ["nnUNetv2_train", "991", "3d_fullres", "0", "-tr",
                                         "nnUNetTrainerCLIP_Extend", "-pretrained_weights", str(checkpoint)])
        trainer = make_trainer(tiny_preprocessed, nnUNetTrainerCLIP_Extend)
        trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch = 1, 2, 1
        maybe_load_checkpoint(trainer, False, False, str(checkpoint))  # what nnUNetv2_train runs
        trainer.run_training()
    return SimpleNamespace(trainer=trainer, weights=torch.load(checkpoint, weights_only=False)["network_weights"])


def test_the_teacher_stays_frozen_while_the_student_trains(extended):
    teacher, student = extended.trainer.teacher, extended.trainer.network
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    optimized = {id(p) for group in extended.trainer.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in teacher.parameters()}
    carried = [key for key in extended.weights if ".seg_layers." not in key]
    assert all(torch.equal(teacher.state_dict()[key], extended.weights[key]) for key in carried)
    assert not all(torch.equal(student.state_dict()[key], extended.weights[key]) for key in carried)


def test_nnunets_loader_draws_the_cases_of_the_new_class_with_their_share_and_class_balanced_patches(
        extended, monkeypatch):
    monkeypatch.setattr(extended.trainer, "new_case_share", 0.8)  # 3 of the 6 training cases: 0.5 uniformly
    dataset_tr, _ = extended.trainer.get_tr_and_val_datasets()
    assert isinstance(dataset_tr, ClassBalancedCases)  # the default's foreground patches, composed
    draws = Counter(dataset_tr.identifiers)
    new = sum(n for case, n in draws.items() if case.startswith("liversrc"))  # the sources annotating liver tumor
    assert new / sum(draws.values()) == pytest.approx(0.8, abs=0.02)


def test_extension_logs_its_classes_and_predicts_new_and_old_classes_by_name(extended, tmp_path):
    trainer = extended.trainer
    log = open(trainer.log_file, encoding="utf-8").read()
    assert f"classes it was trained on: spleen, right kidney, left kidney, liver; new classes, heads from their " \
           f"text embeddings: {NEW}" in log
    assert "Extension: 3 of 6 training cases annotate new classes, drawn with probability 0.75, the others " \
           "replayed; old classes pseudo-labelled by the frozen starting model where unannotated: spleen, " \
           "right kidney, left kidney" in log
    saved = torch.load(f"{trainer.output_folder}/checkpoint_final.pth", weights_only=False)
    assert saved["trainer_name"] == "nnUNetTrainerCLIP_Extend"
    assert set(saved["network_weights"]) == set(trainer.network.state_dict())  # no teacher in it
    case = "liversrc_000"
    image = NNUNET_ROOT / "raw" / trainer.plans_manager.dataset_name / "imagesTr" / f"{case}_0000.nii.gz"
    out = tmp_path / "out"
    assert nnunet_clip(["predict", "-m", trainer.output_folder_base, "-f", "0", "-i", str(image), "-o", str(out),
                        "--disable-tta", "--device", "cpu", "--classes", NEW, "spleen", "liver"]) == 0
    assert {p.name for p in (out / case).glob("*.nii.gz")} == {file_name(n) for n in (NEW, "spleen", "liver")}
    (tmp_path / "in").mkdir()
    (tmp_path / "nnunet").mkdir()
    shutil.copy(image, tmp_path / "in")
    predictor = nnUNetPredictor(use_mirroring=False, device=torch.device("cpu"), allow_tqdm=False)
    with_plugin_trainers(predictor.initialize_from_trained_model_folder, trainer.output_folder_base, (0,))
    predictor.predict_from_files_sequential(str(tmp_path / "in"), str(tmp_path / "nnunet"))  # nnUNetv2_predict's
    assert (tmp_path / "nnunet" / f"{case}.nii.gz").is_file()
