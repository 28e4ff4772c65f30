"""Models placed by accelerate's device_map (`from_pretrained(..., device_map=..., max_memory=..., offload_folder=...)`).

An offloaded decoder layer ("cpu" offload next to a GPU, or "disk") keeps its weights on the `meta` device;
accelerate's hook loads them from CPU RAM or the offload folder onto the hook's execution device for each
forward and drops them afterwards. Calibration only runs layers forward, so it needs nothing but the
execution device (`execution_device`). Reducing a layer changes its tensor shapes, which the hook's stored
weights cannot follow, so just before a layer is reduced it is loaded for good (`onload`) and its hook removed:
the reduced layer then lives on its execution device (the GPU, or the CPU on a CPU-only machine). The original
model never has to fit in memory; the reduced one does (on the execution device).
"""
from __future__ import annotations

import torch
import torch.nn as nn


def _hooks(module: nn.Module) -> list:
    hook = getattr(module, "_hf_hook", None)
    if hook is None:
        return []
    return list(getattr(hook, "hooks", [hook]))             # a SequentialHook holds several


def execution_device(module: nn.Module) -> torch.device:
    """Where `module` computes: its accelerate hook's execution device, else where its first parameter is."""
    for hook in _hooks(module):
        dev = getattr(hook, "execution_device", None)
        if dev is not None:
            return torch.device("cuda", dev) if isinstance(dev, int) else torch.device(dev)
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def is_offloaded(module: nn.Module) -> bool:
    return any(getattr(h, "offload", False) for m in module.modules() for h in _hooks(m))


@torch.no_grad()
def onload(module: nn.Module) -> None:
    """Load every offloaded weight under `module` onto its execution device for good and remove those hooks."""
    if not is_offloaded(module):
        return
    from accelerate.hooks import remove_hook_from_module
    from accelerate.utils import named_module_tensors, set_module_tensor_to_device

    for m in list(module.modules()):
        for hook in _hooks(m):
            if not getattr(hook, "offload", False):
                continue
            dev = execution_device(m)
            values = {name: hook.weights_map[name] for name, _ in named_module_tensors(
                m, include_buffers=hook.offload_buffers, recurse=hook.place_submodules, remove_non_persistent=True)}
            # remove the hook BEFORE loading: its detach puts "cpu"-offloaded tensors back on the CPU (seen on an H100)
            remove_hook_from_module(m)
            for name, value in values.items():
                set_module_tensor_to_device(m, name, dev, value=value)
            break


def module_tensor(root: nn.Module, path: str) -> torch.Tensor:
    """The real value of tensor `path` under `root` on its execution device, also while accelerate keeps it offloaded.

    accelerate hooks leaf modules (router, fused experts, ...) and loads their weights only inside their own
    forward; code that reads a block's weights from outside that forward (calibration's every-expert-on-every-
    token pass) gets them here, from the hook's weights map (CPU RAM or the offload folder)."""
    mod_path, _, name = path.rpartition(".")
    t = getattr(root.get_submodule(mod_path), name)
    if t.device.type != "meta":
        return t
    parts = path.split(".")
    for j in range(len(parts) - 1, -1, -1):
        sub, rest = root.get_submodule(".".join(parts[:j])), ".".join(parts[j:])
        for hook in _hooks(sub):
            if getattr(hook, "offload", False) and getattr(hook, "weights_map", None) is not None:
                try:
                    return hook.weights_map[rest].to(execution_device(sub))
                except KeyError:
                    pass
    raise RuntimeError(f"{path} is on the meta device and no accelerate offload hook holds its value")
