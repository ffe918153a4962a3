"""``--device`` of nnunet-clip's commands: resolved and set up as nnU-Net's commands do."""
import pytest
import torch

from nnunet_clip.cli import main
from nnunet_clip.devices import torch_device
from nnunet_clip.errors import InputError


@pytest.fixture
def torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("cuda, name, expected, threads", [
    (False, None, "cpu", 2), (False, "auto", "cpu", 2), (True, "auto", "cuda", 1), (True, "cpu", "cpu", 2),
])
def test_device_and_threads(monkeypatch, torch_threads, cuda, name, expected, threads):
    """Every core (2 here) on the CPU, one beside a GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    torch.set_num_threads(3 - threads)
    assert torch_device(name) == torch.device(expected)
    assert torch.get_num_threads() == threads


def test_cuda_without_a_gpu_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="--device cuda: no CUDA device available"):
        torch_device("cuda")
    assert main(["demo", "--device", "cuda", "--out", str(tmp_path / "demo")]) == 2
    assert capsys.readouterr().err == "nnunet-clip demo: error: --device cuda: no CUDA device available\n"
    assert not (tmp_path / "demo").exists()
