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


def reading_modules_while_iterating(trainer_name: str):
    """A trainer search as nnU-Net 2.8's: it reads each module's ``__file__`` while iterating
    ``sys.modules`` (a lazy module's import then changes the dict during the iteration)."""
    for module in sys.modules.values():
        getattr(module, "__file__", None)
    return recursive_find_trainer_class_by_name(trainer_name)


def reading_a_copy(trainer_name: str):
    """The same search iterating a copy of ``sys.modules``: how a fixed nnU-Net would read it."""
    for module in list(sys.modules.values()):
        getattr(module, "__file__", None)
    return recursive_find_trainer_class_by_name(trainer_name)


@pytest.mark.parametrize("lookup", [recursive_find_trainer_class_by_name, reading_modules_while_iterating,
                                    reading_a_copy], ids=["installed nnU-Net", "with the bug", "without the bug"])
def test_with_plugin_trainers_finds_the_trainer_whether_or_not_nnunet_has_the_bug(lazy_modules, lookup):
    trainer_class = with_plugin_trainers(lookup, "nnUNetTrainerCLIPUnmasked")
    assert trainer_class.__name__ == "nnUNetTrainerCLIPUnmasked"
    assert all(f"{name}_loaded" in sys.modules for name in lazy_modules)


def test_the_bug_is_what_the_plugin_works_around(lazy_modules):
    with pytest.raises(RuntimeError, match="dictionary changed size during iteration"):
        reading_modules_while_iterating("nnUNetTrainerCLIP")
