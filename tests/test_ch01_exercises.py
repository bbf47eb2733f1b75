"""The worked answers of chapter 1's exercises (book/01_autodiff.ipynb), recomputed.

Each test redoes what an answer states, so that an answer cannot drift from the engine, the
chain costs or PyTorch. Sizes are the ones the answers use; everything runs in seconds.
"""

import math

import pytest
import torch
from torch.func import jacfwd, jacrev
from torch.nn import functional as F

from coursekit.autodiff import Dual, Value, backward_table, chain, jvp, log, ops, sqrt
from coursekit.autodiff import dual as dual_module
from coursekit.autodiff import value as value_module
from coursekit.autodiff.autograd import flops, nbytes, saved_tensors
from coursekit.models import lenet
from coursekit.models.mlp import mlp


def f(x, y):
    s = y * log(x)
    return sqrt(s) + s


def test_ex1_tangent_of_the_diagonal_seed_is_the_sum_of_both_partials():
    _, dx = jvp(f, (3.0, 2.0), (1.0, 0.0))
    _, dy = jvp(f, (3.0, 2.0), (0.0, 1.0))
    _, diagonal = jvp(f, (3.0, 2.0), (1.0, 1.0))
    assert math.isclose(diagonal, dx + dy, rel_tol=1e-15)


def test_ex2_repeated_use_rows_and_the_overwrite_bug():
    x = Value(2.0, "x")
    table = backward_table(x * x * x)
    assert [row[0] for row in table.rows] == ["0'", "1'", "2'"]
    assert [row[-1] for row in table.rows] == [1.0, 2.0, 12.0]  # ḡ, v̄ = 2, x̄ = 3x² = 12
    assert table.rows[-1][3] == "1·4 + 2·2 + 2·2"  # three shares into x, v̄·2 last
    assert x.grad == 12.0
    shares = [float(a) * float(b) for a, b in
              (term.split("·") for term in table.rows[-1][3].split(" + "))]
    assert shares[-1] == 4.0  # with `=` instead of `+=`, only the last share would remain


def softplus(x: float) -> ops.Rule:
    """The answer of exercise 3: never exponentiates a positive number."""
    out = max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    return out, (ops.sigmoid(x)[0],)


def test_ex3_softplus_rule_is_stable_and_matches_torch():
    with pytest.raises(OverflowError):
        math.log(1 + math.exp(1000.0))  # the naive form
    with pytest.raises(ops.DomainError):
        ops.exp(1000.0)  # the engine refuses, as the answer says
    assert softplus(1000.0) == (1000.0, (1.0,))
    for x0 in [-30.0, -2.0, 0.0, 0.5, 3.0, 40.0, 1000.0]:
        xt = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        expected = F.softplus(xt)
        expected.backward()
        v = Value(x0)
        out = value_module.apply(softplus, (v,), "softplus")
        out.backward()
        d = dual_module.apply(softplus, (Dual(x0, 1.0),))
        assert math.isclose(out.data, expected.item(), rel_tol=1e-15, abs_tol=1e-300)
        assert math.isclose(v.grad, xt.grad.item(), rel_tol=1e-14, abs_tol=1e-300)
        assert math.isclose(d.tangent, xt.grad.item(), rel_tol=1e-14, abs_tol=1e-300)
        if abs(x0) < 50:
            h = 1e-6
            central = (softplus(x0 + h)[0] - softplus(x0 - h)[0]) / (2 * h)
            assert math.isclose(v.grad, central, rel_tol=1e-7, abs_tol=1e-12)


def test_ex4_hourglass_costs():
    widths = [100, 100, 1, 100, 100]
    assert chain.forward_cost(widths) == chain.reverse_cost(widths) == 1_020_000
    assert chain.optimal_cost(widths) == 30_000
    assert round(1_020_000 / 30_000) == 34


def test_section_1_5_scalar_output_chain_that_narrows_in_the_middle():
    widths = [10, 100, 1, 100, 1]  # the page's example: n_L = 1, narrow in the middle
    assert chain.reverse_cost(widths) == 1_200
    assert chain.optimal_cost(widths) == 1_110


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_ex5_full_jacobian_of_a_square_mlp_costs_about_n_passes_either_way():
    torch.manual_seed(0)
    net = mlp([256, 256, 256])
    point = torch.randn(256)
    one_pass = flops(lambda: net(point[None]))
    passes = {mode.__name__: flops(lambda mode=mode: mode(lambda v: net(v[None])[0])(point))
              / one_pass for mode in (jacfwd, jacrev)}
    assert passes == {"jacfwd": 258, "jacrev": 257}


def test_ex6_lenet5_saved_tensors_for_256_images():
    model = lenet.lenet5("modern")
    images = torch.zeros(256, 1, 28, 28)
    labels = torch.zeros(256, dtype=torch.long)
    _, saved = saved_tensors(lambda: F.cross_entropy(model(images), labels),
                             exclude=model.parameters())
    per_image_floats = 1 * 28 * 28 + 6 * 28 * 28 + 6 * 14 * 14 + 16 * 10 * 10 \
        + 16 * 5 * 5 + 120 + 84 + 10
    per_image_positions = 6 * 14 * 14 + 16 * 5 * 5
    assert (per_image_floats, per_image_positions) == (8_878, 1_576)
    assert len(saved) == 12
    assert nbytes(saved) == 256 * (4 * 8_878 + 8 * 1_576) + 256 * 8 + 4 == 12_320_772


def newton_loop(a):
    """The chapter's newton_sqrt without its extra step after the loop."""
    r = a
    while abs(float(r) ** 2 - float(a)) > 1e-12 * float(a):
        r = (r + a / r) / 2
    return r


def newton_sqrt(a):
    """The chapter's newton_sqrt: one more step once the test passes."""
    r = newton_loop(a)
    return (r + a / r) / 2


def derivative(fn, a0):
    a = Value(a0)
    fn(a).backward()
    return a.grad


def test_ex7_the_loop_alone_differentiates_the_program_that_ran():
    assert derivative(newton_loop, 1.0) == 1.0  # zero iterations: the identity
    assert math.isclose(derivative(newton_loop, 1.0000001), 0.5, rel_tol=1e-15)
    assert math.isclose(derivative(newton_sqrt, 1.0), 0.5, rel_tol=1e-15)
    exact = 1 / (2 * math.sqrt(1.0000001))
    assert math.isclose(derivative(newton_sqrt, 1.0000001), exact, rel_tol=1e-14)


def test_ex7_derivative_converges_one_step_behind_and_the_extra_step_fixes_it():
    grid = torch.logspace(-4, 4, 201, dtype=torch.float64).tolist()
    loop = [abs(derivative(newton_loop, a) * 2 * math.sqrt(a) - 1) for a in grid]
    fixed = [abs(derivative(newton_sqrt, a) * 2 * math.sqrt(a) - 1) for a in grid]
    assert max(loop) > 1e-12  # the loop's test is met by the value, not by the derivative
    assert max(fixed) < 1e-14
    for a in grid:  # the implicit-function derivative dr/da = 1/(2r) needs only the root
        r = newton_loop(a)
        assert math.isclose(1 / (2 * r), 1 / (2 * math.sqrt(a)), rel_tol=1e-12)


def test_ex8_lenet5_flops_from_layer_shapes():
    batch = 4
    model = lenet.lenet5("modern")
    images = torch.zeros(batch, 1, 28, 28)
    macs = {"c1": 6 * 28 * 28 * 1 * 25, "c3": 16 * 10 * 10 * 6 * 25, "c5": 120 * 16 * 25,
            "f6": 84 * 120, "output": 10 * 84}
    assert sum(macs.values()) == 416_520
    forward = flops(lambda: model(images))
    assert forward == 2 * batch * sum(macs.values())
    share = macs["c1"] / sum(macs.values())
    assert round(100 * share) == 28
    assert round(2 - share, 2) == 1.72  # the backward/forward ratio the page measures
