"""autograd.grad and the func transforms against torch.autograd and torch.func, float64, to a relative 1e-9:
derivatives of order 1 to 3 of every op, for Values and for Tensors; gradcheck and gradgradcheck on functions of
numbers and of arrays; grad, value_and_grad and hessian of functions of numbers and of arrays.
"""
import math, random
import numpy as np
import pytest
import torch
import torch.func
from micrograd.engine import Value
from micrograd.tensor import Tensor, cross_entropy
from micrograd.autograd import grad, gradcheck, gradgradcheck, GradcheckError
from micrograd import func

RTOL, ATOL = 1e-9, 1e-12

OPS = {'+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b, '/': lambda a, b: a / b,
       '**': lambda a, b: a ** b, '** 2.5': lambda a, b: a ** 2.5, '** -1': lambda a, b: a ** -1, '** 3': lambda a, b: a ** 3,
       'number ** b': lambda a, b: 1.7 ** b, 'exp': lambda a, b: a.exp(), 'log': lambda a, b: a.log(),
       'tanh': lambda a, b: a.tanh(), 'relu': lambda a, b: a.relu() * b, 'sigmoid': lambda a, b: a.sigmoid(),
       'neg': lambda a, b: -a * b, 'mixed': lambda a, b: (a * b + 1.5).tanh() * (a - b) / (b * b + 1.0) + (a * 0.3).exp() * b ** 2}
TORCH_OPS = {**OPS, 'relu': lambda a, b: torch.relu(a) * b, 'sigmoid': lambda a, b: torch.sigmoid(a)}
POSITIVE = {'**', '** 2.5', 'log'}


def torch_grad(y, xs):
    if not y.requires_grad: return [torch.zeros_like(x) for x in xs]
    return torch.autograd.grad(y, xs, create_graph=True, allow_unused=True, materialize_grads=True)


def all_derivatives(f, a, b, grad_fn, weigh, order=3):
    "Every partial derivative of f(a, b) up to `order`, each derivative weighed to one number before the next"
    layer, found = [f(a, b)], []
    for _ in range(order):
        layer = [d for y in layer for d in grad_fn(weigh(y), (a, b))]
        found += layer
    return found


def compare(name, pa, pb):
    "Our derivatives (orders 1 to 3) of op `name` at arrays or numbers pa, pb against torch's; the number compared"
    tensors = isinstance(pa, np.ndarray)
    rng, made = np.random.default_rng(0), []
    def weigh(y):
        if not tensors: return y
        made.append(rng.normal(size=y.shape)); return (y * made[-1]).sum()
    used = iter(made)
    def torch_weigh(y): return (y * torch.tensor(next(used))).sum() if tensors else y
    a, b = (Tensor(pa, requires_grad=True), Tensor(pb, requires_grad=True)) if tensors else (Value(pa), Value(pb))
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (pa, pb))
    ours = all_derivatives(OPS[name], a, b, lambda y, xs: grad(y, xs, create_graph=True), weigh)
    theirs = all_derivatives(TORCH_OPS[name], ta, tb, torch_grad, torch_weigh)
    o = np.concatenate([np.ravel(d.data) for d in ours])
    t = np.concatenate([d.detach().numpy().ravel() for d in theirs])
    np.testing.assert_allclose(o, t, rtol=RTOL, atol=ATOL, err_msg=f"{name} at {pa}, {pb}")
    return o.size


@pytest.mark.parametrize('name', list(OPS))
def test_derivatives_one_to_three_of_every_op(name, fuzz_counts):
    rng = random.Random(name)
    compared = 0
    for _ in range(15):
        x0 = rng.uniform(0.1, 3) if name in POSITIVE else rng.uniform(-3, 3)
        y0 = rng.uniform(-2, 2)
        compared += compare(name, x0, y0)
        shape_a, shape_b = rng.choice([((3, 1), (4,)), ((2, 3), (2, 3)), ((), (2, 2)), ((2, 1, 3), (1, 4, 1))])
        nprng = np.random.default_rng(rng.randrange(10**6))
        pa = nprng.uniform(0.1, 3, shape_a) if name in POSITIVE else nprng.uniform(-3, 3, shape_a)
        compared += compare(name, pa, nprng.uniform(-2, 2, shape_b))
    counts = fuzz_counts['autograd derivatives 1-3 vs torch (Value and Tensor)']
    counts['numbers compared'] += compared


def tensor_op_cases():
    rng = np.random.default_rng(5)
    causal = np.triu(np.ones((3, 3), dtype=bool), 1)
    return {
        'sum, mean': (lambda a: a.sum(axis=0) * a.mean(axis=1, keepdims=True), lambda a: a.sum(dim=0) * a.mean(dim=1, keepdim=True), [(3, 3)]),
        'max': (lambda a: a.max(axis=1) * a.sum(), lambda a: a.amax(dim=1) * a.sum(), [(3, 4)]),
        'reshape, transpose': (lambda a: a.reshape(2, 6).T.reshape(3, 4) * a, lambda a: a.reshape(2, 6).T.reshape(3, 4) * a, [(3, 4)]),
        '@ stacks': (lambda a, b: (a @ b).tanh(), lambda a, b: (a @ b).tanh(), [(2, 3, 4), (4, 2)]),
        'index': (lambda a: a[[0, 2, 2], 1:] * a[:, :2], lambda a: a[[0, 2, 2], 1:] * a[:, :2], [(3, 3)]),
        'softmax': (lambda a: a.softmax(-1) * a, lambda a: a.softmax(-1) * a, [(2, 5)]),
        'log_softmax': (lambda a: a.log_softmax(0) * a, lambda a: a.log_softmax(0) * a, [(4, 3)]),
        'masked softmax': (lambda a: a.masked_fill(causal, -math.inf).softmax(-1) * a,
                           lambda a: a.masked_fill(torch.from_numpy(causal), -math.inf).softmax(-1) * a, [(2, 3, 3)]),
        'cross_entropy': (lambda a: cross_entropy(a, [0, 2, 1]), lambda a: torch.nn.functional.cross_entropy(a, torch.tensor([0, 2, 1])), [(3, 4)]),
    }


@pytest.mark.parametrize('name', list(tensor_op_cases()))
def test_derivatives_one_to_three_of_tensor_ops(name, fuzz_counts):
    f, tf, shapes = tensor_op_cases()[name]
    rng = np.random.default_rng(11)
    arrays = [rng.normal(size=s) for s in shapes]
    ours, theirs = [Tensor(a, requires_grad=True) for a in arrays], [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = f(*ours), tf(*theirs)
    compared = 0
    for level in range(3):
        w = rng.normal(size=out.shape)
        gs, tgs = grad((out * w).sum(), ours, create_graph=True), torch_grad((tout * torch.tensor(w)).sum(), theirs)
        for g, tg in zip(gs, tgs):
            np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=f"{name}, order {level + 1}")
            compared += g.data.size
        vs = [rng.normal(size=a.shape) for a in arrays]
        out, tout = sum((g * v).sum() for g, v in zip(gs, vs)), sum((tg * torch.tensor(v)).sum() for tg, v in zip(tgs, vs))
    fuzz_counts['autograd derivatives 1-3 vs torch (Value and Tensor)']['numbers compared'] += compared


# ---------------------------------------------------------------- gradcheck and gradgradcheck

def test_gradcheck_on_numbers_and_arrays():
    assert gradcheck(lambda a, b: (a * b).tanh() + a / b, 0.3, -1.7)
    assert gradcheck(lambda w, x: (x @ w).tanh().sum(), np.full((3, 2), 0.3), [[0.5, -1.0, 2.0]])
    assert gradgradcheck(lambda w, x: ((x @ w).softmax(-1) * (x @ w)).sum(), np.full((3, 2), 0.3), [[0.5, -1.0, 2.0]])
    assert gradgradcheck(lambda a, b: a ** b + (a * b).sigmoid(), 0.7, 1.3)
    with pytest.raises(GradcheckError, match=r"argument 0 \(w\) at its number \(0,\): autograd gives 2.0, finite differences 3.0000"):
        gradcheck(lambda w: (w * Tensor(w.data)).sum() + w[0], [1.0, 2.0])


def test_gradgradcheck_catches_a_rule_right_only_to_first_order(monkeypatch):
    from micrograd.engine import _rules, data
    monkeypatch.setitem(_rules, 'sigmoid', lambda g, out, x: (g * out * (1 - data(out)),))  # the curvature is lost
    assert gradcheck(lambda w: w.sigmoid().sum(), [0.4, -0.3])
    with pytest.raises(GradcheckError, match=r"the derivative of df/dw with respect to argument 0 \(w\) at its number"):
        gradgradcheck(lambda w: w.sigmoid().sum(), [0.4, -0.3])


# ---------------------------------------------------------------- func against torch.func

def test_func_grad_of_functions_of_numbers():
    f = lambda x, y: (x * y).tanh() * y.exp() + x ** 3 / (y * y + 1)
    tf = lambda x, y: torch.tanh(x * y) * torch.exp(y) + x ** 3 / (y * y + 1)
    rng = random.Random(3)
    for _ in range(20):
        x0, y0 = rng.uniform(-2, 2), rng.uniform(-2, 2)
        tx, ty = (torch.tensor(v, dtype=torch.float64) for v in (x0, y0))
        for argnums in (0, 1, (0, 1)):
            ours = func.grad(f, argnums)(x0, y0)
            theirs = torch.func.grad(tf, argnums)(tx, ty)
            np.testing.assert_allclose(np.ravel(ours), np.ravel([t.item() for t in theirs] if isinstance(theirs, tuple) else theirs.item()), rtol=RTOL)
        np.testing.assert_allclose(func.grad(func.grad(func.grad(f)))(x0, y0),
                                   torch.func.grad(torch.func.grad(torch.func.grad(tf)))(tx, ty).item(), rtol=RTOL)
        value, slope = func.value_and_grad(f, 1)(x0, y0)
        tslope, tvalue = torch.func.grad_and_value(tf, 1)(tx, ty)
        np.testing.assert_allclose([value, slope], [tvalue.item(), tslope.item()], rtol=RTOL)


def test_func_of_functions_of_arrays():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 4, 6)
    loss = lambda w, b: cross_entropy((Tensor(X) @ w + b).tanh() * 3, y)
    tloss = lambda w, b: torch.nn.functional.cross_entropy(torch.tanh(torch.tensor(X) @ w + b) * 3, torch.tensor(y))
    w0, b0 = rng.normal(size=(3, 4)), rng.normal(size=4)
    (v, (gw, gb)) = func.value_and_grad(loss, (0, 1))(w0, b0)
    (tgw, tgb), tv = torch.func.grad_and_value(tloss, (0, 1))(torch.tensor(w0), torch.tensor(b0))
    np.testing.assert_allclose(v, tv.item(), rtol=RTOL)
    np.testing.assert_allclose(gw, tgw.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gb, tgb.numpy(), rtol=RTOL, atol=ATOL)
    # a Hessian of a small vector input, as an (n, n) array
    f = lambda v: (v.softmax() * v).sum() + (v ** 4).sum() * 0.1 + v[0] * v[2]
    tf = lambda v: (v.softmax(-1) * v).sum() + (v ** 4).sum() * 0.1 + v[0] * v[2]
    for _ in range(5):
        p = rng.normal(size=5)
        H = func.hessian(f)(p)
        assert H.shape == (5, 5)
        np.testing.assert_allclose(H, torch.func.hessian(tf)(torch.tensor(p)).numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-14)
    # and of a matrix input: shape (2, 3, 2, 3)
    m = rng.normal(size=(2, 3))
    H = func.hessian(lambda m: (m @ m.T).tanh().sum())(m)
    np.testing.assert_allclose(H, torch.func.hessian(lambda m: torch.tanh(m @ m.T).sum())(torch.tensor(m)).numpy(), rtol=RTOL, atol=ATOL)


def test_hessian_of_numbers_against_torch():
    h = lambda x, y, z: x * y * z + (x * z).exp() / y + z.tanh()
    th = lambda v: v[0] * v[1] * v[2] + torch.exp(v[0] * v[2]) / v[1] + torch.tanh(v[2])
    H = func.hessian(h)(0.3, 1.5, -0.7)
    np.testing.assert_allclose(H, torch.func.hessian(th)(torch.tensor([0.3, 1.5, -0.7], dtype=torch.float64)).numpy(), rtol=RTOL)
