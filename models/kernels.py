"""Layers whose CPU kernel we choose ourselves, where oneDNN's is slow for our shapes.

The conv decoders end in a transposed convolution to one channel (a grayscale image's
logits or means). oneDNN runs its forward pass at a few GFLOP/s: 2.7–3.9 ms for
``(128, 32, 14, 14) → (128, 1, 28, 28)`` in fp32 on 2 cores, against 0.8–1.6 ms for the
same arithmetic as one matrix product and a ``fold`` (col2im). Its backward pass is a
plain convolution, which oneDNN runs well, so only the forward changes. Measured here
with three and six output channels the matrix product was no faster, so the layer keeps
oneDNN's kernel there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _TransposedConvByMatmul(torch.autograd.Function):
    """``conv_transpose2d`` (groups 1, dilation 1, no output padding) with the forward pass
    as ``fold(xᵀ W)`` and the backward pass as ``aten.convolution_backward`` (oneDNN)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        b, c, h, w = x.shape
        k = weight.shape[2:]
        size = ((h - 1) * stride[0] - 2 * padding[0] + k[0], (w - 1) * stride[1] - 2 * padding[1] + k[1])
        # channels-last x is a (B, H·W, C) matrix as it lies in memory: columns (B, H·W, O·kh·kw)
        cols = x.permute(0, 2, 3, 1).reshape(b, h * w, c) @ weight.reshape(c, -1)
        y = F.fold(cols.transpose(1, 2), size, k, padding=padding, stride=stride)
        if bias is not None:
            y = y + bias.view(1, -1, 1, 1)
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, bias is not None)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, has_bias = ctx.conf
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.convolution_backward(
            grad, x, weight, [weight.shape[1]] if has_bias else None, list(stride), list(padding), [1, 1], True,
            [0, 0], 1, mask)
        return gx, gw, gb, None, None


class ThinConvTranspose2d(nn.ConvTranspose2d):
    """:class:`torch.nn.ConvTranspose2d` (same parameters, same state-dict keys, same results
    to float rounding) whose forward pass on a channels-last CPU input with one output channel
    is a matrix product and a ``fold``; every other case is ``nn.ConvTranspose2d``'s.

    Input ``(B, C, H, W)``, output ``(B, 1, H', W')`` with H' = (H − 1)·stride − 2·padding + kernel.
    Under CPU autocast it computes in the autocast dtype, as ``conv_transpose2d`` does.
    """

    def _by_matmul(self, x: torch.Tensor) -> bool:
        return (x.device.type == "cpu" and x.dim() == 4 and self.out_channels == 1 and self.groups == 1
                and self.padding_mode == "zeros" and self.dilation == (1, 1) and self.output_padding == (0, 0)
                and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or not self._by_matmul(x):
            return super().forward(x, output_size)
        weight, bias = self.weight, self.bias
        if torch.is_autocast_enabled("cpu"):
            dtype = torch.get_autocast_dtype("cpu")
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
            with torch.autocast("cpu", enabled=False):
                return _TransposedConvByMatmul.apply(x, weight, bias, self.stride, self.padding)
        return _TransposedConvByMatmul.apply(x, weight, bias, self.stride, self.padding)
