"""Every op of `Value` at the edges of float64, against PyTorch float64.

Each op runs at 0, -0.0, the denormals 5e-324 and 1e-310, 1e308, -1e308, inf, -inf, nan and a few ordinary
numbers (every pair of them for a binary op, in the forms `Value op Value`, `Value op number`,
`number op Value` and `v op v`). Each case must give PyTorch's value and gradients (nan matches nan, 0.0 matches
-0.0), or raise one of the errors micrograd documents (`DOCUMENTED_ERRORS`, listed on the promises page).
Anything else is a silent wrong result or an undocumented error: the suite counts both and expects 0.

The same cases are then differentiated twice more, through `backpropagate(..., create_graph=True)`, against
`torch.autograd.grad(..., create_graph=True)`: every second and third derivative by each Value operand. Two
differences are allowed (`known_difference`, both on the Hardening page), both in a second or third derivative of
b ** k with k = 0 or 1: where torch's formula multiplies 0 by an infinite power (a base of 0, a denormal or inf) and
returns nan, or overflows, micrograd returns the derivative (d2/db2 b ** 0 is 0); and at a base of inf with a Value
exponent, where an infinite gradient meets the slope 0 of b ** 0, torch's rule selects 0 and micrograd's multiplies,
giving nan.
"""
import math
from collections import Counter
import pytest
import torch
from micrograd.engine import Value, backpropagate

inf, nan = math.inf, math.nan
EXTREMES = [0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, 1e308, -1e308, inf, -inf, nan]
ORDINARY = [1.0, -1.0, 0.5, -1.5, 2.0, 3.0]
VALUES = EXTREMES + ORDINARY

# the errors micrograd documents (nbs/promises.ipynb): the op, the exception, and the inputs that raise it
DOCUMENTED_ERRORS = {
    'log': [(ValueError, "log of a number <= 0 (torch: -inf or nan)", lambda a, b: a <= 0)],
    '/': [(ZeroDivisionError, "division by 0 or -0.0 (torch: inf or nan)", lambda a, b: b == 0)],
    '**': [(ValueError, "a negative base ** a non-integer exponent (torch: nan)",
            lambda a, b: a < 0 and math.isfinite(b) and not b.is_integer())],
    '** Value': [(ValueError, "a base <= 0 ** a Value exponent (the exponent's gradient needs log(base))",
                  lambda a, b: a <= 0)],
}

UNARY = {'neg': (lambda v: -v, lambda t: -t), 'exp': (Value.exp, torch.exp), 'log': (Value.log, torch.log),
         'tanh': (Value.tanh, torch.tanh), 'relu': (Value.relu, torch.relu), 'sigmoid': (Value.sigmoid, torch.sigmoid)}
BINARY = {'+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b,
          '/': lambda a, b: a / b, '**': lambda a, b: a ** b}


def same(ours, theirs):
    "The same float: equal (0.0 == -0.0), both nan, or within 1e-9 of each other relative to their size"
    if ours == theirs or (math.isnan(ours) and math.isnan(theirs)): return True
    return math.isfinite(ours) and math.isfinite(theirs) and abs(ours - theirs) <= 1e-9 * max(abs(ours), abs(theirs))


def documented(op, a, b, error):
    "Whether micrograd documents `error` for `op` at the inputs a (and b)"
    rules = DOCUMENTED_ERRORS.get(op, [])
    return any(isinstance(error, kind) and applies(a, b) for kind, _, applies in rules)


def tensor(x): return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def run_case(op, form, a, b=None):
    """One case: None if micrograd agrees with torch (or raises a documented error), else what went wrong.
    `form` says which operands are Values: 'v' (unary), 'vv', 'vc' (number on the right), 'cv', 'same' (v op v)."""
    vals = []
    def lift(x):
        vals.append(Value(x))
        return vals[-1]
    f_ours = UNARY[op][0] if form == 'v' else BINARY[op]
    if form == 'v': va = lift(a)
    elif form == 'vv': va, vb = lift(a), lift(b)
    elif form == 'vc': va, vb = lift(a), b
    elif form == 'cv': va, vb = a, lift(b)
    elif form == 'same': va = vb = lift(a); b = a
    where = f"{op} {form} at {a!r}" + ("" if form in ('v', 'same') else f", {b!r}")
    kind = '** Value' if op == '**' and form in ('vv', 'cv', 'same') else op
    try:
        out = f_ours(va) if form == 'v' else f_ours(va, vb)
        out.backward()
    except Exception as e:
        if documented(kind, a, b, e): return None
        return ('undocumented error', f"{where}: {type(e).__name__}: {e}")
    problem = disagreement(out, vals, torch_result(op, form, a, b))
    if problem and any(x == 0 and math.copysign(1, x) < 0 for x in (a, b) if x is not None):
        # 0.0 == -0.0 is all we promise: accept torch's answer at +0.0 too (torch: d sqrt(x)/dx at -0.0 is -inf)
        plus = lambda x: 0.0 if x == 0 else x
        if not disagreement(out, vals, torch_result(op, form, plus(a), None if b is None else plus(b))): problem = None
    return problem and ('silent wrong', f"{where}: {problem}")


def torch_result(op, form, a, b):
    "torch's output value and the grads of the operands that are tensors, for the case (op, form, a, b)"
    if form == 'v':
        t = tensor(a); out = UNARY[op][1](t); ts = [t]
    elif form == 'same':
        t = tensor(a); out = BINARY[op](t, t); ts = [t]
    else:
        # a number operand on the left is a constant tensor: torch computes `number / t` as `t.reciprocal() * number`,
        # which gives nan for 0.0 / 5e-324; torch.div, like micrograd, divides
        ta = tensor(a) if form in ('vv', 'vc') else torch.tensor(a, dtype=torch.float64)
        tb = tensor(b) if form in ('vv', 'cv') else b
        out = BINARY[op](ta, tb); ts = [t for t in (ta, tb) if isinstance(t, torch.Tensor) and t.requires_grad]
    out.backward()
    return out.item(), [0.0 if t.grad is None else t.grad.item() for t in ts]


def disagreement(out, vals, theirs):
    "What differs between micrograd's `out` (and the grads of `vals`) and torch's, or None"
    value, grads = theirs
    if not same(out.data, value): return f"value {out.data!r}, torch {value!r}"
    for i, (v, g) in enumerate(zip(vals, grads)):
        if not same(v.grad, g): return f"grad of operand {i} {v.grad!r}, torch {g!r} (value {out.data!r})"
    return None


def cases_of(group):
    if group == 'unary': return [(op, 'v', a, None) for op in UNARY for a in VALUES]
    if group == 'same': return [(op, 'same', a, None) for op in BINARY for a in VALUES]
    op, form = group
    return [(op, form, a, b) for a in VALUES for b in VALUES]


GROUPS = ['unary', 'same'] + [(op, form) for op in BINARY for form in ('vv', 'vc', 'cv')]


@pytest.mark.parametrize('group', GROUPS, ids=lambda g: g if isinstance(g, str) else f"{g[0]}-{g[1]}")
def test_extreme_values_match_torch_or_raise_a_documented_error(group, fuzz_counts):
    cases = cases_of(group)
    problems = [p for p in (run_case(*c) for c in cases) if p]
    counts = fuzz_counts['extreme values vs torch float64']
    counts['cases'] += len(cases)
    counts['silent wrong results'] += sum(kind == 'silent wrong' for kind, _ in problems)
    counts['undocumented errors'] += sum(kind == 'undocumented error' for kind, _ in problems)
    assert not problems, f"{len(problems)} of {len(cases)} cases disagree with torch:\n" + "\n".join(
        f"{kind}: {text}" for kind, text in problems[:12])


def operands(form, a, b, lift):
    "The operands of a case, with `lift` making the Value (or tensor) ones; and the list of those"
    made = []
    def leaf(x):
        made.append(lift(x))
        return made[-1]
    if form == 'v': ops = (leaf(a),)
    elif form == 'vv': ops = (leaf(a), leaf(b))
    elif form == 'vc': ops = (leaf(a), b)
    elif form == 'cv': ops = (a if lift is Value else torch.tensor(a, dtype=torch.float64), leaf(b))
    else: v = leaf(a); ops = (v, v)
    return ops, made


def derivatives(out, leaves, grad, number, order=3):
    "{(i,): d out/d leaf i, (i, j): d2 out/d leaf j d leaf i, ...} up to `order`, with `grad(z, leaves)` of one library"
    found, frontier = {}, {(): out}
    for _ in range(order):
        nxt = {}
        for key, z in frontier.items():
            grads = [None] * len(leaves) if z is None else grad(z, leaves)
            for i, g in enumerate(grads):
                nxt[key + (i,)] = g
                found[key + (i,)] = 0.0 if g is None else number(g)
        frontier = nxt
    return found


def ours_grad(z, leaves): return backpropagate(z, Value(1.0), create_graph=True, inputs=leaves)


def torch_grad(z, leaves):
    if not z.requires_grad: return [None] * len(leaves)  # a constant (torch's x ** 0 is one): its derivatives are 0
    return torch.autograd.grad(z, leaves, create_graph=True, allow_unused=True)


def same_or_tiny(ours, theirs):
    "The same float, or both within 1e-300 of each other: denormal results have too few digits for a relative 1e-9"
    return same(ours, theirs) or (math.isfinite(ours) and math.isfinite(theirs) and abs(ours - theirs) <= 1e-300)


def known_difference(op, form, a, b, key, ours, theirs):
    "One of the two allowed differences (see the top of this file), if this is one"
    k = a if form == 'same' else b
    if op != '**' or len(key) < 2 or k not in (0.0, 1.0): return None
    if not math.isfinite(theirs) and not math.isnan(ours): return 'a number where torch has nan or inf'
    if form in ('vv', 'same') and math.isinf(a) and math.isnan(ours) and theirs == 0: return 'nan where torch selects 0'


def higher_case(op, form, a, b=None):
    "Derivatives 1 to 3 of one case, ours and torch's: (problems, allowed differences, numbers compared)"
    f_ours, f_torch = (UNARY[op][0], UNARY[op][1]) if form == 'v' else (BINARY[op], BINARY[op])
    ops, leaves = operands(form, a, b, Value)
    try: out = f_ours(*ops)
    except Exception: return [], Counter(), 0  # a documented error: the first-order suite checks which
    t_ops, t_leaves = operands(form, a, b, lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True))
    ours = derivatives(out, leaves, ours_grad, lambda g: g.data)
    theirs = derivatives(f_torch(*t_ops), t_leaves, torch_grad, lambda g: g.item())
    problems, allowed = [], Counter()
    for key in theirs:
        if len(key) == 1 or same_or_tiny(ours[key], theirs[key]): continue  # first derivatives: the suite above
        kind = known_difference(op, form, a, b, key, ours[key], theirs[key])
        if kind: allowed[kind] += 1; continue
        if any(x == 0 and math.copysign(1, x) < 0 for x in (a, b) if x is not None):  # 0.0 == -0.0 is all we promise
            plus = lambda x: 0.0 if x == 0 else x
            t_ops, t_leaves = operands(form, plus(a), None if b is None else plus(b), lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True))
            if same_or_tiny(ours[key], derivatives(f_torch(*t_ops), t_leaves, torch_grad, lambda g: g.item())[key]): continue
        problems.append(f"{op} {form} at {a!r}, {b!r}: derivative {key} micrograd {ours[key]!r}, torch {theirs[key]!r}")
    return problems, allowed, sum(len(k) > 1 for k in theirs)


@pytest.mark.parametrize('group', GROUPS, ids=lambda g: g if isinstance(g, str) else f"{g[0]}-{g[1]}")
def test_second_and_third_derivatives_at_extreme_values_match_torch(group, fuzz_counts):
    problems, allowed, compared = [], Counter(), 0
    for case in cases_of(group):
        p, kinds, n = higher_case(*case)
        problems += p; allowed += kinds; compared += n
    counts = fuzz_counts['extreme values, derivatives 2 and 3 (create_graph) vs torch float64']
    counts['derivatives compared'] += compared
    for kind in ('a number where torch has nan or inf', 'nan where torch selects 0'): counts[kind] += allowed[kind]
    counts['silent wrong results'] += len(problems)
    assert not problems, f"{len(problems)} derivatives disagree with torch:\n" + "\n".join(problems[:12])


def test_division_is_its_own_op():
    "The reproducers of issue 13, defect 1: a / b is not a * b ** -1"
    assert (Value(1e-320) / Value(1e-320)).data == 1.0
    assert (Value(0.0) / Value(1e-310)).data == 0.0
    a, b = Value(1e-160), Value(1e-160)
    (a / b).backward()
    assert (a.grad, b.grad) == (1e160, -1e160)


@pytest.mark.parametrize('op', ['neg', 'exp', 'log', 'tanh', 'relu', 'sigmoid', '+', '-', '*', '/', '** 2', '** Value', 'number ** Value'])
def test_nan_propagates(op):
    "NaN in, NaN out: no op turns a NaN into a number (issue 13, defect 2)"
    x = Value(nan)
    out = {'neg': lambda: -x, 'exp': x.exp, 'log': x.log, 'tanh': x.tanh, 'relu': x.relu, 'sigmoid': x.sigmoid,
           '+': lambda: x + 1.0, '-': lambda: 1.0 - x, '*': lambda: x * 2.0, '/': lambda: 1.0 / x,
           '** 2': lambda: x ** 2, '** Value': lambda: Value(2.0) ** x, 'number ** Value': lambda: 2.0 ** x}[op]()
    assert math.isnan(out.data), f"{op} of nan gave {out.data}"
    out.backward()
