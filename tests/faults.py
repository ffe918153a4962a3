"""Running a command in a child process with one fault injected.

* ``kill``: SIGKILL (``kill -9``) at the n-th call of a function (``"SimpleITK:WriteImage"``),
  before the call, or after it with the file it wrote cut to half its size (``path_arg``: which
  argument names that file): a process killed in the middle of writing.
* ``pause``: at the n-th call, create the file ``paused`` and wait until the file ``resume``
  exists: two commands at the same time, deterministically.
* ``file_size_limit``: RLIMIT_FSIZE in bytes, SIGXFSZ ignored: every write beyond it fails as on
  a full disk (errno EFBIG).
* ``obey_permissions``: when run as root, drop the capabilities that let root write into
  read-only folders (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), so that a folder
  without write permission is read-only for the command as for any user.

The command is a console entry point (``nnunet-clip``, ``nnUNetv2_train``) run in the child's
own Python, so the fault sits inside the real command, not around it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ENTRY_POINTS = {"nnunet-clip": "nnunet_clip.cli:main",
                "nnUNetv2_train": "nnunetv2.run.run_training:run_training_entry"}

CHILD = r'''
import importlib, json, os, signal, sys, time
config = json.loads(sys.argv[1])

def obey_permissions():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    keep = ~((1 << 1) | (1 << 2) | (1 << 3))
    for field in ("effective", "permitted", "inheritable"):
        setattr(data[0], field, getattr(data[0], field) & keep)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")

def at_call(spec, act):
    module_name, attribute = spec["target"].split(":")
    owner = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original, calls = getattr(owner, name), [0]
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] != spec["call"]:
            return original(*args, **kwargs)
        return act(original, args, kwargs)
    setattr(owner, name, wrapper)

def kill(original, args, kwargs):
    if config["kill"].get("path_arg") is not None:
        original(*args, **kwargs)
        written = str(args[config["kill"]["path_arg"]])
        os.truncate(written, os.path.getsize(written) // 2)
    os.kill(os.getpid(), signal.SIGKILL)

def pause(original, args, kwargs):
    open(config["pause"]["paused"], "w").close()
    while not os.path.exists(config["pause"]["resume"]):
        time.sleep(0.05)
    return original(*args, **kwargs)

if config.get("obey_permissions") and os.geteuid() == 0:
    obey_permissions()
if config.get("file_size_limit"):
    import resource
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (config["file_size_limit"],) * 2)
if config.get("kill"):
    at_call(config["kill"], kill)
if config.get("pause"):
    at_call(config["pause"], pause)
module_name, function = config["entry_point"].split(":")
sys.argv = config["argv"]
sys.exit(getattr(importlib.import_module(module_name), function)())
'''


def command(argv: list[str], *, kill: dict | None = None, pause: dict | None = None,
            file_size_limit: int | None = None, obey_permissions: bool = False) -> list[str]:
    """The child's command line for ``argv`` (``["nnunet-clip", "convert", ...]``) with the faults given."""
    config = {"argv": argv, "entry_point": ENTRY_POINTS[argv[0]], "kill": kill, "pause": pause,
              "file_size_limit": file_size_limit, "obey_permissions": obey_permissions}
    return [sys.executable, "-c", CHILD, json.dumps(config)]


def run(argv: list[str], cwd: Path | None = None, **faults) -> subprocess.CompletedProcess:
    """Run ``argv`` to its end with the faults given; stdout and stderr captured as text, their
    carriage returns kept (progress bars)."""
    result = subprocess.run(command(argv, **faults), capture_output=True, cwd=cwd, env=os.environ.copy())
    result.stdout, result.stderr = (out.decode("utf-8", "replace") for out in (result.stdout, result.stderr))
    return result


def killed(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == -9


def text_lines(output: str) -> list[str]:
    """The non-empty lines of a command's output as a terminal shows them (each line's text after its
    last '\\r', with which tqdm redraws), progress bars left out."""
    shown = (line.split("\r")[-1] for line in output.split("\n"))
    return [line for line in shown if line.strip() and "%|" not in line]


def one_line_error(result: subprocess.CompletedProcess, command: str) -> str:
    """The error line of a command that failed as a user's mistake or the machine's should: a non-zero
    status and exactly one line on stderr, ``nnunet-clip COMMAND: error: ...``."""
    lines = text_lines(result.stderr)
    assert result.returncode not in (0, -9), result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"nnunet-clip {command}: error: "), result.stderr[-2000:]
    return lines[0]
