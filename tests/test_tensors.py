"""Random graphs of Tensors, built twice (micrograd and PyTorch float64): every value and gradient must agree to 1e-9.

Each graph starts from 1 to 3 leaf tensors of random shapes that broadcast against each other, and applies up to 12
random ops: + - * / (broadcasting, and with plain numbers on either side), exp, log, tanh, relu, sigmoid, ** with a
number exponent, @, sum (over everything or one axis), reshape and .T. It ends in a sum, and `backward()` runs twice
(leaves accumulate, as in PyTorch). Only the public surface is used (`Tensor(data, requires_grad=True)`, the ops,
`.backward()`, `.grad`), so the suite holds for any Tensor that keeps that surface.

The last tests need a Tensor built on the engine's one mechanism (`backpropagate`, the one rule table, per-thread
grad mode); they are skipped for a Tensor with a backward pass of its own: derivatives 2 and 3 of the same random
graphs through `create_graph`, grad mode under two threads, and a failed backward that changes no grad.
"""
import math, random, threading
import numpy as np
import pytest
import torch
import micrograd.engine as engine
from micrograd.engine import backpropagate, set_grad_enabled
from micrograd.tensor import Tensor

on_the_engine = pytest.mark.skipif(Tensor not in engine._node_kinds,
                                   reason="this Tensor has a backward pass of its own, not the engine's backpropagate")

TOL = 1e-9


def leaf(rng, shape):
    data = rng.uniform(-2, 2, size=shape)
    return Tensor(data, requires_grad=True), torch.tensor(data, dtype=torch.float64, requires_grad=True)


def random_graph(rng):
    "(leaves as (Tensor, tensor) pairs, root pair, steps as text)"
    n = int(rng.integers(2, 4))
    base = tuple(int(s) for s in rng.integers(1, 4, size=2))
    shapes = [base, (base[1],), (1, base[1]), (base[0], 1)]
    leaves = [leaf(rng, shapes[int(rng.integers(len(shapes)))]) for _ in range(n)]
    pool, steps = list(leaves), []
    for _ in range(int(rng.integers(1, 13))):
        (a, ta) = pool[int(rng.integers(len(pool)))]
        (b, tb) = pool[int(rng.integers(len(pool)))]
        name = ['+', '-', '*', '/', '2.0 - x', '0.5 * x', 'exp', 'log', 'tanh', 'relu', 'sigmoid', '** 2', '** 3',
                '@', 'sum', 'sum axis', 'reshape', 'T'][int(rng.integers(18))]
        try: np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            if name in '+-*/': continue
        if name == '+': v, t = a + b, ta + tb
        elif name == '-': v, t = a - b, ta - tb
        elif name == '*': v, t = a * b, ta * tb
        elif name == '/':
            if np.abs(b.data).min() < 0.1: continue
            v, t = a / b, ta / tb
        elif name == '2.0 - x': v, t = 2.0 - a, 2.0 - ta
        elif name == '0.5 * x': v, t = 0.5 * a, 0.5 * ta
        elif name == 'exp':
            if a.data.max() > 5: continue
            v, t = a.exp(), ta.exp()
        elif name == 'log':
            if a.data.min() < 0.1: continue
            v, t = a.log(), ta.log()
        elif name == 'tanh': v, t = a.tanh(), ta.tanh()
        elif name == 'relu':
            if np.abs(a.data).min() < 1e-6: continue
            v, t = a.relu(), ta.relu()
        elif name == 'sigmoid': v, t = a.sigmoid(), ta.sigmoid()
        elif name == '** 2': v, t = a ** 2, ta ** 2
        elif name == '** 3': v, t = a ** 3, ta ** 3
        elif name == '@':
            if a.data.ndim != 2 or b.data.ndim != 2: continue
            if a.shape[1] != b.shape[0]: b, tb = b.T, tb.T
            if a.shape[1] != b.shape[0]: continue
            v, t = a @ b, ta @ tb
        elif name == 'sum': v, t = a.sum(), ta.sum()
        elif name == 'sum axis':
            if a.data.ndim == 0: continue
            axis = int(rng.integers(a.data.ndim))
            v, t = a.sum(axis=axis), ta.sum(dim=axis)
        elif name == 'reshape': v, t = a.reshape(-1), ta.reshape(-1)
        elif name == 'T':
            if a.data.ndim != 2: continue
            v, t = a.T, ta.T
        if not np.all(np.isfinite(v.data)) or np.abs(v.data).max(initial=0) > 1e6: continue
        pool.append((v, t)); steps.append(f"{name} of shapes {a.shape} and {b.shape}")
    root = pool[-1][0].sum() + sum(((v * 0.5).sum() for v, _ in pool[n:-1]), Tensor(0.0))
    t_root = pool[-1][1].sum() + sum(((t * 0.5).sum() for _, t in pool[n:-1]), torch.tensor(0.0, dtype=torch.float64))
    return leaves, (root, t_root), steps


def close(ours, theirs):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return ours.shape == theirs.shape and bool(np.all(np.abs(ours - theirs) <= TOL * np.maximum(1.0, np.abs(theirs))))


@pytest.mark.parametrize('chunk', range(10))
def test_random_tensor_graphs_match_torch(chunk, fuzz_counts):
    rng, failures, compared = np.random.default_rng(chunk), [], 0
    for _ in range(100):
        leaves, (root, t_root), steps = random_graph(rng)
        bad = []
        if not close(root.data, t_root.detach().numpy()): bad.append(f"value {root.data} torch {t_root.item()}")
        root.backward(); t_root.backward()
        for i, (v, t) in enumerate(leaves):
            compared += v.data.size
            theirs = np.zeros(v.shape) if t.grad is None else t.grad.numpy()
            ours = np.zeros(v.shape) if v.grad is None else v.grad
            if not close(ours, theirs): bad.append(f"grad of leaf {i}: {ours} torch {theirs}")
        first = [None if v.grad is None else np.array(v.grad) for v, _ in leaves]
        root.backward()  # again: leaves accumulate
        for i, ((v, _), g) in enumerate(zip(leaves, first)):
            if g is not None and not close(v.grad, 2 * g): bad.append(f"grad of leaf {i} after a second backward")
        if bad: failures.append(["graph: " + "; ".join(steps)] + bad)
    counts = fuzz_counts['random Tensor graphs vs torch float64']
    counts['graphs'] += 100
    counts['gradient entries compared'] += compared
    counts['graphs with a silent wrong result'] += len(failures)
    assert not failures, f"{len(failures)} graphs disagree; first:\n" + "\n".join(failures[0][:6])


def grads(out, inputs, create_graph=True):
    "d(out)/d(input) for each input through the engine's backpropagate; zeros where no gradient reaches an input"
    seed = Tensor(np.ones(out.shape)) if create_graph else np.ones(out.shape)
    found = backpropagate(out, seed, create_graph=create_graph, inputs=inputs)
    return [Tensor(np.zeros(x.shape)) if g is None else g for x, g in zip(inputs, found)]


@on_the_engine
@pytest.mark.parametrize('chunk', range(5))
def test_higher_derivatives_of_random_tensor_graphs_match_torch(chunk, fuzz_counts):
    rng, failures, compared = np.random.default_rng(100 + chunk), [], 0
    for _ in range(100):
        leaves, (out, t_out), steps = random_graph(rng)
        xs, ts = [v for v, _ in leaves], [t for _, t in leaves]
        for order in (1, 2, 3):
            ours = grads(out, xs)
            theirs = [torch.zeros_like(t) if g is None else g for t, g in
                      zip(ts, torch.autograd.grad(t_out, ts, create_graph=True, allow_unused=True))]
            scale = max([1.0] + [float(g.detach().abs().max()) for g in theirs])
            for i, (g, tg) in enumerate(zip(ours, theirs)):
                compared += g.data.size
                if not np.all(np.abs(g.data - tg.detach().numpy()) <= TOL * scale):
                    failures.append(["graph: " + "; ".join(steps), f"derivative {order} by leaf {i}: {g.data} torch {tg}"])
            weights = [rng.uniform(-1, 1, size=x.shape) for x in xs]  # the next order: a random mix of these derivatives
            out = sum(((g * w).sum() for g, w in zip(ours, weights)), Tensor(0.0))
            t_out = sum((tg * torch.tensor(w)).sum() for tg, w in zip(theirs, weights))
            if not t_out.requires_grad: break
    counts = fuzz_counts['random Tensor graphs, derivatives 1 to 3 (create_graph) vs torch']
    counts['graphs'] += 100
    counts['derivative entries compared'] += compared
    counts['graphs with a silent wrong result'] += len(failures)
    assert not failures, f"{len(failures)} derivatives disagree; first:\n" + "\n".join(failures[0])


@on_the_engine
def test_tensor_grad_mode_is_per_thread():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    meet, result = threading.Barrier(2), {}
    def evaluate():
        previous = set_grad_enabled(False)
        try:
            meet.wait(); result['A'] = x * 2.0; meet.wait()
        finally: set_grad_enabled(previous)
    def train():
        meet.wait(); result['B'] = (x * 2.0).sum(); meet.wait()
    threads = [threading.Thread(target=evaluate), threading.Thread(target=train)]
    for t in threads: t.start()
    for t in threads: t.join()
    result['B'].backward()
    assert result['A']._prev == () and not result['A'].requires_grad
    assert np.array_equal(x.grad, [2.0, 2.0])


@on_the_engine
@pytest.mark.parametrize('create_graph', [False, True])
def test_a_failed_tensor_backward_changes_no_grad(create_graph):
    def fails(g, out, x): raise KeyboardInterrupt
    broken = engine.op('fuzz: tensor rule that fails', lambda x: x, fails, array=lambda x: np.array(x))
    try:
        a, b = Tensor(np.array([0.5, -1.0]), requires_grad=True), Tensor(np.array([[2.0], [3.0]]), requires_grad=True)
        out = ((a * b).tanh() + broken(a * b)).sum() + (b ** 2).sum()
        ((a * b).sum()).backward()  # earlier grads
        before = [np.array(a.grad), np.array(b.grad)]
        with pytest.raises(KeyboardInterrupt):
            if create_graph: backpropagate(out, Tensor(np.ones(())), create_graph=True)
            else: out.backward()
        assert np.array_equal(a.grad, before[0]) and np.array_equal(b.grad, before[1])
    finally: engine._rules.pop('fuzz: tensor rule that fails', None)
