"""A `backward()` that fails (an op without a gradient rule, a rule that raises, Ctrl-C) leaves every grad as it was."""
import pytest
from micrograd.engine import Value, grad_rule


def graph_nodes(root):
    "Every Value `root` depends on, itself included"
    seen, stack = {}, [root]
    while stack:
        v = stack.pop()
        if id(v) in seen: continue
        seen[id(v)] = v
        stack.extend(v._prev)
    return list(seen.values())


@grad_rule('fuzz: raises KeyboardInterrupt')
def _interrupt(out):
    out._left.grad += 123.0  # half done, as if Ctrl-C arrived in the middle of the rule
    raise KeyboardInterrupt


@grad_rule('fuzz: raises RuntimeError')
def _fails(out):
    out._left.grad += 456.0
    raise RuntimeError("a rule that fails half way")


def test_the_issue_reproducer_keeps_the_earlier_grad():
    w = Value(2.0)
    (w * 3).backward()
    with pytest.raises(ValueError): (Value(1.0, (w,), 'x') * w).backward()
    assert w.grad == 3.0


@pytest.mark.parametrize('op, error', [('no such op', ValueError), ('fuzz: raises RuntimeError', RuntimeError),
                                       ('fuzz: raises KeyboardInterrupt', KeyboardInterrupt)])
def test_a_failed_backward_leaves_every_grad_as_it_was(op, error, fuzz_counts):
    a, b, c = Value(0.5, label='a'), Value(-1.5, label='b'), Value(2.0, label='c')
    h = (a * b + c).tanh()
    h.backward()  # earlier grads: on the leaves and on the inner nodes
    (a * c).backward()
    # the failing node sits deep in the graph, so the backward pass has already updated grads when it fails
    bad = Value(1.0, (h,), op)
    root = ((bad * a + b * h) ** 2 + h * c).sigmoid()
    nodes = graph_nodes(root)
    before = [(v, v.grad) for v in nodes]
    with pytest.raises(error): root.backward()
    changed = [f"{v!r}: {g} -> {v.grad}" for v, g in before if v.grad != g]
    fuzz_counts['failed backward()']['failures injected'] += 1
    fuzz_counts['failed backward()']['grads changed'] += len(changed)
    assert not changed, "grads changed by a backward that failed:\n" + "\n".join(changed)


def test_backward_works_again_after_a_failure():
    w = Value(2.0)
    (w * 3).backward()
    with pytest.raises(KeyboardInterrupt): (Value(1.0, (w,), 'fuzz: raises KeyboardInterrupt') * w).backward()
    (w * w).backward()
    assert w.grad == 3.0 + 4.0
