"""In-process trainer lookup with a lazily loading module in ``sys.modules`` (transformers, imported
with open_clip, has hundreds)."""
import sys
import types

import pytest
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

from nnunet_clip.plugin import use_plugin_trainers, with_plugin_trainers


class LazyModule(types.ModuleType):
    """Imports the module it stands for when a missing attribute (its ``__file__``) is first read."""

    def __getattr__(self, name):
        sys.modules.setdefault(f"{self.__name__}_loaded", types.ModuleType(f"{self.__name__}_loaded"))
        raise AttributeError(name)


@pytest.fixture
def lazy_modules(monkeypatch):
    use_plugin_trainers()
    recursive_find_trainer_class_by_name("nnUNetTrainerCLIP")  # its first imports read every module
    names = [f"nnunet_clip_lazy_{i}" for i in range(3)]
    for name in names:
        monkeypatch.setitem(sys.modules, name, LazyModule(name))
    yield names
    for name in names:
        sys.modules.pop(f"{name}_loaded", None)


def test_nnunet_lookup_fails_on_lazy_modules(lazy_modules):
    with pytest.raises(RuntimeError, match="dictionary changed size during iteration"):
        recursive_find_trainer_class_by_name("nnUNetTrainerCLIP")


def test_with_plugin_trainers_loads_lazy_modules_first(lazy_modules):
    trainer_class = with_plugin_trainers(recursive_find_trainer_class_by_name, "nnUNetTrainerCLIPUnmasked")
    assert trainer_class.__name__ == "nnUNetTrainerCLIPUnmasked"
    assert all(f"{name}_loaded" in sys.modules for name in lazy_modules)
