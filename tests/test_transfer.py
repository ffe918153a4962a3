"""A universal checkpoint as the start of another model through nnU-Net's ``-pretrained_weights``:
any class set, stock nnU-Net networks, one-line refusals (docs/training.md, "Starting from a
universal model")."""
from __future__ import annotations

import json

import pytest
import torch
from nnunetv2.run.load_pretrained_weights import load_pretrained_weights
from nnunetv2.run.run_training import maybe_load_checkpoint
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from conftest import make_trainer
from nnunet_clip.errors import InputError
from nnunet_clip.network.build import build_universal_network, universal_model_plans
from nnunet_clip.transfer import carry_head_offsets, changed_embeddings, check_pretrained, class_transfer
from test_universal_network import ARCHITECTURES, configuration

EMBEDDINGS = {name: torch.randn(6, generator=torch.Generator().manual_seed(i))
              for i, name in enumerate(["spleen", "liver", "liver tumor", "pancreas"])}


class Plans:
    def __init__(self, classes, **head_options):
        self.plans = {"universal_model": {**universal_model_plans(classes, 6, None), **head_options}}


def universal(classes, config=None, **head_options):
    network = build_universal_network(Plans(classes, **head_options), config or configuration("PlainConvUNet"), 1,
                                      len(classes),
                                      enable_deep_supervision=False)
    network.set_class_embeddings(torch.stack([EMBEDDINGS[c] for c in classes]))
    return network.eval()


@pytest.fixture
def checkpoint(tmp_path):
    """A universal model of spleen, liver and liver tumor, saved as nnU-Net saves its checkpoints."""
    torch.manual_seed(0)
    network = universal(["spleen", "liver", "liver tumor"])
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"network_weights": network.state_dict()}, path)
    return network, path


def test_another_class_set_starts_from_the_checkpoint_with_nnunets_loader(checkpoint):
    pretrained, path = checkpoint
    torch.manual_seed(1)
    network = universal(["pancreas", "liver", "spleen"])  # a new class, one left out, another order
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        before = network(x)
        load_pretrained_weights(network, str(path))
        after, reference = network(x), pretrained(x)
    assert network.class_names == ["pancreas", "liver", "spleen"]
    torch.testing.assert_close(after[:, [1, 2]], reference[:, [1, 0]])  # carried classes: the same heads
    assert not torch.allclose(after[:, 1], before[:, 1])
    assert torch.equal(network.embedding_mean, pretrained.embedding_mean)  # the controller's centring


def test_a_class_of_the_checkpoints_table_that_no_case_annotated_counts_as_new(checkpoint):
    pretrained, _ = checkpoint  # its class table: spleen, liver, liver tumor
    saved = {"network_weights": pretrained.state_dict(),
             "init_args": {"dataset_json": {"annotated_classes": {"a_0": ["liver", "liver tumor"], "b_0": ["liver"]}}}}
    assert class_transfer(saved, ["pancreas", "liver", "spleen", "liver tumor"]) == (
        ["liver", "liver tumor"], ["pancreas", "spleen"])
    fully_labelled = {"network_weights": pretrained.state_dict(), "init_args": {"dataset_json": {}}}
    assert class_transfer(fully_labelled, ["pancreas", "spleen"]) == (["spleen"], ["pancreas"])


def test_carried_classes_embedded_otherwise_than_in_the_checkpoint_are_named(checkpoint):
    pretrained, _ = checkpoint  # spleen, liver, liver tumor
    names = ["pancreas", "liver", "spleen"]
    embeddings = torch.stack([EMBEDDINGS[c] for c in names])
    assert changed_embeddings(pretrained.state_dict(), names, embeddings) == []
    embeddings[2] += 0.1  # spleen re-embedded with another encoder
    assert changed_embeddings(pretrained.state_dict(), names, embeddings) == ["spleen"]


def test_carried_classes_keep_their_own_head_offsets(tmp_path):
    torch.manual_seed(0)
    pretrained = universal(["spleen", "liver", "liver tumor"], class_head_offsets=True)
    with torch.no_grad():
        pretrained.classes.head_offsets.normal_()
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"network_weights": pretrained.state_dict()}, path)
    weights = torch.load(path, weights_only=False)["network_weights"]
    network = universal(["pancreas", "liver", "spleen"], class_head_offsets=True)
    assert carry_head_offsets(weights, network) == ["liver", "spleen"]
    load_pretrained_weights(network, str(path))  # nnU-Net's loader leaves the offsets alone
    offsets = network.classes.head_offsets
    assert torch.equal(offsets[[1, 2]], pretrained.classes.head_offsets[[1, 0]]) and not offsets[0].any()
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(network(x)[:, [1, 2]], pretrained(x)[:, [1, 0]])
    assert carry_head_offsets(weights, universal(["liver"])) == []  # a network without offsets


def test_a_stock_nnunet_network_starts_from_the_universal_backbone(checkpoint):
    pretrained, path = checkpoint
    config = configuration("PlainConvUNet")
    stock = get_network_from_plans(config.network_arch_class_name, config.network_arch_init_kwargs,
                                   config.network_arch_init_kwargs_req_import, 1, 4, deep_supervision=True)
    load_pretrained_weights(stock, str(path))
    assert all(torch.equal(v, pretrained.state_dict()[k]) for k, v in stock.state_dict().items()
               if ".seg_layers." not in k)


def test_other_plans_and_other_checkpoints_are_one_line(checkpoint, tmp_path):
    _, path = checkpoint
    resenc = universal(["liver"], configuration("ResidualEncoderUNet"))
    with pytest.raises(InputError, match="another network architecture; reuse its plans: "
                                         "nnUNetv2_move_plans_between_datasets"):
        check_pretrained(torch.load(path, weights_only=False)["network_weights"], resenc, path)
    network_class, kwargs = ARCHITECTURES["PlainConvUNet"]
    wider = configuration("PlainConvUNet")
    wider.configuration["architecture"]["arch_kwargs"] = {**kwargs, "features_per_stage": [8, 8, 16, 16]}
    with pytest.raises(InputError, match=r"encoder.stages.0.0.convs.0.conv.weight has shape \(4, 1, 1, 3, 3\), "
                                         r"this network \(8, 1, 1, 3, 3\): other plans"):
        check_pretrained(torch.load(path, weights_only=False)["network_weights"], universal(["liver"], wider), path)
    two_channels = build_universal_network(Plans(["liver"]), configuration("PlainConvUNet"), 2, 1)
    with pytest.raises(InputError, match="another number of input channels"):
        check_pretrained(torch.load(path, weights_only=False)["network_weights"], two_channels, path)
    plain = {k: v for k, v in torch.load(path, weights_only=False)["network_weights"].items() if "class" not in k}
    with pytest.raises(InputError, match="not a checkpoint of an nnunet-clip universal model"):
        check_pretrained(plain, universal(["liver"]), path)


@pytest.mark.parametrize("route", ["nnUNetv2_train", "in-process"])
def test_nnunet_train_with_pretrained_weights_logs_the_carried_classes(trained_model, monkeypatch, route):
    """As ``nnUNetv2_train -pretrained_weights`` runs it, or in-process with the trainer's ``pretrained_weights``
    set before ``initialize`` (``demo.pipeline.train``)."""
    source = trained_model.model_folder / "fold_0" / "checkpoint_final.pth"
    argv = ["nnUNetv2_train", "991", "3d_fullres", "1"]
    monkeypatch.setattr("sys.argv", argv + ["-pretrained_weights", str(source)] if route == "nnUNetv2_train" else argv)
    dataset = json.loads((trained_model.preprocessed_folder / "dataset.json").read_text())
    labels = dataset["labels"]
    order = dict(zip([n for n in labels if n != "background"], dataset["regions_class_order"]))
    dataset["labels"] = {"background": 0, "liver": labels["liver"], "spleen": labels["spleen"]}  # a subset
    dataset["regions_class_order"] = [order["liver"], order["spleen"]]
    dataset["annotated_classes"] = {case: [c for c in classes if c in ("liver", "spleen")]
                                    for case, classes in dataset["annotated_classes"].items()}
    trainer = make_trainer(trained_model.preprocessed_folder, dataset_json=dataset)
    if route == "in-process":
        trainer.pretrained_weights = str(source)
    maybe_load_checkpoint(trainer, False, False, str(source))  # what nnUNetv2_train runs
    log = open(trainer.log_file, encoding="utf-8").read()
    assert f"Starting from {source}: backbone, projections and controller carried over; classes it was trained " \
           "on: liver, spleen; new classes, heads from their text embeddings: none" in log
    weights = torch.load(source, weights_only=False)["network_weights"]
    assert torch.equal(trainer.network.state_dict()["controller.mlp.0.weight"], weights["controller.mlp.0.weight"])
    assert "The carried classes keep their own head parameters (head offsets)" in log  # the default has them
    assert "WARNING: the embeddings" not in log  # the checkpoint's own dataset: its own embeddings
    order = weights["decoder.seg_layers._extra_state"]["class_names"]
    rows = [order.index("liver"), order.index("spleen")]
    assert torch.equal(trainer.network.classes.head_offsets.detach(), weights["decoder.seg_layers.head_offsets"][rows])
