"""CPU kernels of the stacked model: dropout masks from fewer random bits, oneDNN's
linear layers, and glibc kept from returning freed memory.

    keep = bernoulli_keep((1024, 256), 0.1, torch.Generator().manual_seed(0))  # bool mask
    y = OneDNNLinear.apply(x, w, b)                   # x [N, I] @ w [I, O] + b [O], via oneDNN

Why (benchmarks/probe_engines.py, on this project's 2-core AMD EPYC machine): torch's CPU
dropout spends 32 random bits per entry (one mt19937 word, the slowest step of a training
step on the CPU), MKL's sgemm (torch.matmul's CPU kernel) takes no AVX-512 path on AMD
processors, and glibc's default of unmapping large freed blocks page-faults each temporary
of a training step in anew.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch


def bernoulli_keep(shape: tuple[int, ...], p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A bool mask of `shape` on the generator's device, each entry False (dropped) with
    probability `p`.

    On the CPU, an exact Bernoulli(p) from about 8 random bits per entry instead of the 32
    of torch's dropout (one mt19937 word per entry, the slowest step of a training step on
    the CPU): a random byte b drops below floor(256 p) and keeps above it; on the boundary
    byte (1 entry in 256) a float64 uniform decides with the remaining fraction, so
    P(drop) = floor(256 p) / 256 + frac(256 p) / 256 = p. Elsewhere: uniform >= p.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {p}")
    device = generator.device if generator is not None else torch.device("cpu")
    if device.type != "cpu":
        return torch.rand(shape, generator=generator, device=device) >= p
    numel = math.prod(shape)
    words = torch.empty((numel + 7) // 8, dtype=torch.int64)
    random_bytes = words.random_(-(2**63), None, generator=generator).numpy().view(np.uint8)[:numel]
    level = 256.0 * p
    floor = int(level)
    keep = random_bytes >= floor  # numpy: torch's bool-valued comparisons are ~10x slower here
    if level > floor:
        boundary = np.flatnonzero(random_bytes == floor)
        uniform = torch.rand(len(boundary), dtype=torch.float64, generator=generator)
        keep[boundary] = uniform.numpy() >= level - floor
    return torch.from_numpy(keep.reshape(shape))


class DropoutReLU(torch.autograd.Function):
    """relu(dropout(h)) with a given keep mask: h * (keep & (h > 0)) / (1 - p), one saved mask."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        if h.device.type == "cpu":  # the mask in numpy, as in bernoulli_keep
            active = np.logical_and(keep.numpy(), h.detach().numpy() > 0)
            mask = torch.from_numpy(np.multiply(active, np.float32(scale), dtype=np.float32))
        else:
            mask = (keep & (h > 0)).to(h.dtype).mul_(scale)
        ctx.save_for_backward(mask)
        return h * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


@functools.cache
def onednn_linear():
    """torch's oneDNN (mkldnn) linear on dense CPU tensors, or None where this torch has
    none (probed on first use).

    `op(x [N, I], w [O, I], b [O] or None)` = x @ w.T + b. MKL's sgemm (torch.matmul on the
    CPU) takes no AVX-512 path on AMD processors; oneDNN's JIT kernels do: twice the rate
    of a [1024, 256] x [256, 256] product on this project's 2-core AMD EPYC machine
    (benchmarks/probe_engines.py). Strided operands are accepted, so transposes are views.
    """
    if not torch.backends.mkldnn.is_available():
        return None
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None:
        return None
    try:
        x, w = torch.ones(2, 3), torch.ones(4, 3)
        if not torch.equal(op(x, w, None, "none", [], ""), torch.full((2, 4), 3.0)):
            return None
    except RuntimeError:
        return None
    return lambda a, m, bias: op(a, m, bias, "none", [], "")


class OneDNNLinear(torch.autograd.Function):
    """x @ w + b for x [N, I], w [I, O], b [O] through oneDNN, forward and backward (its
    products: dx = g @ w.T, dw = x.T @ g); the input gradient only where x needs one."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return onednn_linear()(x, w.t(), b)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        linear = onednn_linear()
        dx = linear(grad, w, None) if ctx.needs_input_grad[0] else None
        return dx, linear(x.t(), grad.t(), None), grad.sum(0)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Have glibc keep freed blocks for reuse instead of handing them back to the OS.

    By default blocks over 128 KiB are mmapped and unmapped one by one, so each temporary
    of a training step (a [batch, hidden] activation is 1 MiB) is page-faulted in anew:
    a third of a CPU training step here (benchmarks/probe_engines.py). Blocks up to
    32 MiB (glibc's maximum) now come from the heap, which is trimmed only above 256 MiB
    free; PyTorch's CPU tuning guide suggests jemalloc or tcmalloc for the same reason.
    Process-wide, idempotent; False where the C library is not glibc.
    """
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20))
