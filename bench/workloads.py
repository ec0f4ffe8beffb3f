"""The benchmark workloads, written once for any engine with a micrograd-style `Value`.

This module imports no engine itself: `worker.py` passes in the `Value` class (ours or micrograd 0.1.0's)
or a torch adapter, so every system runs exactly the same Python code.
"""
import gc, time, tracemalloc

perf = time.perf_counter

# ---------------------------------------------------------------- helpers

def count_nodes(root):
    "Number of distinct nodes `root` depends on (itself included), found without recursion"
    seen, stack = {id(root)}, [root]
    while stack:
        node = stack.pop()
        for child in node._prev:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)

def rss_bytes():
    "Resident set size of this process, from /proc (Linux)"
    with open('/proc/self/statm') as f: pages = int(f.read().split()[1])
    import resource
    return pages * resource.getpagesize()

class ScalarMLP:
    "A 2-16-16-1 style MLP of scalars (relu hidden layers, linear output) for engines without one"
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

# ---------------------------------------------------------------- 1. moons training step (scalar engines)

def moons_loss(model, params, X, y, leaf, alpha=1e-4):
    "Hinge loss (mean of relu(1 - y*score)) plus alpha * sum of squared parameters"
    inputs = [[leaf(a), leaf(b)] for a, b in X]
    scores = [model(x) for x in inputs]
    margins = [(1 + -yi * s).relu() for yi, s in zip(y, scores)]
    data_loss = sum(margins) * (1.0 / len(margins))
    reg_loss = alpha * sum(p * p for p in params)
    return data_loss + reg_loss

class GCTimer:
    "Adds up the wall-clock seconds Python's garbage collector spends in its passes while installed (a gc callback)"
    def __init__(self): self.seconds, self.passes, self._start = 0.0, 0, None
    def __call__(self, phase, info):
        if phase == 'start': self._start = perf()
        elif self._start is not None: self.seconds += perf() - self._start; self.passes += 1; self._start = None
    def __enter__(self): gc.callbacks.append(self); return self
    def __exit__(self, *exc): gc.callbacks.remove(self)

def moons_steps(model, params, X, y, steps, leaf, zero_grad, update, lr=0.1):
    "Run `steps` training steps; per-phase times in ms (forward = building the loss graph), and the collector's share"
    fwd = bwd = upd = 0.0
    losses = []
    with GCTimer() as in_gc:
        c_all, t_all = time.process_time(), perf()
        for _ in range(steps):
            t0 = perf()
            loss = moons_loss(model, params, X, y, leaf)
            t1 = perf()
            zero_grad()
            loss.backward()
            t2 = perf()
            update(lr)
            t3 = perf()
            losses.append(float(loss.data))
            del loss
            fwd += t1 - t0; bwd += t2 - t1; upd += t3 - t2
        total, cpu = perf() - t_all, time.process_time() - c_all
    k = 1000.0 / steps
    return dict(step_ms=total * k, step_cpu_ms=cpu * k, forward_ms=fwd * k, backward_ms=bwd * k, update_ms=upd * k,
                gc_ms=in_gc.seconds * k, gc_share=in_gc.seconds / total, gc_passes=in_gc.passes / steps, losses=losses)

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
    result = dict(n=n, build_s=t1 - t0)
    try:
        y.backward()
        t2 = perf()
        result['backward_s'] = t2 - t1
        result['grad_ok'] = abs(float(x.grad) - 1.0) < 1e-12 and abs(float(c.grad) - n) < 1e-6 * n
    except RecursionError as e:
        result['error'] = f"RecursionError: {e}"
    t3 = perf()
    del x, c, y
    gc.collect()
    result['free_s'] = perf() - t3
    return result

def max_backward_depth(leaf, hi=100_000):
    "Largest chain depth whose backward() works, by bisection (the engine's own recursion limit decides)"
    def works(n):
        x, c, y = build_chain(leaf, n)
        try: y.backward(); return True, None
        except RecursionError as e: return False, f"RecursionError: {e}"
    ok, _ = works(hi)
    if ok: return dict(max_depth=None, message=None)
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
    result = dict(n_requested=n)
    if memory:  # first, before this workload's own allocations can be reused
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        w, root = build_graph(leaf, n)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        result['memory_nodes'] = nodes = count_nodes(root) if count else 4 * (n // 4)
        result['tracemalloc_bytes_per_node'] = (after - before) / nodes
        del w, root
    gc.collect()
    t0 = perf()
    w, root = build_graph(leaf, n)
    t1 = perf()
    root.backward()
    t2 = perf()
    result.update(build_s=t1 - t0, backward_s=t2 - t1)
    result['nodes'] = count_nodes(root) if count else 4 * (n // 4)  # torch tensors do not expose children
    t3 = perf()
    del w, root
    gc.collect()
    result['free_s'] = perf() - t3
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
    return dict(nodes=nodes, rss_bytes_per_node=(rss1 - rss0) / nodes, rss_before_mb=rss0 / 2**20)

# ---------------------------------------------------------------- 4. draw_dot source

def draw(leaf, draw_dot, n):
    "Time draw_dot(root).source on a graph of about n nodes"
    w, root = build_graph(leaf, n)
    nodes = count_nodes(root)
    t0 = perf()
    source = draw_dot(root).source
    t1 = perf()
    return dict(nodes=nodes, draw_dot_s=t1 - t0, source_chars=len(source))

# ---------------------------------------------------------------- where a moons step's time goes

def profile_step(model, params, X, y, leaf, zero_grad, reps=3, topological_order=None):
    "CPU ms of each phase of a step, with the garbage collector on and off (best of `reps`)"
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
                ms, loss = cpu_ms(lambda: moons_loss(model, params, X, y, leaf))
                record(f'forward_gc_{mode}', ms)
                zero_grad()
                if topological_order is not None:
                    ms, order = cpu_ms(lambda: topological_order(loss))
                    record(f'topological_order_gc_{mode}', ms)
                    del order
                ms, _ = cpu_ms(loss.backward)
                record(f'backward_gc_{mode}', ms)
                t0 = time.process_time()
                del loss
                freed = (time.process_time() - t0) * 1000
                ms, _ = cpu_ms(gc.collect)  # what the collector still has to find: the cycles
                record(f'free_gc_{mode}', freed + ms)
    finally:
        (gc.enable if enabled else gc.disable)()
    return phases
