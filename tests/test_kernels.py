"""ThinConvTranspose2d: nn.ConvTranspose2d's results and gradients, computed as a matrix
product and a fold for a channels-last CPU input with one output channel."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.config import ModelConfig
from models.kernels import ThinConvTranspose2d
from models.vae import build_model


def pair(in_channels: int, out_channels: int, dtype=torch.float32):
    torch.manual_seed(0)
    ours = ThinConvTranspose2d(in_channels, out_channels, 4, 2, 1).to(dtype)
    ref = nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1).to(dtype)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def grads(layer, x, grad_out, autocast=False):
    x = x.detach().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.backward(grad_out.to(y.dtype))
    return y.detach(), x.grad, layer.weight.grad, layer.bias.grad


def test_the_matmul_path_matches_the_transposed_convolution_and_its_gradients():
    ours, ref = pair(32, 1)
    x = torch.randn(8, 32, 7, 7).contiguous(memory_format=torch.channels_last)
    assert ours._by_matmul(x) and not ours._by_matmul(x.contiguous())
    g = torch.randn(8, 1, 14, 14)
    for a, b in zip(grads(ours, x, g), grads(ref, x, g)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_the_matmul_path_passes_gradcheck_in_float64():
    layer = ThinConvTranspose2d(3, 1, 4, 2, 1).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64).contiguous(memory_format=torch.channels_last).requires_grad_()
    assert layer._by_matmul(x)
    # the weight and bias are the layer's own tensors: gradcheck perturbs them in place
    assert torch.autograd.gradcheck(lambda x, w, b: layer(x), (x, layer.weight, layer.bias))


def test_under_bf16_autocast_it_computes_in_bf16_as_the_convolution_does():
    ours, ref = pair(16, 1)
    x = torch.randn(4, 16, 14, 14).contiguous(memory_format=torch.channels_last)
    g = torch.randn(4, 1, 28, 28, dtype=torch.bfloat16)
    (y, _, gw, _), (y_ref, _, gw_ref, _) = grads(ours, x, g, autocast=True), grads(ref, x, g, autocast=True)
    assert y.dtype == y_ref.dtype == torch.bfloat16 and gw.dtype == torch.float32  # the weights stay fp32
    torch.testing.assert_close(y.float(), y_ref.float(), rtol=0.02, atol=0.05)
    torch.testing.assert_close(gw, gw_ref, rtol=0.02, atol=0.5)


@pytest.mark.parametrize("out_channels, channels_last", [(3, True), (1, False)])
def test_other_cases_are_the_transposed_convolutions_own(out_channels, channels_last):
    ours, ref = pair(8, out_channels)
    x = torch.randn(2, 8, 7, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert not ours._by_matmul(x)
    torch.testing.assert_close(ours(x), ref(x))


def test_the_conv_decoder_keeps_its_state_dict_keys():
    model = build_model(ModelConfig(arch="conv", hidden_dim=64))
    assert isinstance(model.dec_conv[-1], ThinConvTranspose2d)
    assert any(k.startswith("dec_conv.2.weight") for k in model.state_dict())


def test_a_channels_last_conv_step_gives_each_relu_backward_one_memory_layout():
    """The conv encoder's last ReLU runs after flatten's copy to the default layout: PyTorch's ReLU
    backward over a channels-last output and a default-layout gradient is a slow strided loop."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from models.objectives import objective_terms

    layouts = []

    class Layouts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.threshold_backward.default:
                layouts.append(tuple(a.is_contiguous() for a in args[:2]))
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="conv", hidden_dim=64)).to(memory_format=torch.channels_last)
    x = torch.rand(16, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # the same features as the encoder's layers applied in order
        reference = torch.relu(model.enc(model.enc_conv(x).flatten(1)))
        torch.testing.assert_close(model.enc_mu(reference), model.encode(x)[0], rtol=0, atol=0)
    with Layouts():
        objective_terms(model, x, None, torch.Generator().manual_seed(0)).loss.mean().backward()
    assert len(layouts) == 6  # after each convolution (3), and after enc, dec and dec_fc
    assert all(grad == out for grad, out in layouts), layouts
