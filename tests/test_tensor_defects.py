"""The defects of the issue "Reliability, round three", one test (or a few) per class of bug, each with its reproducer.

Each test asserts what PyTorch (float64) does, or the error micrograd promises instead, so that it fails on the
behaviour the issue reported.
"""
import math, random, threading
import numpy as np
import pytest
import torch
from micrograd.engine import Value
from micrograd.tensor import Tensor, MLP, Linear, cross_entropy, mse_loss
from micrograd.autograd import grad, no_grad
from micrograd import func, optim
from micrograd.viz import draw_dot

inf, nan = math.inf, math.nan


def t64(x): return torch.tensor(x, dtype=torch.float64, requires_grad=True)


# 1. relu of NaN passes its gradient on
def test_relu_of_nan_passes_the_gradient():
    x = Tensor([nan, -1.0, 0.0, 2.0], requires_grad=True)
    x.relu().backward(np.ones(4))
    tx = t64([nan, -1.0, 0.0, 2.0]); torch.relu(tx).backward(torch.ones(4, dtype=torch.float64))
    assert x.grad.tolist() == tx.grad.tolist() == [1.0, 0.0, 0.0, 1.0]
    v = Value(nan); v.relu().backward()
    assert v.grad == 1.0


# 2. powers at the edges
def test_grad_of_minus_inf_to_a_fractional_power_is_nan():
    x = Tensor([-inf], requires_grad=True)
    (x ** 0.5).backward(np.ones(1))
    tx = t64([-inf]); (tx ** 0.5).backward(torch.ones(1, dtype=torch.float64))
    assert math.isnan(x.grad[0]) and math.isnan(tx.grad[0])
    assert math.isnan((Tensor(-inf) ** 0.5).item()) and math.isnan((Tensor(-inf) ** -0.5).item())  # as torch


@pytest.mark.parametrize('x0', [0.0, -0.0, 2.0, inf, nan])
def test_grad_of_x_to_the_zero_is_zero(x0):
    tx = t64(x0); (tx ** 0).backward()
    assert tx.grad.item() == 0.0
    x = Tensor(x0, requires_grad=True); (x ** 0).backward()
    v = Value(x0); (v ** 0).backward()
    assert (x.grad.item(), v.grad) == (0.0, 0.0)
    assert grad(Value(x0) ** 0 * 3, Value(x0))[0] == 0.0
    v = Value(x0)
    assert grad(v ** 0, v, create_graph=True)[0].data == 0.0


# 3. the mean of an empty tensor
@pytest.mark.parametrize('axis', [None, 0, 1])
def test_mean_of_an_empty_tensor_backpropagates(axis):
    x, tx = Tensor(np.ones((0, 3)), requires_grad=True), torch.ones(0, 3, dtype=torch.float64, requires_grad=True)
    out, tout = x.mean(axis=axis), (tx.mean() if axis is None else tx.mean(dim=axis))
    out.sum().backward(); tout.sum().backward()
    assert x.grad.shape == tuple(tx.grad.shape) == (0, 3)
    assert out.shape == tuple(tout.shape)
    assert np.array_equal(np.isnan(out.data), torch.isnan(tout).numpy())


# 4. indexing keeps its own copy of the index
def test_index_arrays_are_copied():
    t = Tensor(np.arange(6.0), requires_grad=True)
    idx = np.array([0, 1, 1])
    out = t[idx]
    idx[:] = 5  # the caller reuses the array
    out.backward(np.array([1.0, 2.0, 3.0]))
    assert t.grad.tolist() == [1.0, 5.0, 0.0, 0.0, 0.0, 0.0]
    rows, cols = [0, 0], [1, 2]
    m = Tensor(np.ones((2, 3)), requires_grad=True)
    picked = m[rows, cols]
    rows.append(1); cols[0] = 0  # lists too
    picked.sum().backward()
    assert m.grad.tolist() == [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    mask = np.array([True, False, True])
    masked = Tensor(np.ones(3), requires_grad=True).masked_fill(mask, 0.0)
    mask[:] = False
    assert masked.data.tolist() == [0.0, 1.0, 0.0] and masked._ctx['mask'].tolist() == [True, False, True]


# 5. truth, length and iteration as for torch
def test_truth_and_iteration_of_tensors():
    assert bool(Tensor(0.0)) is False and bool(Tensor(-0.0)) is False and bool(Tensor([[0.0]])) is False
    assert bool(Tensor(5.0)) is True and bool(Tensor(nan)) is True
    assert bool(torch.tensor(0.0)) is False
    with pytest.raises(TypeError, match="iteration over a 0-d Tensor"): list(Tensor(5.0))
    with pytest.raises(TypeError): list(torch.tensor(5.0))
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d Tensor"): len(Tensor(5.0))
    with pytest.raises(ValueError, match="ambiguous"): bool(Tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="ambiguous"): bool(Tensor(np.ones(0)))
    assert [r.data.tolist() for r in Tensor([[1.0, 2.0], [3.0, 4.0]])] == [[1.0, 2.0], [3.0, 4.0]]
    if Tensor(0.0): pytest.fail("Tensor(0.0) is true")


# 6. what Value takes, Tensor takes; axes as lists
def test_big_integers_and_axis_lists():
    assert Tensor(2**100).item() == Value(2**100).data == 2.0**100
    assert Tensor([2**100, -3]).data.tolist() == [2.0**100, -3.0]
    assert Tensor(np.ones((2, 3))).sum(axis=[0, 1]).item() == torch.ones(2, 3).sum(dim=[0, 1]).item() == 6.0
    assert Tensor(np.ones((2, 3))).mean(axis=[1]).data.tolist() == [1.0, 1.0]
    assert Tensor(np.ones((2, 3))).max(axis=[0, 1]).item() == 1.0
    with pytest.raises(ValueError, match=r"sum\(\) got axis \[0, 2\] for a tensor with 2 axes: axis 2 is out of bounds"): Tensor(np.ones((2, 3))).sum(axis=[0, 2])
    with pytest.raises(TypeError, match=r"sum\(\) needs axis to be None, an int, or a list or tuple of ints, got str"): Tensor(np.ones(2)).sum(axis='0')


# 7. cross_entropy refuses what is not a class index
@pytest.mark.parametrize('target, error, message', [
    (-1, ValueError, r"cross_entropy\(\) needs class indices from 0 to 2, got -1 at index 1"),
    (3, ValueError, r"cross_entropy\(\) needs class indices from 0 to 2, got 3 at index 1"),
    (10**20, ValueError, r"cross_entropy\(\) needs class indices from 0 to 2, got 100000000000000000000 at index 1"),
    (1.7, ValueError, r"cross_entropy\(\) needs targets to be whole numbers \(class indices\), got 1.7 at index 1"),
    (nan, ValueError, r"cross_entropy\(\) needs targets to be whole numbers \(class indices\), got nan at index 1"),
    (inf, ValueError, r"cross_entropy\(\) needs targets to be whole numbers"),
    ('a', TypeError, r"cross_entropy\(\) needs targets to be class indices \(integers\)"),
    (None, TypeError, r"cross_entropy\(\) needs targets to be class indices \(integers\)"),
])
def test_cross_entropy_refuses_bad_targets(target, error, message):
    with pytest.raises(error, match=message): cross_entropy(Tensor(np.ones((2, 3))), [0, target])


def test_cross_entropy_refuses_bad_logits_and_shapes():
    with pytest.raises(TypeError, match=r"cross_entropy\(\) needs logits to be a Tensor, got list"): cross_entropy([[1.0, 2.0]], [0])
    with pytest.raises(ValueError, match=r"cross_entropy\(\) needs logits of shape \(n, classes\), got shape \(3,\)"): cross_entropy(Tensor(np.ones(3)), [0])
    with pytest.raises(ValueError, match=r"cross_entropy\(\) needs targets of shape \(2,\)"): cross_entropy(Tensor(np.ones((2, 3))), [0])
    ok = cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 2], dtype=np.uint8))
    assert ok.item() == pytest.approx(math.log(3), rel=1e-15)


# 8. mse_loss: a target in the graph gets its gradient; shapes must agree
def test_mse_loss_target_gets_a_gradient():
    preds, targets = Tensor([1.0, 2.0, 3.0], requires_grad=True), Tensor([1.5, 5.0, 5.0], requires_grad=True)
    mse_loss(preds, targets).backward()
    tp, tt = t64([1.0, 2.0, 3.0]), t64([1.5, 5.0, 5.0])
    torch.nn.functional.mse_loss(tp, tt).backward()
    np.testing.assert_allclose(targets.grad, tt.grad.numpy(), rtol=1e-15)
    np.testing.assert_allclose(preds.grad, tp.grad.numpy(), rtol=1e-15)
    # the reproducer: a target that requires a gradient (torch: [-0.333, -2.0, -1.333])
    p2, t2 = Tensor([2.5, 8.0, 5.0], requires_grad=True), Tensor([2.0, 5.0, 3.0], requires_grad=True)
    mse_loss(p2, t2).backward()
    np.testing.assert_allclose(t2.grad, [-1/3, -2.0, -4/3], rtol=1e-15)
    tp2, tt2 = t64([2.5, 8.0, 5.0]), t64([2.0, 5.0, 3.0])
    torch.nn.functional.mse_loss(tp2, tt2).backward()
    np.testing.assert_allclose(t2.grad, tt2.grad.numpy(), rtol=1e-15)
    constant = Tensor([2.0, 5.0, 3.0])  # a target that does not require one gets none
    mse_loss(Tensor([2.5, 8.0, 5.0], requires_grad=True), constant).backward()
    assert constant.grad is None


def test_mse_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"mse_loss\(\) needs targets of the predictions' shape \(3, 2\), got shape \(2, 3\)"):
        mse_loss(Tensor(np.ones((3, 2))), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(4,\), got shape \(3,\)"): mse_loss(Tensor(np.ones(4)), [1.0, 2.0, 3.0])
    assert mse_loss(Tensor([[1.0], [3.0]]), [1.0, 1.0]).item() == 2.0  # (n, 1) against n numbers: the same numbers


# 9. optimizers: a parameter without a gradient is skipped; zero_grad leaves a Tensor drawable
@pytest.mark.parametrize('name, settings', [('SGD', dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
                                            ('Adam', dict(lr=0.01, weight_decay=0.01))])
def test_optimizers_skip_tensors_without_gradient(name, settings):
    used, unused = Tensor([1.0, -2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    t_used, t_unused = t64([1.0, -2.0]), t64([3.0, 4.0])
    opt, t_opt = getattr(optim, name)([used, unused], **settings), getattr(torch.optim, name)([t_used, t_unused], **settings)
    for _ in range(3):
        opt.zero_grad(); (used * used).sum().backward(); opt.step()
        t_opt.zero_grad(); (t_used * t_used).sum().backward(); t_opt.step()
    np.testing.assert_allclose(used.data, t_used.detach().numpy(), rtol=1e-12)
    assert unused.data.tolist() == [3.0, 4.0] and unused.grad is None
    opt.zero_grad()
    assert used.grad is None
    assert 'shape (2,)' in draw_dot((used * 2).sum()).source  # draws after zero_grad


def test_optimizer_zero_grad_of_values_is_zero():
    v = Value(1.0); (v * v).backward()
    opt = optim.SGD([v], lr=0.1)
    opt.zero_grad()
    assert v.grad == 0.0


# 10. the curvature of sqrt and of x ** 0.25 at 0 is -inf
@pytest.mark.parametrize('k', [0.5, 0.25])
def test_second_derivative_of_roots_at_zero(k):
    tx = t64(0.0)
    d, = torch.autograd.grad(tx ** k, tx, create_graph=True)
    d2, = torch.autograd.grad(d, tx)
    v, t = Value(0.0), Tensor(0.0, requires_grad=True)
    ours_v = grad(grad(v ** k, v, create_graph=True)[0], v)[0]
    ours_t = grad(grad(t ** k, t, create_graph=True)[0], t)[0].item()
    assert ours_v == ours_t == d2.item() == -inf
    assert func.grad(func.grad(lambda x: x ** k))(0.0) == -inf
    assert func.grad(func.grad(lambda x: (x ** k).sum()))(np.array([0.0]))[0] == -inf


# 11. relu of NaN under create_graph, as without
def test_relu_of_nan_with_create_graph():
    for x in (Value(nan), Tensor(nan, requires_grad=True)):
        y = (x.relu() * 2) if isinstance(x, Value) else (x.relu() * 2).sum()
        first, = grad(y, x)
        graphed, = grad(y, x, create_graph=True)
        assert float(first) == float(graphed.data) == 2.0


# 12. grad mode and the transforms' count are per thread
def run_beside(blocker, work):
    "Run `work()` in this thread while another thread sits inside `blocker(wait)`; return what work gave"
    inside, done = threading.Event(), threading.Event()
    def wait(): inside.set(); done.wait(timeout=10)
    worker = threading.Thread(target=blocker, args=(wait,)); worker.start()
    try:
        assert inside.wait(timeout=10)
        return work()
    finally:
        done.set(); worker.join()


def in_no_grad(wait):
    with no_grad(): wait()


def test_another_threads_no_grad_does_not_stop_this_threads_graph():
    def work():
        x, t = Value(2.0), Tensor([2.0], requires_grad=True)
        (x * x).backward(); (t * t).sum().backward()
        return x.grad, t.grad.tolist(), grad(Value(2.0) ** 3, Value(2.0))[0], func.grad(lambda x: x * x)(2.0)
    v, t, constant, f = run_beside(in_no_grad, work)
    assert (v, t, f) == (4.0, [4.0], 4.0)
    assert constant == 0.0  # a fresh Value(2.0) is not in the graph of another Value(2.0)


def test_another_threads_transform_does_not_make_this_one_nested():
    def transform(wait): func.grad(lambda x: (wait(), x * x)[1])(1.0)
    result = run_beside(transform, lambda: func.grad(lambda x: x ** 3)(2.0))
    assert result == 12.0 and type(result) is float
    array = run_beside(transform, lambda: func.grad(lambda x: (x ** 3).sum())(np.array([2.0])))
    assert type(array) is np.ndarray and array.tolist() == [12.0]


# 13. arguments not differentiated arrive as constants of the function's kind
def test_value_and_grad_gives_constant_values_for_other_arguments():
    f = lambda x, y: x * x * y + y.tanh()
    value, slope = func.value_and_grad(f)(1.5, -0.5)
    tx, ty = t64(1.5), torch.tensor(-0.5, dtype=torch.float64)
    tvalue, tslope = torch.func.grad_and_value(lambda x, y: x * x * y + torch.tanh(y))(tx, ty)[::-1]
    assert value == pytest.approx(tvalue.item(), rel=1e-15) and slope == pytest.approx(tslope.item(), rel=1e-15)
    assert func.grad(f, 1)(1.5, -0.5) == pytest.approx(2.25 + 1 - math.tanh(-0.5) ** 2, rel=1e-15)
    assert func.grad(lambda x, y: x * y.detach())(2.0, 3.0) == 3.0
    assert func.grad(lambda x, n: x ** n)(-2.0, 3) == 12.0  # an int stays an int: it counts
    seen = []
    func.grad(lambda x, y: (seen.append(type(y)), x * y)[1])(2.0, 3.0)
    assert seen == [Value]
