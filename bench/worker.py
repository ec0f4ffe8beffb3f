"""One benchmark process per system: `python bench/worker.py ours|orig|torch`.

Reads one JSON command per line on stdin, answers one JSON line on stdout. Each system lives in its own
process: micrograd 0.1.0 is imported from its private folder (so its `from micrograd.engine import Value`
finds its own engine, never ours), and the two pure-Python processes never import torch.
"""
import gc, json, math, os, random, sys, traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ORIG_DIR = BENCH / '.micrograd-0.1.0'
sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() not in (REPO, REPO / 'nbs')]
import workloads as W

SYSTEM = sys.argv[1]

def setup_ours():
    ours = Path(os.environ.get('MICROGRAD_BENCH_OURS') or REPO).resolve()  # run.py --ours: try another checkout
    sys.path.insert(0, str(ours))
    import micrograd
    from micrograd.engine import Value
    assert Path(micrograd.__file__).resolve().parent == ours / 'micrograd', micrograd.__file__
    info = dict(engine='micrograd (this repo)', path=str(Path(micrograd.__file__).parent),
                version=getattr(micrograd, '__version__', None))
    try:
        from micrograd.nn import MLP
        def make_model(rng_seed):
            random.seed(rng_seed)
            model = MLP(2, [16, 16, 1], act='relu', out_act='linear')
            return model, model.parameters(), model.zero_grad
        info['model'] = 'micrograd.nn.MLP'
    except ImportError:
        def make_model(rng_seed):
            model = W.ScalarMLP(2, [16, 16, 1], Value, random.Random(rng_seed))
            params = model.parameters()
            def zero_grad():
                for p in params: p.grad = 0.0
            return model, params, zero_grad
        info['model'] = 'bench ScalarMLP of Values (micrograd.nn not available)'
    try:
        from micrograd.viz import draw_dot
    except ImportError:
        draw_dot = None
    return Value, make_model, draw_dot, info

def setup_orig():
    if not (ORIG_DIR / 'micrograd' / 'engine.py').exists():
        raise SystemExit(f"micrograd 0.1.0 is not installed in {ORIG_DIR}: run bench/run.py, which installs it")
    sys.path.insert(0, str(ORIG_DIR))
    import micrograd
    from micrograd.engine import Value
    from micrograd.nn import MLP
    assert Path(micrograd.__file__).resolve().parent == ORIG_DIR / 'micrograd', micrograd.__file__
    def make_model(rng_seed):
        random.seed(rng_seed)
        model = MLP(2, [16, 16, 1])  # relu hidden layers, linear output
        return model, model.parameters(), model.zero_grad
    from importlib.metadata import distributions  # 0.1.0 has no __version__: read pip's record of it
    version = next((d.version for d in distributions(path=[str(ORIG_DIR)]) if d.metadata['Name'] == 'micrograd'), None)
    return Value, make_model, None, dict(engine='micrograd 0.1.0 (PyPI)', path=str(Path(micrograd.__file__).parent),
                                         version=version, model='micrograd 0.1.0 nn.MLP')

def setup_torch():
    import torch
    torch.set_default_dtype(torch.float64)
    def leaf(x): return torch.tensor(float(x), dtype=torch.float64, requires_grad=True)
    def make_model(rng_seed):
        model = W.ScalarMLP(2, [16, 16, 1], leaf, random.Random(rng_seed))
        params = model.parameters()
        def zero_grad():
            for p in params: p.grad = None
        return model, params, zero_grad
    return leaf, make_model, None, dict(engine=f'torch {torch.__version__}', threads=torch.get_num_threads(),
                                        model='batched: nn.Sequential float64; scalar: bench ScalarMLP of 0-d tensors')

def torch_batched_steps(X, y, steps, seed, lr=0.1, alpha=1e-4):
    "The moons step as one batched float64 computation"
    import torch
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 1)).double()
    params = list(model.parameters())
    Xt, yt = torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    def step():
        scores = model(Xt).squeeze(1)
        loss = torch.relu(1 - yt * scores).mean() + alpha * sum((p * p).sum() for p in params)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in params: p -= lr * p.grad
        return loss
    for _ in range(3): step()  # warm up
    t0 = W.perf()
    for _ in range(steps): loss = step()
    total = W.perf() - t0
    return dict(step_ms=total * 1000 / steps, losses=[loss.item()])

def main():
    Value, make_model, draw_dot, info = dict(ours=setup_ours, orig=setup_orig, torch=setup_torch)[SYSTEM]()
    is_torch = SYSTEM == 'torch'
    if is_torch:
        import torch
        def update_for(params):
            def update(lr):
                with torch.no_grad():
                    for p in params: p -= lr * p.grad
            return update
    else:
        def update_for(params):
            def update(lr):
                for p in params: p.data -= lr * p.grad
            return update
    info.update(pid=os.getpid(), python=sys.version.split()[0], gc_enabled=gc.isenabled())
    print(json.dumps(dict(ready=True, info=info)), flush=True)
    for number, line in enumerate(sys.stdin):
        cmd = json.loads(line)
        try:
            kind = cmd['workload']
            if kind == 'rss' and number > 0:
                raise ValueError("the rss workload must be the first command of a fresh worker")
            if kind == 'moons':
                model, params, zero_grad = make_model(cmd['seed'])
                X, y = cmd['X'], cmd['y']
                # inputs are leaf Values in micrograd; in torch, 0-d tensors that need no gradient
                moons_leaf = (lambda v: torch.tensor(float(v), dtype=torch.float64)) if is_torch else Value
                for _ in range(cmd.get('warmup', 1)):
                    W.moons_steps(model, params, X, y, 1, moons_leaf, zero_grad, update_for(params))
                out = W.moons_steps(model, params, X, y, cmd['steps'], moons_leaf, zero_grad, update_for(params))
                if cmd.get('count'):
                    loss = W.moons_loss(model, params, X, y, moons_leaf)
                    out['nodes'] = None if is_torch else W.count_nodes(loss)
                    del loss
                    gc.collect()  # 0.1.0 leaves this untimed graph as garbage: do not bill it to the next steps
            elif kind == 'profile':
                model, params, zero_grad = make_model(cmd['seed'])
                topo = None
                if SYSTEM == 'ours':
                    import inspect, micrograd.engine as engine
                    walk = getattr(engine, '_backward_order', None)  # the walk that orders the nodes and zeroes the grads
                    arity = len(inspect.signature(walk).parameters) if walk else 0
                    if arity == 1: topo = walk
                    elif arity == 4: topo = lambda root: walk(root, [], {}, {})  # (root, order, earlier grads, saved grads)
                out = W.profile_step(model, params, cmd['X'], cmd['y'], Value, zero_grad, cmd.get('reps', 3), topo)
            elif kind == 'moons_batched':
                out = torch_batched_steps(cmd['X'], cmd['y'], cmd['steps'], cmd['seed'])
            elif kind == 'chain':
                out = W.chain(Value, cmd['n'])
            elif kind == 'max_depth':
                out = W.max_backward_depth(Value)
                out['recursion_limit'] = sys.getrecursionlimit()
            elif kind == 'graph':
                out = W.graph(Value, cmd['n'], memory=cmd.get('memory', True), count=not is_torch)
            elif kind == 'rss':
                out = W.rss_growth(Value, cmd['n'], count=not is_torch)
            elif kind == 'draw':
                out = None if draw_dot is None else W.draw(Value, draw_dot, cmd['n'])
            elif kind == 'info':
                out = dict(info, torch_imported='torch' in sys.modules)
            else:
                raise ValueError(f"unknown workload {kind!r}")
            reply = dict(ok=True, result=out)
        except Exception as e:
            reply = dict(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        print(json.dumps(reply), flush=True)

if __name__ == '__main__':
    main()
