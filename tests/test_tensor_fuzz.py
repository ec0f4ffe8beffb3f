"""Fuzzing Tensor against PyTorch float64, and grad mode under threads.

- Every elementwise op at the edges of float64 (0, -0.0, denormals, +-1e308, +-inf, nan, ordinary numbers), all
  pairs for the binary ops: values and gradients, and second derivatives through create_graph.
- Random expressions over every op (elementwise, reductions, shapes, @ on stacks, indexing, softmax, masking) on
  random broadcasting shapes: values and derivatives of order 1, 2 and 3.
- Two threads, one switching grad mode off and on, one differentiating: no gradient is lost.

Each suite adds its counts to `fuzz_counts`; the end of the run prints them.
"""
import math, random, threading
import numpy as np
import pytest
import torch
from micrograd.tensor import Tensor, layer_norm
from micrograd.autograd import grad, no_grad, enable_grad
from micrograd import func

inf, nan = math.inf, math.nan
EXTREMES = [0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, 1e308, -1e308, inf, -inf, nan]
ORDINARY = [1.0, -1.0, 0.5, -1.5, 2.0, 3.0]
VALUES = np.array(EXTREMES + ORDINARY)

UNARY = {'neg': lambda t: -t, 'exp': lambda t: t.exp(), 'log': lambda t: t.log(), 'tanh': lambda t: t.tanh(),
         'relu': lambda t: t.relu(), 'sigmoid': lambda t: t.sigmoid(),
         **{f'** {k}': (lambda k: lambda t: t ** k)(k) for k in (2, 3, -1, -2, 0.5, -0.5, 1.5, 0, 0.25)}}
TORCH_UNARY = {'relu': torch.relu, 'sigmoid': torch.sigmoid}
BINARY = {'+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b, '/': lambda a, b: a / b,
          '** tensor': lambda a, b: a ** b}
# Where torch special-cases a formula that ours computes plainly (documented on the tensor page): the gradients of
# a ** b with a tensor exponent b, where the base is 0 or below, or tiny (b = 0: 0 * inf), or a number is infinite
# (torch: 0 where we give nan). With a number exponent, and for Values, we agree with torch there too.
def known_difference(op, a, b):
    with np.errstate(all='ignore'): tiny = np.isinf(np.power(a, b - 1.0))
    return op == '** tensor' and (a <= 0 or tiny or not math.isfinite(a) or not math.isfinite(b))


def same(ours, theirs, atol=0.0):
    "Elementwise: equal (0.0 == -0.0), both nan, or within 1e-9 of each other relative to their size (or `atol`)"
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    with np.errstate(all='ignore'):
        near = np.abs(ours - theirs) <= np.maximum(1e-9 * np.maximum(np.abs(ours), np.abs(theirs)), atol)
    return (ours == theirs) | (np.isnan(ours) & np.isnan(theirs)) | (np.isfinite(ours) & np.isfinite(theirs) & near)


def t64(x, grad=True): return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


def plus_zero(x): return np.where(x == 0, 0.0, x)  # -0.0 as +0.0


def unary_case(name, x):
    "Values, first and second derivatives of op `name` at the numbers `x`, ours and torch's, elementwise"
    f, tf = UNARY[name], TORCH_UNARY.get(name, UNARY[name])
    t, tt = Tensor(x, requires_grad=True), t64(x)
    out, tout = f(t), tf(tt)
    d1, = grad(out.sum(), t, create_graph=True)
    d2, = grad(d1.sum(), t)
    td1, = torch.autograd.grad(tout.sum(), tt, create_graph=True)
    td2, = torch.autograd.grad(td1.sum(), tt, allow_unused=True, materialize_grads=True) if td1.requires_grad else (torch.zeros_like(tt),)
    return [(out.data, tout), (d1.data, td1), (d2, td2)]


@pytest.mark.parametrize('name', list(UNARY))
def test_unary_ops_at_the_edges_to_second_order(name, fuzz_counts):
    with np.errstate(all='ignore'):
        results = unary_case(name, VALUES)
        at_plus_zero = unary_case(name, plus_zero(VALUES))  # torch: d sqrt(x)/dx at -0.0 is -inf (rsqrt); 0.0 == -0.0 is all we promise
    bad = []
    for level, ((o, t), (_, t_plus)) in enumerate(zip(results, at_plus_zero)):
        ok = same(o, t.detach().numpy()) | ((VALUES == 0) & same(o, t_plus.detach().numpy()))
        bad += [f"{name}, {['value', 'first derivative', 'second derivative'][level]} at {x!r}: ours {a!r}, torch {b!r}"
                for x, a, b, good in zip(VALUES, np.asarray(o), t.detach().numpy(), ok) if not good]
    counts = fuzz_counts['tensor edges vs torch float64']
    counts['numbers compared'] += 3 * len(VALUES)
    counts['silent wrong results'] += len(bad)
    assert not bad, "\n".join(bad[:12])


@pytest.mark.parametrize('op', list(BINARY))
def test_binary_ops_at_the_edges(op, fuzz_counts):
    a, b = np.repeat(VALUES, len(VALUES)), np.tile(VALUES, len(VALUES))  # every pair, elementwise
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    with np.errstate(all='ignore'): out = BINARY[op](ta, tb); out.backward(np.ones(len(a)))
    tta, ttb = t64(a), t64(b)
    tout = BINARY[op](tta, ttb); tout.backward(torch.ones(len(a), dtype=torch.float64))
    bad = []
    for what, o, t in [('value', out.data, tout), ('grad of a', ta.grad, tta.grad), ('grad of b', tb.grad, ttb.grad)]:
        ok = same(o, t.detach().numpy())
        bad += [f"{op} {what} at {x!r}, {y!r}: ours {p!r}, torch {q!r}" for x, y, p, q, good in zip(a, b, o, t.detach().numpy(), ok)
                if not good and not known_difference(op, x, y)]
    counts = fuzz_counts['tensor edges vs torch float64']
    counts['numbers compared'] += 3 * len(a)
    counts['silent wrong results'] += len(bad)
    assert not bad, f"{len(bad)} disagreements:\n" + "\n".join(bad[:12])


@pytest.mark.parametrize('op', ['sum', 'mean', 'max', 'softmax', 'log_softmax', 'masked_fill'])
def test_reductions_and_softmax_at_the_edges(op, fuzz_counts):
    rng = np.random.default_rng(1)
    rows = np.array([rng.choice(VALUES, 5) for _ in range(300)])
    rows = rows[~np.isnan(rows).any(axis=1)] if op == 'max' else rows  # torch.amax gives every number of a row with nan nan gradients; we give the nan all of it
    mask = rng.integers(0, 2, rows.shape).astype(bool)
    ours = {'sum': lambda t, m: t.sum(axis=1), 'mean': lambda t, m: t.mean(axis=1), 'max': lambda t, m: t.max(axis=1),
            'softmax': lambda t, m: t.softmax(axis=1), 'log_softmax': lambda t, m: t.log_softmax(axis=1),
            'masked_fill': lambda t, m: t.masked_fill(m, -inf).softmax(1)}[op]
    theirs = {'sum': lambda t, m: t.sum(dim=1), 'mean': lambda t, m: t.mean(dim=1), 'max': lambda t, m: t.amax(dim=1),
              'softmax': lambda t, m: t.softmax(1), 'log_softmax': lambda t, m: t.log_softmax(1),
              'masked_fill': lambda t, m: t.masked_fill(m, -inf).softmax(1)}[op]
    bad, skipped = [], 0
    for i, row in enumerate(rows):  # row by row: a nan in one row must not hide a wrong number in another
        t, tt = Tensor(row[None], requires_grad=True), t64(row[None])
        with np.errstate(all='ignore'):
            out = ours(t, mask[i]); g = np.linspace(0.5, 1.5, out.data.size).reshape(out.shape); out.backward(g)
        tout = theirs(tt, torch.from_numpy(mask[i])); tout.backward(torch.tensor(g))
        # a sum is exact only up to the order of its additions (numpy adds pairwise, torch otherwise): within n ulps of
        # the sum of the sizes of its numbers; and where that overflows, the order decides between inf, -inf and nan
        value_ok = same(out.data, tout.detach().numpy()).all()
        if op in ('sum', 'mean'):
            with np.errstate(all='ignore'): size = np.abs(row[np.isfinite(row)]).sum()
            value_ok = value_ok or np.isinf(size) or same(out.data, tout.detach().numpy(), 1e-15 * len(row) * size).all()
            skipped += bool(np.isinf(size))
        if not (value_ok and same(t.grad, tt.grad.numpy(), 1e-15).all()):
            bad.append(f"{op} of {row.tolist()}: ours {out.data.tolist()} grad {t.grad.tolist()}, torch {tout.tolist()} grad {tt.grad.tolist()}")
    counts = fuzz_counts['tensor edges vs torch float64']
    counts['numbers compared'] += 2 * rows.size
    counts['sums whose order decides (values not compared)'] += skipped
    counts['silent wrong results'] += len(bad)
    assert not bad, f"{len(bad)} of {len(rows)} rows disagree:\n" + "\n".join(bad[:8])


# ---------------------------------------------------------------- random expressions on random shapes, orders 1 to 3

def random_shapes(rng):
    "Two or three shapes that broadcast together"
    ndim = int(rng.integers(0, 5))
    full = [int(rng.integers(1, 6)) for _ in range(ndim)]
    def variant():
        keep = int(rng.integers(0, ndim + 1))
        return tuple(1 if rng.random() < 0.3 else n for n in full[ndim - keep:])
    return [tuple(full)] + [variant() for _ in range(int(rng.integers(1, 3)))]


STEPS = ['+', '-', '*', '/', 'pow', 'exp', 'tanh', 'relu', 'sigmoid', 'log', 'sum', 'mean', 'max', 'T', 'reshape',
         'softmax', 'log_softmax', 'index', 'masked', 'matmul', 'rsub', 'rdiv', 'neg', 'layer_norm']


def random_expression(seed):
    "A function f(*inputs, lib) of a dozen random steps, the same for Tensors (lib=np) and torch tensors (lib=torch)"
    rng = np.random.default_rng(seed)
    steps = [(str(rng.choice(STEPS)), int(rng.integers(1000)), int(rng.integers(1000))) for _ in range(12)]
    def f(*inputs, lib=np):
        pool = list(inputs)
        for step, i, j in steps:
            x, y = pool[i % len(pool)], pool[j % len(pool)]
            try: np.broadcast_shapes(tuple(x.shape), tuple(y.shape)); fits = True
            except ValueError: fits = False
            if step in '+-*/' and not fits: y = x
            nd = len(x.shape)
            if step == '+': r = x + y
            elif step == '-': r = x - y
            elif step == '*': r = x * y
            elif step == '/': r = x / (y * y + 1.0)
            elif step == 'pow': r = (x * x + 0.5) ** 1.5
            elif step == 'exp': r = x.tanh().exp()
            elif step == 'tanh': r = x.tanh()
            elif step == 'relu': r = x.relu() if lib is np else torch.relu(x)
            elif step == 'sigmoid': r = x.sigmoid() if lib is np else torch.sigmoid(x)
            elif step == 'log': r = (x * x + 1.0).log()
            elif step == 'neg': r = -x
            elif step == 'rsub': r = 1.5 - x
            elif step == 'rdiv': r = 1.0 / (x * x + 1.0)
            elif nd == 0: r = x * 1.0
            elif step == 'sum': r = x.sum(axis=nd - 1) if lib is np else x.sum(dim=nd - 1)
            elif step == 'mean': r = x.mean(axis=0, keepdims=True) if lib is np else x.mean(dim=0, keepdim=True)
            elif step == 'max': r = x.max(axis=-1) if lib is np else x.amax(dim=-1)
            elif step == 'T': r = x.T if lib is np else x.permute(*reversed(range(nd)))
            elif step == 'reshape': r = x.reshape(-1)
            elif step == 'softmax': r = x.softmax(-1)
            elif step == 'log_softmax': r = x.log_softmax(-1)
            elif step == 'index': r = x[[0, -1, 0]] * 1.0 if lib is np else x[torch.tensor([0, -1, 0])] * 1.0
            elif step == 'masked':
                mask = (np.arange(x.shape[-1]) % 2 == 0)
                r = x.masked_fill(mask if lib is np else torch.from_numpy(mask), -2.0)
            elif step == 'layer_norm':
                r = layer_norm(x) if lib is np else (x - x.mean(-1, keepdim=True)) * (((x - x.mean(-1, keepdim=True)) ** 2).mean(-1, keepdim=True) + 1e-5) ** -0.5
            elif step == 'matmul':
                if nd < 2: r = x * 1.0
                else:
                    w = np.linspace(-1, 1, x.shape[-1] * 2).reshape(x.shape[-1], 2)
                    r = x @ (w if lib is np else torch.tensor(w))
            pool.append(r)
        return sum(((p * p).sum() for p in pool[len(inputs):]), 0.0 * inputs[0].sum())
    return f


def derivatives(out, xs, grad_fn, weigh, order):
    "The derivatives of `out` with respect to `xs` up to `order`, each of the previous ones weighed to one number"
    found, layer = [], out
    for level in range(order):
        gs = grad_fn(layer, xs, level < order - 1)
        found += gs
        layer = weigh(gs)
    return found


def torch_grads(out, xs, create_graph):
    if not out.requires_grad: return [torch.zeros_like(x) for x in xs]
    return list(torch.autograd.grad(out, xs, create_graph=create_graph, allow_unused=True, materialize_grads=True))


def test_random_expressions_on_random_shapes_to_third_order(fuzz_counts):
    compared, graphs = 0, 0
    for seed in range(250):
        rng = np.random.default_rng(seed)
        arrays = [rng.normal(size=s) for s in random_shapes(rng)]
        f = random_expression(seed)
        weights = [rng.normal(size=a.shape) for a in arrays]
        ours = [Tensor(a, requires_grad=True) for a in arrays]
        theirs = [t64(a) for a in arrays]
        out, tout = f(*ours), f(*theirs, lib=torch)
        assert same(out.data, tout.detach().numpy()).all(), (seed, out.data, tout)
        mine = derivatives(out, ours, lambda y, xs, deeper: list(grad(y, xs, create_graph=deeper)),
                           lambda gs: sum((g * w).sum() for g, w in zip(gs, weights)), 3)
        torch_ds = derivatives(tout, theirs, torch_grads, lambda gs: sum((g * torch.tensor(w)).sum() for g, w in zip(gs, weights)), 3)
        for k, (d, td) in enumerate(zip(mine, torch_ds)):
            d = getattr(d, 'data', d)
            np.testing.assert_allclose(d, td.detach().numpy(), rtol=1e-9, atol=1e-10, err_msg=f"seed {seed}, derivative {k}")
            compared += np.size(d)
        graphs += 1
    counts = fuzz_counts['tensor random expressions vs torch, orders 1-3']
    counts['expressions'] += graphs
    counts['numbers compared'] += compared
    counts['silent wrong results'] += 0  # any would have failed above


# ---------------------------------------------------------------- grad mode under two threads

def test_grad_mode_is_per_thread_under_two_threads(fuzz_counts):
    stop, errors, checks = threading.Event(), [], [0, 0]
    def switcher():
        "Switch grad mode off and on as fast as possible, checking that it is off inside"
        x = Tensor([1.0], requires_grad=True)
        while not stop.is_set():
            with no_grad():
                if (x * x).requires_grad: errors.append("a graph inside no_grad")
                with enable_grad():
                    if not (x * x).requires_grad: errors.append("no graph inside enable_grad")
            checks[0] += 1
    worker = threading.Thread(target=switcher); worker.start()
    try:
        rng = random.Random(0)
        for _ in range(2000):
            v = rng.uniform(-2, 2)
            t = Tensor([v], requires_grad=True)
            g, = grad((t * t * t).sum(), t)
            if abs(g[0] - 3 * v * v) > 1e-12: errors.append(f"d(x**3)/dx at {v}: {g[0]}, not {3 * v * v}")
            if func.grad(lambda x: x * x)(v) != 2 * v: errors.append("func.grad lost its graph")
            checks[1] += 1
    finally:
        stop.set(); worker.join()
    counts = fuzz_counts['grad mode under two threads']
    counts['no_grad switches'] += checks[0]
    counts['gradients taken meanwhile'] += checks[1]
    counts['wrong'] += len(errors)
    assert not errors, errors[:5]
    assert checks[0] > 0
