"""Random computation graphs, built twice (micrograd and PyTorch float64): every value and gradient must agree to 1e-9.

Each graph starts from 1 to 4 leaves and applies 1 to 24 random ops: + - * / ** (Value ** Value, Value ** number
and number ** Value), negation, exp, log, tanh, relu and sigmoid, in plain and reflected form (`2.0 - v`). Operands
are drawn from every node built so far, so nodes are shared and reused. Then `backward()` runs, is repeated
(leaves accumulate, as in PyTorch), and runs again from an inner node first.
"""
import math, random
import pytest
import torch
from micrograd.engine import Value

GRAPHS_PER_CHUNK, CHUNKS = 100, 25  # 2,500 graphs
TOL = 1e-9


def close(a, b):
    "Equal, both nan, or within 1e-9 (relative to |b| when |b| > 1)"
    if a == b or (math.isnan(a) and math.isnan(b)): return True
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= TOL * max(1.0, abs(b))


def leaf(x):
    return Value(x), torch.tensor(x, dtype=torch.float64, requires_grad=True)


UNARY = {'neg': (lambda v: -v, lambda t: -t), 'exp': (Value.exp, torch.exp), 'log': (Value.log, torch.log),
         'tanh': (Value.tanh, torch.tanh), 'relu': (Value.relu, torch.relu), 'sigmoid': (Value.sigmoid, torch.sigmoid)}
BINARY = {'+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b,
          '/': lambda a, b: a / b, '**': lambda a, b: a ** b}
EXPONENTS = [0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5, 2.0]


def allowed(op, x, y):
    "Keep the graph where both libraries compute ordinary numbers (the extreme-value suite covers the rest)"
    if op == 'log': return x > 0.05
    if op == 'relu': return abs(x) > 1e-6  # at the kink, a last-bit difference would pick the other slope
    if op == 'exp': return x < 15
    if op == '/': return abs(y) > 0.05
    if op == '**v': return x > 0.05 and abs(y) <= 3  # Value (or number) ** Value: positive base
    if op == '**c': return (x > 0.05 or (float(y).is_integer() and abs(x) > 0.05) or (y >= 0 and float(y).is_integer()))
    return True


def random_graph(rng):
    "(nodes, leaves, description): nodes are (Value, tensor) pairs, the last one the root"
    nodes = [leaf(rng.uniform(-2, 2)) for _ in range(rng.randint(1, 4))]
    leaves, steps = list(nodes), []
    pick = lambda: nodes[-1 - min(int(rng.expovariate(0.5)), len(nodes) - 1)]  # mostly recent nodes: deep graphs
    for _ in range(rng.randint(1, 24)):
        for _attempt in range(20):
            kind = rng.random()
            if kind < 0.35:
                name = rng.choice(list(UNARY)); (a, ta) = pick()
                if not allowed(name, a.data, None): continue
                v, t = UNARY[name][0](a), UNARY[name][1](ta)
                step = f"{name}(n{nodes.index((a, ta))})"
            else:
                op = rng.choice(list(BINARY)); f = BINARY[op]
                (a, ta), form = pick(), rng.choice(['vv', 'vv', 'vc', 'cv'])
                if form == 'vv': b, tb = pick()
                elif op == '**' and form == 'vc': b = tb = rng.choice(EXPONENTS)
                else: b = tb = round(rng.uniform(-3, 3), 2)
                if form == 'cv': (a, ta), (b, tb) = (b, tb), (a, ta)  # the number on the left: a reflected op
                x, y = getattr(a, 'data', a), getattr(b, 'data', b)
                check = '**c' if (op == '**' and form == 'vc') else ('**v' if op == '**' else op)
                if not allowed(check, x, y): continue
                v, t = f(a, b), f(ta, tb)
                name_of = lambda o: f"n{[n[0] for n in nodes].index(o)}" if isinstance(o, Value) else repr(o)
                step = f"{name_of(a)} {op} {name_of(b)}"
            if not (math.isfinite(v.data) and abs(v.data) < 1e6): continue
            nodes.append((v, t)); steps.append(f"n{len(nodes) - 1} = {step}")
            break
    if len(nodes) == len(leaves):  # no op was kept: make one
        (a, ta) = nodes[0]; nodes.append((a * a + 1.0, ta * ta + 1.0)); steps.append("n = n0 * n0 + 1")
    return nodes, leaves, steps


def compare_graph(rng):
    "Mismatches (as text) between micrograd and torch on one random graph, and the number of nodes compared"
    nodes, leaves, steps = random_graph(rng)
    bad, compared = [], 0
    def check(what, i, ours, theirs):
        nonlocal compared
        compared += 1
        if not close(ours, theirs): bad.append(f"{what} of n{i}: micrograd {ours!r}, torch {theirs!r}")
    for i, (v, t) in enumerate(nodes):
        check('value', i, v.data, t.item())
        if not t.is_leaf: t.retain_grad()
    root, troot = nodes[-1]
    root.backward(); troot.backward(retain_graph=True)
    first = {}
    for i, (v, t) in enumerate(nodes):
        first[i] = 0.0 if t.grad is None else t.grad.item()
        check('grad', i, v.grad, first[i])
    # again: leaves accumulate (2x), inner nodes hold d(root)/d(node) again
    root.backward(); troot.backward(retain_graph=True)
    for i, (v, t) in enumerate(nodes):
        if (v, t) in leaves: check('grad after a second backward', i, v.grad, 0.0 if t.grad is None else t.grad.item())
        else: check('inner grad after a second backward', i, v.grad, first[i])
    # backward from an inner node, then from the root: leaves accumulate both
    k = rng.randrange(len(leaves), len(nodes))
    nodes[k][0].backward(); nodes[k][1].backward(retain_graph=True)
    root.backward(); troot.backward()
    for i, (v, t) in enumerate(leaves):
        check(f'grad after backward from n{k} and the root', i, v.grad, 0.0 if t.grad is None else t.grad.item())
    if bad: bad = ["graph: " + "; ".join(steps)] + bad
    return bad, compared


@pytest.mark.parametrize('chunk', range(CHUNKS))
def test_random_graphs_match_torch(chunk, fuzz_counts):
    rng = random.Random(f"graphs-{chunk}")
    failures, compared = [], 0
    for _ in range(GRAPHS_PER_CHUNK):
        bad, n = compare_graph(rng)
        compared += n
        if bad: failures.append(bad)
    counts = fuzz_counts['random graphs vs torch float64']
    counts['graphs'] += GRAPHS_PER_CHUNK
    counts['values and grads compared'] += compared
    counts['graphs with a silent wrong result'] += len(failures)
    assert not failures, f"{len(failures)} of {GRAPHS_PER_CHUNK} graphs disagree with torch; first:\n" + "\n".join(failures[0][:8])
