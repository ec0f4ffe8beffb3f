"""A backward pass that fails (an op without a gradient rule, a rule that raises, Ctrl-C) leaves every grad as it was.

Rules are `rule(g, out, *inputs)` and return one share per input. On a first-order pass they get plain numbers, so a
rule that "adds to its child's grad half way" is simulated by one that reaches the failing node through `FAILING`
(with `create_graph=True` it gets the nodes themselves), adds to its child's grad, then raises. Every test runs the
pass in each of its modes: `backward()`, `create_graph=True`, `inputs=[...]`, and both.
"""
import random, sys
import pytest
from micrograd.engine import Value, backpropagate, grad_rule, _backward_order, _rules

FAILING = []  # the node whose rule is about to fail, for the rules below


def _half_done(error):
    "A rule that adds 123 to its child's grad, then raises `error`"
    def rule(g, out, x):
        node = out if isinstance(out, Value) else FAILING[-1]
        child = node._left
        child.grad = Value(123.0) if child.grad is None else child.grad + 123.0
        raise error
    return rule


grad_rule('fuzz: raises KeyboardInterrupt')(_half_done(KeyboardInterrupt))
grad_rule('fuzz: raises RuntimeError')(_half_done(RuntimeError("a rule that fails half way")))

MODES = {'backward()': lambda root, leaves: root.backward(),
         'create_graph': lambda root, leaves: backpropagate(root, Value(1.0), create_graph=True),
         'inputs': lambda root, leaves: backpropagate(root, 1.0, inputs=leaves),
         'create_graph and inputs': lambda root, leaves: backpropagate(root, Value(1.0), create_graph=True, inputs=leaves)}


def every_node(root):
    "Every Value `root` depends on, itself included: the walk's two lists (it zeroes grads, so call it before setting them)"
    order, leaves = [], []
    _backward_order(root, 0.0, order, [], leaves, [])
    return order + leaves


def changed(before):
    "The (node, old grad, new grad) of every node whose grad is not what `before` says"
    return [(v, g, v.grad) for v, g in before if v.grad is not g and v.grad != g]


def test_the_issue_reproducer_keeps_the_earlier_grad():
    w = Value(2.0)
    (w * 3).backward()
    with pytest.raises(ValueError, match="no gradient rule for op 'x'"): (Value(1.0, (w,), 'x') * w).backward()
    assert w.grad == 3.0


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('op, error', [('no such op', ValueError), ('fuzz: raises RuntimeError', RuntimeError),
                                       ('fuzz: raises KeyboardInterrupt', KeyboardInterrupt)])
def test_a_failed_backward_leaves_every_grad_as_it_was(op, error, mode, fuzz_counts):
    a, b, c = Value(0.5, label='a'), Value(-1.5, label='b'), Value(2.0, label='c')
    h = (a * b + c).tanh()
    # the failing node sits deep in the graph, so the backward pass has already updated grads when it fails
    bad = Value(1.0, (h,), op)
    FAILING.append(bad)
    root = ((bad * a + b * h) ** 2 + h * c).sigmoid()
    nodes = every_node(root)
    h.backward(); (a * c).backward()  # earlier grads: on the leaves and on the inner nodes
    for v in nodes:
        if v.grad == 0.0: v.grad = 0.5  # inner nodes too, as if left over from an earlier call
    before = [(v, v.grad) for v in nodes]
    with pytest.raises(error): MODES[mode](root, [a, b, c])
    wrong = changed(before)
    fuzz_counts['failed backward()']['failures injected'] += 1
    fuzz_counts['failed backward()']['grads changed'] += len(wrong)
    assert not wrong, "grads changed by a backward that failed:\n" + "\n".join(f"{v!r}: {g} -> {n}" for v, g, n in wrong)


def test_backward_works_again_after_a_failure():
    w = Value(2.0)
    (w * 3).backward()
    bad = Value(1.0, (w,), 'fuzz: raises KeyboardInterrupt')
    FAILING.append(bad)
    with pytest.raises(KeyboardInterrupt): (bad * w).backward()
    (w * w).backward()
    assert w.grad == 3.0 + 4.0


def random_graph(rng, failing_op=None, n_ops=25):
    "A random graph over 3 leaves, with one node of `failing_op` somewhere in it (if given); (root, leaves, nodes)"
    pool = [Value(rng.uniform(-1, 1)) for _ in range(3)]
    leaves, bad_at = list(pool), rng.randrange(n_ops)
    for i in range(n_ops):
        a, b = rng.choice(pool), rng.choice(pool)
        if i == bad_at and failing_op:
            node = Value(a.data, (a,), failing_op)
            FAILING.append(node)
        else: node = rng.choice([lambda: a + b, lambda: a * b, lambda: a - b, lambda: (a * b).tanh(),
                                 lambda: a / (b * b + 1.0), lambda: (a * 0.5).exp(), lambda: a.relu() + b.sigmoid()])()
        pool.append(node)
    root = pool[-1]
    for v in pool[3:]: root = root + v * 0.5  # every node on a path to the root
    return root, leaves, every_node(root)


@pytest.mark.parametrize('op, error', [('no such op', ValueError), ('fuzz: raises RuntimeError', RuntimeError),
                                       ('fuzz: raises KeyboardInterrupt', KeyboardInterrupt)])
def test_random_graphs_with_a_failing_node_change_no_grad(op, error, fuzz_counts):
    rng, failures = random.Random(f"failing-{op}"), 0
    for trial in range(300):
        root, leaves, nodes = random_graph(rng, op)
        for v in nodes: v.grad = rng.choice([0.0, rng.uniform(-5, 5)])
        before = [(v, v.grad) for v in nodes]
        mode = rng.choice(list(MODES))
        with pytest.raises(error): MODES[mode](root, leaves)
        wrong = changed(before)
        failures += 1
        fuzz_counts['random graphs with a failing node']['graphs'] += 1
        fuzz_counts['random graphs with a failing node']['grads compared'] += len(before)
        fuzz_counts['random graphs with a failing node']['grads changed'] += len(wrong)
        assert not wrong, f"trial {trial}, {mode}: {len(wrong)} grads changed"
    assert failures == 300


def interrupt_at(n):
    "A trace function that raises KeyboardInterrupt at the `n`th line the engine runs, as a Ctrl-C there would"
    lines = 0
    def trace(frame, event, arg):
        nonlocal lines
        if frame.f_globals.get('__name__') != 'micrograd.engine': return None
        if event == 'line':
            lines += 1
            if lines == n: raise KeyboardInterrupt
        return trace
    return trace


@pytest.mark.parametrize('mode', MODES)
def test_ctrl_c_at_every_line_of_the_pass_changes_no_grad(mode, fuzz_counts):
    "A fresh graph for each n, interrupted at the nth line the engine runs, until a run gets to the end"
    if sys.gettrace() is not None: pytest.skip("a tracer (coverage, a debugger) is active")
    rng, graphs = random.Random(f"ctrl-c-{mode}"), 0
    for _ in range(3):
        seed = rng.random()
        n = 0
        while True:
            n += 1
            root, leaves, nodes = random_graph(random.Random(seed), n_ops=8)
            for i, v in enumerate(nodes): v.grad = i + 0.25
            before = [(v, v.grad) for v in nodes]
            sys.settrace(interrupt_at(n))
            try: MODES[mode](root, leaves)
            except KeyboardInterrupt: pass
            else: break
            finally: sys.settrace(None)
            wrong = changed(before)
            fuzz_counts['Ctrl-C at every line of backward']['interrupts'] += 1
            fuzz_counts['Ctrl-C at every line of backward']['grads changed'] += len(wrong)
            assert not wrong, f"{mode}, interrupted at line {n}: {len(wrong)} grads changed"
        graphs += 1
        assert n > 50  # the tracer did interrupt the pass, many times
    fuzz_counts['Ctrl-C at every line of backward']['graphs'] += graphs


def teardown_module():
    for op in ('fuzz: raises KeyboardInterrupt', 'fuzz: raises RuntimeError'): _rules.pop(op, None)
    FAILING.clear()
