"""Manifold grids, traversals, interpolation and grid tiling."""

import numpy as np
import pytest
import torch

from models.latent import grid_size, interpolate, manifold_latents, prior_samples, tile_images, traversal_latents


def test_manifold_uses_the_inverse_gaussian_cdf_with_x_right_and_y_up():
    z = manifold_latents(4, 2)
    assert z.shape == (16, 2)
    expected = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([0.125, 0.375, 0.625, 0.875]))
    torch.testing.assert_close(z[:4, 0], expected)  # top row: x grows left to right
    torch.testing.assert_close(z[::4, 1], expected.flip(0))  # left column: y grows bottom to top
    assert z[0, 1] > 0 and z[-1, 1] < 0


def test_manifold_holds_other_dimensions_at_base():
    base = torch.arange(5, dtype=torch.float32)
    z = manifold_latents(3, 5, dims=(3, 1), base=base)
    assert torch.equal(z[:, [0, 2, 4]], base[[0, 2, 4]].repeat(9, 1))
    assert len(set(z[:, 3].tolist())) == 3
    with pytest.raises(ValueError):
        manifold_latents(3, 5, dims=(2, 2))
    with pytest.raises(ValueError):
        manifold_latents(3, 5, dims=(0, 5))


def test_traversal_rows_vary_one_dimension_each():
    base = torch.tensor([0.5, -1.0, 2.0])
    values = torch.linspace(-3, 3, 5)
    z = traversal_latents(base, [0, 2], values)
    assert z.shape == (10, 3)
    assert torch.equal(z[:5, 0], values) and torch.equal(z[:5, 1:], base[1:].repeat(5, 1))
    assert torch.equal(z[5:, 2], values) and torch.equal(z[5:, :2], base[:2].repeat(5, 1))


def test_interpolation_ends_and_paths():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    lin = interpolate(a, b, 5, "linear")
    torch.testing.assert_close(lin[0], a)
    torch.testing.assert_close(lin[-1], b)
    torch.testing.assert_close(lin[2], torch.tensor([0.5, 0.5]))
    sl = interpolate(a, b, 5, "slerp")
    torch.testing.assert_close(sl[0], a)
    torch.testing.assert_close(sl[-1], b)
    torch.testing.assert_close(sl.norm(dim=1), torch.ones(5))  # stays on the circle
    # parallel vectors fall back to the straight line
    torch.testing.assert_close(interpolate(a, 2 * a, 3, "slerp")[1], torch.tensor([1.5, 0.0]))
    with pytest.raises(ValueError):
        interpolate(a, b, 1)
    with pytest.raises(ValueError):
        interpolate(a, b, 3, "cubic")


def test_prior_samples_are_reproducible_for_a_seed():
    assert torch.equal(prior_samples(4, 3, 7), prior_samples(4, 3, 7))
    assert not torch.equal(prior_samples(4, 3, 7), prior_samples(4, 3, 8))


def test_tile_images_size_scale_and_padding():
    images = np.zeros((5, 1, 2, 3), dtype=np.float32)
    images[0] = 1.0
    out = tile_images(images, rows=2, cols=3, scale=2, padding=1, pad_value=0.5)
    assert out.shape == grid_size(2, 3, (2, 3), 2, 1) == (2 * 4 + 3, 3 * 6 + 4)
    assert np.all(out[1:5, 1:7] == 1.0)  # first tile, upscaled
    assert np.all(out[1:5, 8:14] == 0.0)  # second tile
    assert out[0, 0] == 0.5 and out[5, 1] == 0.5  # frame and gap
    assert np.all(out[6:10, 15:21] == 0.5)  # the sixth cell is empty
    rgb = tile_images(np.zeros((1, 3, 2, 2)), 1, 1)
    assert rgb.shape == (2, 2, 3)
    with pytest.raises(ValueError):
        tile_images(images, 1, 2)
