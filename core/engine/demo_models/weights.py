"""Random weights that depend on the seed alone, and saving them like a real checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports stay lazy: importing this module must be cheap
    import torch


def save_weights(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save

    # Persistent buffers (codebooks, cluster usage) are part of state_dict and must be
    # saved too: anything missing from the file would be re-initialised randomly on load.
    state = {name: tensor.detach().contiguous() for name, tensor in module.state_dict().items()}
    # save() + write_bytes rather than save_file(), which creates the file with mode 0600
    # instead of honouring the umask like every other file of the checkpoint.
    path.write_bytes(save(state, metadata={"format": "pt"}))


def randomize(model: torch.nn.Module, generator: torch.Generator, std: float = 0.02) -> None:
    """Redraws every random weight from ``generator`` (HF-style N(0, 0.02), zero biases).

    Constructors draw from the global RNG; redrawing makes the weights depend on the
    seed alone. Every other tensor the constructors create is a constant (norm
    weights, layer scales, Snake parameters, codebook usage counts).
    """
    import torch
    from torch import nn

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv1d, nn.ConvTranspose1d)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                bias = getattr(module, "bias", None)
                if bias is not None:
                    bias.zero_()


def unit_gain_convs(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Re-initialises convolutions so activations keep their scale through deep conv stacks."""
    import torch
    from torch import nn

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.ConvTranspose1d):
                # Each output sample sums in_channels * kernel / stride inputs.
                fan_in = module.in_channels * module.kernel_size[0] / module.stride[0]
            elif isinstance(module, nn.Conv1d):
                fan_in = module.in_channels // module.groups * module.kernel_size[0]
            else:
                continue
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in**0.5)
            if module.bias is not None:
                module.bias.zero_()
