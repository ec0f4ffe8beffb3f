"""Grad mode is per thread: one thread's `set_grad_enabled(False)` never changes what another thread's ops record.

Threads switch their own mode on and off at random (nested, each switch undone in reverse order) while they build
nodes and backpropagate. Every node must follow its own thread's mode only, and every gradient a thread computes
with its mode on must be the one it computes alone. Counts: nodes checked, gradients checked, cross-talk found.
"""
import math, random, subprocess, sys, threading
import pytest
import micrograd.engine as engine
from micrograd.engine import Value, is_grad_enabled, set_grad_enabled

OPS = [lambda a, b: a * b, lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a / (b * b + 1.0), lambda a, b: a.tanh(),
       lambda a, b: a.exp(), lambda a, b: a ** 2, lambda a, b: b.relu(), lambda a, b: a.sigmoid(), lambda a, b: Value(1.0, (a, b), '*')]


def loss_and_grads(x, y):
    "A small function of two leaves, its value and its gradients: what each thread computes while the others switch"
    a, b = Value(x), Value(y)
    out = ((a * b).tanh() + a / (b * b + 1.0) - (a * 0.3).exp()) ** 2
    out.backward()
    return out.data, a.grad, b.grad


def worker(seed, start, steps, problems, counts):
    rng = random.Random(seed)
    x, y = rng.uniform(-1, 1), rng.uniform(-1, 1)
    expected = loss_and_grads(x, y)  # alone, before the threads meet
    a, b = Value(x), Value(y)
    start.wait()
    modes = []  # this thread's switches, to undo in reverse order
    for _ in range(steps):
        if rng.random() < 0.3 and len(modes) < 5: modes.append(set_grad_enabled(rng.random() < 0.5))
        elif modes and rng.random() < 0.3: set_grad_enabled(modes.pop())
        on = is_grad_enabled()
        node = rng.choice(OPS)(a, b)
        counts['nodes'] += 1
        if bool(node._prev) != on: problems.append(f"thread {seed}: a {node._op or 'leaf'} node with grad mode {on}")
        if on and rng.random() < 0.2:
            counts['gradients'] += 1
            if loss_and_grads(x, y) != expected: problems.append(f"thread {seed}: a gradient differs from the one computed alone")
    while modes: set_grad_enabled(modes.pop())
    if not is_grad_enabled(): problems.append(f"thread {seed}: grad mode not back on after undoing every switch")


@pytest.mark.parametrize('n_threads', [2, 4, 8])
def test_grad_mode_of_one_thread_does_not_reach_another(n_threads, fuzz_counts):
    problems, counts = [], [{'nodes': 0, 'gradients': 0} for _ in range(n_threads)]  # one counter per thread
    start = threading.Barrier(n_threads)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so their steps interleave
    try:
        threads = [threading.Thread(target=worker, args=(f"{n_threads}-{i}", start, 2000, problems, counts[i])) for i in range(n_threads)]
        for t in threads: t.start()
        for t in threads: t.join()
    finally: sys.setswitchinterval(old_interval)
    suite = fuzz_counts['grad mode under threads']
    suite['threads'] += n_threads
    suite['nodes checked'] += sum(c['nodes'] for c in counts)
    suite['gradients checked'] += sum(c['gradients'] for c in counts)
    suite['cross-talk found'] += len(problems)
    assert not problems, f"{len(problems)} problems; first: " + "; ".join(problems[:5])
    assert engine._paused == 0, "every thread switched back on, but the count of paused threads is not 0"
    assert is_grad_enabled() and (Value(1.0) * 2.0)._op == '*'


def test_two_threads_taking_turns():
    "Thread A switches off and builds a product; thread B builds one between A's steps: only A's is a leaf"
    x, y, result = Value(2.0), Value(3.0), {}
    meet = threading.Barrier(2)
    def evaluate():
        previous = set_grad_enabled(False)
        try:
            meet.wait(); result['A'] = x * y; meet.wait()
        finally: set_grad_enabled(previous)
    def train():
        meet.wait(); result['B'] = x * y; meet.wait()
    threads = [threading.Thread(target=evaluate), threading.Thread(target=train)]
    for t in threads: t.start()
    for t in threads: t.join()
    result['B'].backward()
    assert (result['A']._prev, result['B']._prev, x.grad, y.grad) == ((), (x, y), 3.0, 2.0)


def test_set_grad_enabled_returns_the_previous_setting_of_this_thread():
    assert set_grad_enabled(False) is True
    try:
        seen = {}
        t = threading.Thread(target=lambda: seen.update(mode=is_grad_enabled(), previous=set_grad_enabled(True)))
        t.start(); t.join()
        assert seen == {'mode': True, 'previous': True}  # a new thread starts with grad mode on, whatever this one does
        assert set_grad_enabled(False) is False and not is_grad_enabled()
    finally: set_grad_enabled(True)
    assert is_grad_enabled() and engine._paused == 0


def test_a_thread_that_ends_with_grad_mode_off_leaves_the_others_right(child_env):
    "In a child process: a thread exits with its mode off (it never switches back); other threads still record"
    code = """
import threading
from micrograd.engine import Value, is_grad_enabled, set_grad_enabled
t = threading.Thread(target=lambda: set_grad_enabled(False)); t.start(); t.join()
x = Value(2.0); out = x * x; out.backward()
seen = {}
u = threading.Thread(target=lambda: seen.update(on=is_grad_enabled(), op=(x + x)._op)); u.start(); u.join()
print(is_grad_enabled(), out._op, x.grad, seen['on'], seen['op'])
"""
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=child_env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['True', '*', '4.0', 'True', '+']
