import math

import pytest
import torch

from dfac.quantile import cosine_embedding, huber, quantile_huber_loss


def test_quantile_huber_hand_computed():
    # one online sample at tau = 0.25 (value 1) and two target samples (3 and 0.5), kappa = 1:
    # u = 3 - 1 = 2  -> |0.25 - 0| * (|2| - 0.5)        = 0.375
    # u = 0.5 - 1 = -0.5 -> |0.25 - 1| * 0.5 * 0.25     = 0.09375
    # mean over the 2 targets, sum over the 1 online sample -> 0.234375
    z = torch.tensor([[1.0]])
    taus = torch.tensor([[0.25]])
    target = torch.tensor([[3.0, 0.5]])
    assert quantile_huber_loss(z, taus, target).item() == pytest.approx(0.234375)


def test_quantile_huber_sums_over_online_samples_and_kappa():
    z = torch.tensor([0.0, 0.0])
    taus = torch.tensor([0.1, 0.9])
    target = torch.tensor([4.0])
    # u = 4 for both; kappa = 2: Huber = 2 * (4 - 1) = 6, / kappa = 3; weights 0.1 and 0.9
    assert quantile_huber_loss(z, taus, target, kappa=2.0).item() == pytest.approx(0.1 * 3 + 0.9 * 3)


def test_quantile_huber_gradient_matches_finite_differences():
    torch.manual_seed(0)
    z = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    taus = torch.rand(3, 5, dtype=torch.float64)
    target = torch.randn(3, 7, dtype=torch.float64) * 2
    assert torch.autograd.gradcheck(lambda x: quantile_huber_loss(x, taus, target), (z,))


def test_minimiser_is_the_quantile():
    # the loss over many target samples is minimised at the tau-quantile of the targets
    torch.manual_seed(0)
    target = torch.randn(1, 4000)
    taus = torch.tensor([[0.1, 0.5, 0.9]])
    z = torch.zeros(1, 3, requires_grad=True)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        quantile_huber_loss(z, taus, target, kappa=0.01).backward()
        opt.step()
    expected = torch.quantile(target, taus[0])
    assert torch.allclose(z.detach()[0], expected, atol=0.08)


def test_huber_and_cosine_embedding():
    u = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0])
    assert torch.allclose(huber(u), torch.tensor([2.5, 0.125, 0.0, 0.125, 2.5]))
    e = cosine_embedding(torch.tensor([[0.3, 0.7]]), n_cos=4)
    assert e.shape == (1, 2, 4)
    assert e[0, 1, 2].item() == pytest.approx(math.cos(math.pi * 2 * 0.7), abs=1e-6)
    assert torch.all(e[..., 0] == 1)
