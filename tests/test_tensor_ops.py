"""Every Tensor op against PyTorch float64: values, gradients, and second and third derivatives through
create_graph, with broadcasting, on stacks of matrices, and at the edges of float64 (large logits, -inf from
causal masks, empty tensors). The ops a transformer needs come first.
"""
import math
import numpy as np
import pytest
import torch
from micrograd.tensor import Tensor, layer_norm, rms_norm, cross_entropy
from micrograd.autograd import grad

inf, nan = math.inf, math.nan
RTOL = 1e-9


def torch_grads(out, xs, create_graph):
    "torch.autograd.grad, with zeros where `out` or a derivative does not depend on `xs`"
    if not out.requires_grad: return [torch.zeros_like(x) for x in xs]
    return torch.autograd.grad(out, xs, create_graph=create_graph, allow_unused=True, materialize_grads=True)


def close(ours, theirs, rtol=RTOL, atol=1e-12):
    "Equal within rtol (relative) or atol, nan where torch has nan, inf where torch has inf"
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)
    return True


def derivatives_agree(f, arrays, torch_f=None, order=3, seed=0, positive=False):
    """f on Tensors and on torch tensors of `arrays`: the values, and the derivatives of order 1 to `order`, each
    taken of the previous ones weighed by random weights (the same for both), must agree. Returns how many numbers
    were compared."""
    rng = np.random.default_rng(seed)
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, tout = f(*ours), (torch_f or f)(*theirs)
    close(out.data, tout)
    compared = out.data.size
    for level in range(order):
        w = rng.normal(size=out.shape)
        deeper = level < order - 1
        gs = grad((out * w).sum(), ours, create_graph=deeper)
        tgs = torch_grads((tout * torch.tensor(w)).sum(), theirs, create_graph=deeper)
        for g, tg in zip(gs, tgs): close(getattr(g, 'data', g), tg); compared += tg.numel()
        vs = [rng.normal(size=x.shape) for x in arrays]
        out = sum((g * v).sum() for g, v in zip(gs, vs))
        tout = sum((tg * torch.tensor(v)).sum() for tg, v in zip(tgs, vs))
    return compared


rng = np.random.default_rng(0)


def normal(*shape): return rng.normal(size=shape)


# ---------------------------------------------------------------- the ops of a transformer

def test_embedding_lookup_scatter_adds():
    wte = normal(10, 4)
    tokens = np.array([[1, 3, 1, 9], [0, 1, 1, 2]])
    derivatives_agree(lambda w: w[tokens] * w[tokens], [wte],
                      lambda w: w[torch.from_numpy(tokens)] * w[torch.from_numpy(tokens)])
    w = Tensor(wte, requires_grad=True)
    w[tokens].sum().backward()
    counts = np.bincount(tokens.ravel(), minlength=10)
    assert np.array_equal(w.grad, np.repeat(counts[:, None], 4, axis=1).astype(float))


@pytest.mark.parametrize('shapes', [[(2, 5, 3), (3, 4)], [(2, 3, 4, 5), (2, 3, 5, 4)], [(5, 3), (2, 3, 4)],
                                    [(2, 1, 4, 3), (1, 3, 3, 2)], [(4, 3), (3, 2)], [(1, 3), (3, 1)]])
def test_matmul_on_stacks(shapes):
    derivatives_agree(lambda a, b: a @ b, [normal(*s) for s in shapes])
    derivatives_agree(lambda a, b: (a @ b).tanh(), [normal(*s) for s in shapes])


def test_attention_scores_of_heads():
    B, H, T, d = 2, 3, 4, 5
    q, k = normal(B, H, T, d), normal(B, H, T, d)
    derivatives_agree(lambda q, k: (q @ k.mT / d ** 0.5).softmax(-1), [q, k],
                      lambda q, k: (q @ k.mT / d ** 0.5).softmax(-1))
    derivatives_agree(lambda q, k: (q @ k.swapaxes(-1, -2)), [q, k], lambda q, k: q @ k.transpose(-1, -2))


@pytest.mark.parametrize('axis', [-1, 0, 1])
def test_softmax_and_log_softmax(axis):
    x = normal(3, 4, 5)
    derivatives_agree(lambda x: x.softmax(axis) * x, [x], lambda x: x.softmax(axis) * x)
    derivatives_agree(lambda x: x.log_softmax(axis) * x, [x], lambda x: x.log_softmax(axis) * x)


def test_softmax_at_large_logits():
    x = np.array([[1e4, -1e4, 0.0, 3.0], [700.0, 710.0, -800.0, 0.0], [-1e300, 1e300, 0.0, 1.0]])
    for order in (1, 2, 3):
        derivatives_agree(lambda x: x.softmax(-1) * np.arange(4.0), [x], lambda x: x.softmax(-1) * torch.arange(4.0), order=order)
        derivatives_agree(lambda x: x.log_softmax(-1) * np.arange(4.0), [x], lambda x: x.log_softmax(-1) * torch.arange(4.0), order=order)
    assert np.isfinite(Tensor(x).softmax().data).all() and np.isfinite(Tensor(x).log_softmax().data).all()


def test_causal_mask_with_minus_inf():
    T = 5
    causal = np.triu(np.ones((T, T), dtype=bool), k=1)
    scores = normal(2, 3, T, T)
    f = lambda s, mask: s.masked_fill(mask, -inf).softmax(-1) * (s * s)
    derivatives_agree(lambda s: f(s, causal), [scores], lambda s: f(s, torch.from_numpy(causal)))
    g = lambda s, mask: s.masked_fill(mask, -inf).log_softmax(-1).masked_fill(mask, 0.0) * s
    derivatives_agree(lambda s: g(s, causal), [scores], lambda s: g(s, torch.from_numpy(causal)))
    weights = Tensor(scores).masked_fill(causal, -inf).softmax(-1).data
    assert (weights[..., causal] == 0).all()  # exactly 0 where the mask is
    # a row masked entirely: no weights at all (nan), as in torch, and no gradient from it once it is masked again
    full = np.zeros((2, T), dtype=bool); full[1] = True
    x = normal(2, T)
    h = lambda s, m: s.masked_fill(m, -inf).softmax(-1).masked_fill(m, 0.0) * s
    derivatives_agree(lambda s: h(s, full), [x], lambda s: h(s, torch.from_numpy(full)), order=2)


@pytest.mark.parametrize('value', [-inf, 0.0, 1e300, -3.5])
def test_masked_fill_broadcasting(value):
    mask = rng.integers(0, 2, size=(4, 1)).astype(bool)
    then = (lambda t: t.softmax(-1)) if value == -inf else (lambda t: t)
    derivatives_agree(lambda x: then(x.masked_fill(mask, value)) * x, [normal(2, 4, 3)],
                      lambda x: then(x.masked_fill(torch.from_numpy(mask), value)) * x)


@pytest.mark.parametrize('axis, keepdims', [(None, False), (0, False), (-1, True), ((0, 2), False), ([1], True)])
def test_max_shares_ties(axis, keepdims):
    x = np.round(normal(3, 4, 2), 0)  # rounded: ties
    def torch_max(t):
        if axis is None: return t.max()
        return t.amax(dim=axis if isinstance(axis, int) else tuple(axis), keepdim=keepdims)
    derivatives_agree(lambda t: t.max(axis=axis, keepdims=keepdims) * 2.0, [x], lambda t: torch_max(t) * 2.0)


def test_max_gives_the_gradient_to_nan():
    x = Tensor([1.0, nan, 3.0], requires_grad=True)
    x.max().backward()
    tx = torch.tensor([1.0, nan, 3.0], dtype=torch.float64, requires_grad=True); tx.max().backward()
    assert math.isnan(x.max().item()) and x.grad.tolist() == tx.grad.tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize('axes', [(), (0, 2, 1), (2, 0, 1), (1, 0, 2), (-1, 0, 1)])
def test_transpose_and_reshape(axes):
    x = normal(2, 3, 4)
    perm = tuple(a % 3 for a in axes) if axes else (2, 1, 0)
    derivatives_agree(lambda t: t.transpose(*axes).reshape(-1, 2) ** 2, [x], lambda t: t.permute(*perm).reshape(-1, 2) ** 2)
    derivatives_agree(lambda t: t.T * t.mT.swapaxes(0, 2), [normal(3, 3, 3)], lambda t: t.permute(2, 1, 0) * t.mT.transpose(0, 2))


def test_splitting_heads():
    B, T, C, H = 2, 4, 6, 3
    x = normal(B, T, C)
    derivatives_agree(lambda t: t.reshape(B, T, H, C // H).transpose(0, 2, 1, 3).tanh(), [x],
                      lambda t: t.reshape(B, T, H, C // H).transpose(1, 2).tanh())


def torch_layer_norm(x, w=None, b=None, eps=1e-5):
    "layer norm from torch's elementary ops: torch's own layer_norm gets the third derivative wrong (checked below)"
    c = x - x.mean(-1, keepdim=True)
    out = c * ((c * c).mean(-1, keepdim=True) + eps) ** -0.5
    if w is not None: out = out * w
    return out if b is None else out + b


def test_layer_norm_and_rms_norm():
    x, w, b = normal(2, 3, 8), normal(8), normal(8)
    native = lambda x, w, b: torch.nn.functional.layer_norm(x, (8,), w, b, eps=1e-5)
    derivatives_agree(lambda x, w, b: layer_norm(x, w, b), [x, w, b], native, order=2)
    derivatives_agree(lambda x, w, b: layer_norm(x, w, b), [x, w, b], torch_layer_norm, order=3)
    derivatives_agree(lambda x, w: rms_norm(x, w), [x, w], lambda x, w: torch.nn.functional.rms_norm(x, (8,), w, eps=1e-5))
    derivatives_agree(lambda x: layer_norm(x, eps=0.1), [x * 1e-3], lambda x: torch.nn.functional.layer_norm(x, (8,), eps=0.1), order=2)
    derivatives_agree(lambda x: layer_norm(x, eps=0.1), [x * 1e-3], lambda x: torch_layer_norm(x, eps=0.1), order=3)


def test_torch_layer_norm_third_derivative_is_wrong_and_ours_is_right():
    "Why the test above compares the third derivative with torch's elementary ops: finite differences agree with them"
    x, W, V, U = normal(2, 8), normal(2, 8), normal(2, 8), normal(2, 8)
    def second(f, x, create_graph=False):
        t = torch.tensor(x, requires_grad=True)
        g, = torch.autograd.grad((f(t) * torch.tensor(W)).sum(), t, create_graph=True)
        g2, = torch.autograd.grad((g * torch.tensor(V)).sum(), t, create_graph=create_graph)
        return t, g2
    def third(f, x):
        t, g2 = second(f, x, create_graph=True)
        return torch.autograd.grad((g2 * torch.tensor(U)).sum(), t)[0].numpy()
    h, fd = 1e-5, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy(); xp[i] += h; xm[i] -= h
        fd[i] = ((second(torch_layer_norm, xp)[1].numpy() * U).sum() - (second(torch_layer_norm, xm)[1].numpy() * U).sum()) / (2 * h)
    native = lambda t: torch.nn.functional.layer_norm(t, (8,), eps=1e-5)
    assert np.abs(third(torch_layer_norm, x) - fd).max() < 1e-7
    assert np.abs(third(native, x) - fd).max() > 1e-3  # torch's own: wrong at the third order
    t = Tensor(x, requires_grad=True)
    g, = grad((layer_norm(t) * W).sum(), t, create_graph=True)
    g2, = grad((g * V).sum(), t, create_graph=True)
    ours, = grad((g2 * U).sum(), t)
    assert np.abs(ours - fd).max() < 1e-7


def test_cross_entropy_of_a_batch_of_sequences():
    logits, targets = normal(6, 11) * 4, rng.integers(0, 11, 6)
    derivatives_agree(lambda z: cross_entropy(z, targets), [logits], lambda z: torch.nn.functional.cross_entropy(z, torch.from_numpy(targets)))
    derivatives_agree(lambda z: cross_entropy(z, targets), [logits * 1e3], lambda z: torch.nn.functional.cross_entropy(z, torch.from_numpy(targets)), order=2)


def test_a_transformer_block():
    B, T, C, H, V = 2, 4, 8, 2, 7
    d = C // H
    tokens = rng.integers(0, V, size=(B, T))
    causal = np.triu(np.ones((T, T), dtype=bool), k=1)
    weights = [normal(V, C) * 0.5, normal(T, C) * 0.5, normal(C, 3 * C) / C ** 0.5, normal(C, C) / C ** 0.5, normal(C, V) / C ** 0.5]
    def block(wte, wpe, w_qkv, w_out, w_head, torch_mode=False):
        idx, mask = (torch.from_numpy(tokens), torch.from_numpy(causal)) if torch_mode else (tokens, causal)
        x = wte[idx] + wpe
        n = torch.nn.functional.rms_norm(x, (C,), eps=1e-5) if torch_mode else rms_norm(x)
        qkv = n @ w_qkv
        q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, H, d) for i in range(3))
        q, k, v = ((t.transpose(1, 2) if torch_mode else t.transpose(0, 2, 1, 3)) for t in (q, k, v))
        att = (q @ k.mT / d ** 0.5).masked_fill(mask, -inf).softmax(-1)
        y = att @ v
        y = (y.transpose(1, 2) if torch_mode else y.transpose(0, 2, 1, 3)).reshape(B, T, C)
        x = x + y @ w_out
        logits = x @ w_head
        return (logits.log_softmax(-1) * logits.softmax(-1)).sum()
    n = derivatives_agree(block, weights, lambda *ws: block(*ws, torch_mode=True), order=2)
    assert n > 200


# ---------------------------------------------------------------- the ops every network uses, with broadcasting

BINARY = {'+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b, '/': lambda a, b: a / (b * b + 0.5),
          '**': lambda a, b: (a * a + 0.5) ** b, 'number ** t': lambda a, b: 2.0 ** (a * b)}
UNARY = {'neg': lambda a: -a, 'exp': lambda a: a.exp(), 'log': lambda a: (a * a + 0.1).log(), 'tanh': lambda a: a.tanh(),
         'relu': lambda a: a.relu() * a, 'sigmoid': lambda a: a.sigmoid(), '** 3': lambda a: a ** 3, '** -1.5': lambda a: (a * a + 1) ** -1.5,
         '** 0.5': lambda a: (a * a + 0.2) ** 0.5, 'sum': lambda a: a.sum(axis=0) * a, 'mean': lambda a: a.mean(axis=(0, 1), keepdims=True) * a,
         'index': lambda a: a[[1, 0, 1], ..., 1:] * a[[0, 0, 1], :, :3]}
TORCH = {'relu': lambda a: torch.relu(a) * a, 'sigmoid': torch.sigmoid, 'sum': lambda a: a.sum(dim=0) * a,
         'mean': lambda a: a.mean(dim=(0, 1), keepdim=True) * a}


@pytest.mark.parametrize('op', list(BINARY))
@pytest.mark.parametrize('shapes', [[(3, 4), (4,)], [(3, 1), (1, 4)], [(2, 3, 4), (3, 1)], [(), (2, 3)], [(1,), (4, 1)]])
def test_binary_ops_broadcast(op, shapes):
    derivatives_agree(BINARY[op], [normal(*s) for s in shapes])


@pytest.mark.parametrize('op', list(UNARY))
def test_unary_ops(op):
    derivatives_agree(UNARY[op], [normal(2, 3, 4)], TORCH.get(op))


def test_numbers_and_arrays_on_either_side():
    a = normal(2, 3)
    derivatives_agree(lambda t: np.ones((2, 3)) * t + np.arange(3.0) - t / np.full(3, 2.0) + 1 - 2 * t, [a],
                      lambda t: torch.ones(2, 3, dtype=torch.float64) * t + torch.arange(3.0, dtype=torch.float64)
                      - t / torch.full((3,), 2.0, dtype=torch.float64) + 1 - 2 * t)
    derivatives_agree(lambda t: np.eye(2) @ t, [a], lambda t: torch.eye(2, dtype=torch.float64) @ t)


def test_empty_tensors():
    x = Tensor(np.ones((0, 3)), requires_grad=True)
    out = (x * 2).sum(axis=0) + x.mean(axis=0) * 0 + (x @ np.ones((3, 2))).sum()
    out.backward(np.ones(3))
    assert x.grad.shape == (0, 3)
    assert Tensor(np.ones((0, 3))).softmax(axis=1).shape == (0, 3)
