"""Random computation graphs, built twice (micrograd and PyTorch float64): every value and gradient must agree to 1e-9.

Each graph starts from 1 to 4 leaves and applies 1 to 24 random ops: + - * / ** (Value ** Value, Value ** number
and number ** Value), negation, exp, log, tanh, relu and sigmoid, in plain and reflected form (`2.0 - v`). Operands
are drawn from every node built so far, so nodes are shared and reused. Then `backward()` runs, is repeated
(leaves accumulate, as in PyTorch), and runs again from an inner node first. A second set of graphs is
differentiated three times through `backpropagate(..., create_graph=True)` (a random mix of the first derivatives,
then of the second), against `torch.autograd.grad(..., create_graph=True)`.

"To 1e-9" means: within 1e-9 times the larger of 1 and the size of the terms that add up to the number. A value's
terms are the value itself. A gradient is a sum over the node's uses of (the user's gradient) x (the local
derivative), and two orders of adding the same terms may differ by a few units in the last place *of the terms*:
`x / x` has the gradient 1/x - x/x**2 = 0, made of two terms of size 1/x.
"""
import math, random
import pytest
import torch
from micrograd.engine import Value, backpropagate

GRAPHS_PER_CHUNK, CHUNKS = 100, 25  # 2,500 graphs
TOL = 1e-9


def close(ours, theirs, scale=0.0):
    "Equal, both nan, or within 1e-9 times the largest of 1, |theirs| and `scale`"
    if ours == theirs or (math.isnan(ours) and math.isnan(theirs)): return True
    return math.isfinite(ours) and math.isfinite(theirs) and abs(ours - theirs) <= TOL * max(1.0, abs(theirs), scale)


def leaf(x):
    return Value(x), torch.tensor(x, dtype=torch.float64, requires_grad=True)


def constant(x): return torch.tensor(x, dtype=torch.float64)  # torch.div, not torch's `x * t.reciprocal()` for x / t


UNARY = {'neg': (lambda v: -v, lambda t: -t), 'exp': (Value.exp, torch.exp), 'log': (Value.log, torch.log),
         'tanh': (Value.tanh, torch.tanh), 'relu': (Value.relu, torch.relu), 'sigmoid': (Value.sigmoid, torch.sigmoid)}
BINARY = {'+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b,
          '/': lambda a, b: a / b, '**': lambda a, b: a ** b}
EXPONENTS = [0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5, 2.0]


def unary_local(name, x, out):
    "d out / d x"
    if name == 'log': return 1 / x
    return {'neg': -1.0, 'exp': out, 'tanh': 1 - out * out, 'relu': float(x > 0), 'sigmoid': out * (1 - out)}[name]


def binary_local(op, x, y, out):
    "(d out / d a, d out / d b) for out = a op b"
    if op == '+': return 1.0, 1.0
    if op == '-': return 1.0, -1.0
    if op == '*': return y, x
    if op == '/': return 1 / y, -out / y
    base = y * x ** (y - 1) if x != 0 else 0.0
    return base, (math.log(x) * out if x > 0 else 0.0)


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
    """(nodes, n_leaves, uses, description): nodes are (Value, tensor) pairs, the last one the root;
    uses[i] lists (k, local derivative) for every use of node i as an operand of node k"""
    nodes = [leaf(rng.uniform(-2, 2)) for _ in range(rng.randint(1, 4))]
    n_leaves, steps, uses = len(nodes), [], [[] for _ in nodes]
    index = lambda o: next(i for i, (v, _) in enumerate(nodes) if v is o)
    pick = lambda: nodes[-1 - min(int(rng.expovariate(0.5)), len(nodes) - 1)]  # mostly recent nodes: deep graphs
    for _ in range(rng.randint(1, 24)):
        for _attempt in range(20):
            if rng.random() < 0.35:
                name = rng.choice(list(UNARY)); (a, ta) = pick()
                if not allowed(name, a.data, None): continue
                v, t = UNARY[name][0](a), UNARY[name][1](ta)
                if not (math.isfinite(v.data) and abs(v.data) < 1e6): continue
                operands = [(a, unary_local(name, a.data, v.data))]
                step = f"{name}(n{index(a)})"
            else:
                op = rng.choice(list(BINARY)); f = BINARY[op]
                (a, ta), form = pick(), rng.choice(['vv', 'vv', 'vc', 'cv'])
                if form == 'vv': b, tb = pick()
                elif op == '**' and form == 'vc': b = tb = rng.choice(EXPONENTS)
                else: b = tb = round(rng.uniform(-3, 3), 2)
                if form == 'cv': (a, ta), (b, tb) = (b, constant(b)), (a, ta)  # the number on the left: a reflected op
                x, y = getattr(a, 'data', a), getattr(b, 'data', b)
                check = '**c' if (op == '**' and form == 'vc') else ('**v' if op == '**' else op)
                if not allowed(check, x, y): continue
                v, t = f(a, b), f(ta, tb)
                if not (math.isfinite(v.data) and abs(v.data) < 1e6): continue
                da, db = binary_local(op, x, y, v.data)
                operands = [(o, d) for o, d in ((a, da), (b, db)) if isinstance(o, Value)]
                name_of = lambda o: f"n{index(o)}" if isinstance(o, Value) else repr(o)
                step = f"{name_of(a)} {op} {name_of(b)}"
            for o, d in operands: uses[index(o)].append((len(nodes), d))
            nodes.append((v, t)); uses.append([]); steps.append(f"n{len(nodes) - 1} = {step}")
            break
    if len(nodes) == n_leaves:  # no op was kept: make one
        (a, ta) = nodes[0]; nodes.append((a * 2.0, ta * 2.0)); uses[0].append((len(nodes) - 1, 2.0)); uses.append([])
        steps.append(f"n{len(nodes) - 1} = n0 * 2.0")
    return nodes, n_leaves, uses, steps


def torch_grads(out, nodes, uses):
    "d out / d node for every node (0 where unused), and the size of the terms each of them adds up"
    grads = torch.autograd.grad(out, [t for _, t in nodes], retain_graph=True, allow_unused=True)
    grads = [0.0 if g is None else g.item() for g in grads]
    scales = [sum(abs(grads[k] * d) for k, d in uses[i]) for i in range(len(nodes))]
    return grads, scales


def compare_graph(rng):
    "Mismatches (as text) between micrograd and torch on one random graph, and the number of numbers compared"
    nodes, n_leaves, uses, steps = random_graph(rng)
    bad, compared = [], 0
    def check(what, i, ours, theirs, scale=0.0):
        nonlocal compared
        compared += 1
        if not close(ours, theirs, scale): bad.append(f"{what} of n{i}: micrograd {ours!r}, torch {theirs!r}")
    for i, (v, t) in enumerate(nodes): check('value', i, v.data, t.item())
    (root, troot), k = nodes[-1], rng.randrange(n_leaves, len(nodes))
    grads, scales = torch_grads(troot, nodes, uses)
    inner, inner_scales = torch_grads(nodes[k][1], nodes, uses)
    root.backward()
    for i, (v, _) in enumerate(nodes): check('grad', i, v.grad, grads[i], scales[i])
    root.backward()  # again: leaves accumulate (2x), inner nodes hold d(root)/d(node) again
    for i, (v, _) in enumerate(nodes):
        n = 2 if i < n_leaves else 1
        check('grad after a second backward', i, v.grad, n * grads[i], n * scales[i])
    nodes[k][0].backward(); root.backward()  # from an inner node, then the root: leaves accumulate both
    for i, (v, _) in enumerate(nodes[:n_leaves]):
        check(f'grad after backward from n{k} and the root', i, v.grad, 3 * grads[i] + inner[i], 3 * scales[i] + inner_scales[i])
    if bad: bad = ["graph: " + "; ".join(steps)] + bad
    return bad, compared


def run_chunk(compare, rng, counts, what):
    "`compare(rng)` on GRAPHS_PER_CHUNK graphs: add to `counts` (the numbers compared as `what`), fail on any mismatch"
    failures, compared = [], 0
    for _ in range(GRAPHS_PER_CHUNK):
        bad, n = compare(rng)
        compared += n
        if bad: failures.append(bad)
    counts['graphs'] += GRAPHS_PER_CHUNK
    counts[what] += compared
    counts['graphs with a silent wrong result'] += len(failures)
    assert not failures, f"{len(failures)} of {GRAPHS_PER_CHUNK} graphs disagree with torch; first:\n" + "\n".join(failures[0][:8])


@pytest.mark.parametrize('chunk', range(CHUNKS))
def test_random_graphs_match_torch(chunk, fuzz_counts):
    run_chunk(compare_graph, random.Random(f"graphs-{chunk}"), fuzz_counts['random graphs vs torch float64'],
              'values and grads compared')


def derivatives_compared(rng):
    """Derivatives 1, 2 and 3 of one random graph's root with respect to its leaves, ours (create_graph) and torch's:
    (mismatches as text, how many numbers compared). Order n+1 differentiates a random mix of the order-n derivatives.
    To 1e-9 means here: within 1e-9 times the larger of 1 and the largest derivative of that order."""
    nodes, n_leaves, _, steps = random_graph(rng)
    leaves, t_leaves = [v for v, _ in nodes[:n_leaves]], [t for _, t in nodes[:n_leaves]]
    (out, t_out), bad, compared = nodes[-1], [], 0
    for order in (1, 2, 3):
        ours = backpropagate(out, Value(1.0), create_graph=True, inputs=leaves)
        theirs = torch.autograd.grad(t_out, t_leaves, create_graph=True, allow_unused=True)
        mine = [0.0 if g is None else g.data for g in ours]
        torch_says = [0.0 if g is None else g.item() for g in theirs]
        scale = max([1.0] + [abs(x) for x in torch_says if math.isfinite(x)])
        for i, (x, y) in enumerate(zip(mine, torch_says)):
            compared += 1
            if not close(x, y, scale): bad.append(f"derivative {order} by leaf {i}: micrograd {x!r}, torch {y!r}")
        mix = [(rng.uniform(-1, 1), g, tg) for g, tg in zip(ours, theirs) if g is not None and tg is not None]
        if not mix or not any(tg.requires_grad for _, _, tg in mix): break  # the derivatives are constants from here on
        out = sum((c * g for c, g, _ in mix), Value(0.0))
        t_out = sum(c * tg for c, _, tg in mix)
    if bad: bad = ["graph: " + "; ".join(steps)] + bad
    return bad, compared


@pytest.mark.parametrize('chunk', range(CHUNKS))
def test_higher_derivatives_of_random_graphs_match_torch(chunk, fuzz_counts):
    run_chunk(derivatives_compared, random.Random(f"higher-{chunk}"),
              fuzz_counts['random graphs, derivatives 1 to 3 (create_graph) vs torch'], 'derivatives compared')
