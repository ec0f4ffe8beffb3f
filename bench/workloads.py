"""The benchmark's workloads, each written once: `worker.py` hands in an engine's pieces (its `Value`, or its
batched tensors and model), so every system runs the same Python code. This module imports no engine.
"""
import gc, itertools, time, tracemalloc

perf = time.perf_counter

# ---------------------------------------------------------------- helpers

def count_nodes(root):
    "Number of distinct nodes `root` depends on (itself included), found without recursion"
    seen, stack = {id(root)}, [root]
    while stack:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)

def rss_bytes():
    "Resident set size of this process, from /proc (Linux)"
    import resource
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * resource.getpagesize()

class ScalarMLP:
    "An MLP of scalars (relu hidden layers, linear output) for engines without one (torch's 0-d tensors)"
    def __init__(self, nin, nouts, leaf, rng):
        sizes = [nin] + nouts
        self.layers = [[([leaf(rng.uniform(-1, 1)) for _ in range(sizes[i])], leaf(0.0)) for _ in range(sizes[i + 1])]
                       for i in range(len(nouts))]

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            outs = []
            for w, b in layer:
                s = b
                for wi, xi in zip(w, x): s = s + wi * xi
                outs.append(s.relu() if i < len(self.layers) - 1 else s)
            x = outs
        return x[0] if len(x) == 1 else x

    def parameters(self):
        return [p for layer in self.layers for w, b in layer for p in w + [b]]

class GCTimer:
    "Adds up the wall-clock seconds Python's garbage collector spends in its passes while installed (a gc callback)"
    def __init__(self): self.seconds, self._start = 0.0, None
    def __call__(self, phase, info):
        if phase == 'start': self._start = perf()
        elif self._start is not None: self.seconds += perf() - self._start; self._start = None
    def __enter__(self): gc.callbacks.append(self); return self
    def __exit__(self, *exc): gc.callbacks.remove(self)

# ---------------------------------------------------------------- 1. the moons training step
# An MLP 2-16-16-1 (relu) on 100 moons points: hinge loss (the mean of relu(1 - y * score)) plus 1e-4 times the
# sum of the squared parameters, backward, an SGD update. Written once for scalar Values, once for batched tensors.

def scalar_loss(model, params, X, y, leaf, alpha=1e-4):
    "The loss built from scalar Values (micrograd, 0.1.0, torch 0-d tensors): one graph node per number"
    scores = [model([leaf(a), leaf(b)]) for a, b in X]
    margins = [(1 + -yi * s).relu() for yi, s in zip(y, scores)]
    return sum(margins) * (1.0 / len(margins)) + alpha * sum(p * p for p in params)

def batched_loss(model, params, X, y, alpha=1e-4):
    "The same loss from batched tensors (micrograd's Tensor, torch): `X` of shape (n, 2), `y` of shape (n, 1)"
    return (1.0 - model(X) * y).relu().mean() + alpha * sum((p * p).sum() for p in params)

def train_steps(loss, zero_grad, update, steps, budget=None, lr=0.1):
    """Run `steps` training steps (fewer if `budget` seconds run out first): ms per step and per phase (forward is
    building the loss), and the garbage collector's time and share of the step"""
    forward = backward = 0.0
    losses = []
    with GCTimer() as in_gc:
        start = perf()
        while len(losses) < steps and (budget is None or not losses or perf() - start < budget):
            t0 = perf()
            value = loss()
            t1 = perf()
            zero_grad()
            value.backward()
            t2 = perf()
            update(lr)
            losses.append(float(value.data))
            del value
            forward += t1 - t0; backward += t2 - t1
        total = perf() - start
    k = 1000.0 / len(losses)
    return dict(step_ms=total * k, forward_ms=forward * k, backward_ms=backward * k, gc_ms=in_gc.seconds * k,
                gc_share=in_gc.seconds / total, steps=len(losses), losses=losses)

def profile_step(loss, zero_grad, reps=3, walk=None):
    "CPU ms of each phase of a step, with the garbage collector on and off (best of `reps`); `walk`: the engine's graph walk"
    def cpu_ms(f):
        t0 = time.process_time(); out = f(); return (time.process_time() - t0) * 1000, out
    phases = {}
    def record(name, ms): phases[name] = min(phases.get(name, ms), ms)
    enabled = gc.isenabled()
    try:
        for _ in range(reps):
            for mode in ('on', 'off'):
                gc.collect()
                (gc.enable if mode == 'on' else gc.disable)()
                ms, value = cpu_ms(loss)
                record(f'forward_gc_{mode}', ms)
                zero_grad()
                if walk is not None:
                    ms, order = cpu_ms(lambda: walk(value))
                    record(f'topological_order_gc_{mode}', ms)
                    del order
                ms, _ = cpu_ms(value.backward)
                record(f'backward_gc_{mode}', ms)
                t0 = time.process_time()
                del value
                freed = (time.process_time() - t0) * 1000
                ms, _ = cpu_ms(gc.collect)  # what the collector still has to find: the cycles
                record(f'free_gc_{mode}', freed + ms)
    finally:
        (gc.enable if enabled else gc.disable)()
    return phases

# ---------------------------------------------------------------- 2. a chain n ops deep

def build_chain(leaf, n):
    "x + c + c + ... (n additions): a graph n ops deep"
    x, c = leaf(0.5), leaf(1e-6)
    y = x
    for _ in range(n): y = y + c
    return x, c, y

def chain(leaf, n):
    "Build and backpropagate a chain n ops deep; times in seconds, or the error backward raised"
    gc.collect()
    t0 = perf()
    x, c, y = build_chain(leaf, n)
    t1 = perf()
    result = dict(n=n, build_s=t1 - t0, error=None)
    try:
        y.backward()
        result['backward_s'] = perf() - t1
        result['grad_ok'] = abs(float(x.grad) - 1.0) < 1e-12 and abs(float(c.grad) - n) < 1e-6 * n
    except RecursionError as e:
        result['error'] = f"RecursionError: {e}"
    del x, c, y
    gc.collect()
    return result

def max_backward_depth(leaf, hi=100_000):
    "Largest chain depth whose backward() works, by bisection (the engine's own recursion limit decides)"
    def works(n):
        x, c, y = build_chain(leaf, n)
        try: y.backward(); return True, None
        except RecursionError as e: return False, f"RecursionError: {e}"
    if works(hi)[0]: return dict(max_depth=None, message=None)
    lo, message = 1, None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok, msg = works(mid)
        if ok: lo = mid
        else: hi, message = mid, msg
    return dict(max_depth=lo, fails_at=hi, message=message)

# ---------------------------------------------------------------- 3. a graph of about n nodes

def build_graph(leaf, n):
    "About n nodes: sum over i of relu(x_i * w), summed as a balanced tree (so it is shallow: depth ~ log2 n)"
    w = leaf(0.5)
    terms = [(leaf((i % 13) * 0.1 - 0.6) * w).relu() for i in range(max(1, n // 4))]
    while len(terms) > 1:
        paired = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2: paired.append(terms[-1])
        terms = paired
    return w, terms[0]

def graph(leaf, n, memory=True, count=True):
    "Bytes per node as tracemalloc sees them (Python's allocations), then build and backward times"
    nodes = lambda root: count_nodes(root) if count else 4 * (n // 4)  # torch tensors do not expose children
    result = dict(n_requested=n)
    if memory:  # first, before this workload's own allocations can be reused
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        w, root = build_graph(leaf, n)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        result['tracemalloc_bytes_per_node'] = (after - before) / nodes(root)
        del w, root
    gc.collect()
    t0 = perf()
    w, root = build_graph(leaf, n)
    t1 = perf()
    root.backward()
    result.update(build_s=t1 - t0, backward_s=perf() - t1, nodes=nodes(root))
    del w, root
    gc.collect()
    return result

def rss_growth(leaf, n, count=True):
    """Growth of the process's resident memory (RSS) while a graph of about n nodes is built, per node.
    Meant to run first in a fresh process and without tracemalloc, whose own records would be counted too"""
    w, root = build_graph(leaf, 1_000)  # warm up: whatever an engine sets up on its first ops is not a node's cost
    del w, root
    gc.collect()
    rss0 = rss_bytes()
    w, root = build_graph(leaf, n)
    rss1 = rss_bytes()
    nodes = count_nodes(root) if count else 4 * (n // 4)
    return dict(nodes=nodes, rss_bytes_per_node=(rss1 - rss0) / nodes)

# ---------------------------------------------------------------- 4. draw_dot source

def draw(leaf, draw_dot, n):
    "Time draw_dot(root).source on a graph of about n nodes"
    w, root = build_graph(leaf, n)
    t0 = perf()
    source = draw_dot(root).source
    return dict(nodes=count_nodes(root), draw_dot_s=perf() - t0, source_chars=len(source))

# ---------------------------------------------------------------- 5. the GPT training step
# microgpt's configuration (27 tokens, a context of 16, 16 wide, 4 heads, one block: 4,192 weights), one name per
# step: the mean cross-entropy of the name's next tokens, backward, an Adam step (lr 0.01, betas (0.85, 0.99)).
# Each engine brings the same model from the same weights (worker.py: micrograd's GPT on Tensors, its ValueGPT of
# Values, the same model written in torch float64); every system reads the same names in the same order.

GPT_SIZES = dict(vocab_size=27, block_size=16, n_embd=16, n_head=4, n_layer=1)
GPT_ADAM = dict(lr=0.01, betas=(0.85, 0.99))

def gpt_steps(model, names, steps):
    "`steps` training steps of `model` (its `loss(tokens)`, `zero_grad`, `update`), one name of `names` each, in turn"
    queue = itertools.cycle(names)
    return train_steps(lambda: model.loss(next(queue)), model.zero_grad, model.update, steps)
