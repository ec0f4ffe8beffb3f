"""One benchmark process per system, driven by run.py: `python bench/worker.py ENGINE PATH THREADS`.

ENGINE is `micrograd` (the package in the checkout PATH: this repository, or another one measured as the
baseline), `orig` (micrograd 0.1.0, PATH its private folder) or `torch` (PATH: the micrograd whose Tensor MLP
gives the batched model its first weights). THREADS limits the BLAS (and torch) threads; 0 keeps the default.
The worker reads one JSON command per line on stdin and answers one JSON line on stdout. The micrograd and 0.1.0
workers never import torch; numpy is imported only for the batched workloads.
"""
import gc, inspect, json, os, random, re, sys, traceback
from pathlib import Path
from types import SimpleNamespace

BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() not in (BENCH.parent, BENCH.parent / 'nbs')]
import workloads as W

ENGINE, PATH, THREADS = sys.argv[1], Path(sys.argv[2]).resolve(), int(sys.argv[3])
if THREADS: os.environ['OPENBLAS_NUM_THREADS'] = os.environ['OMP_NUM_THREADS'] = str(THREADS)  # before numpy loads


def import_micrograd(path):
    "The micrograd package in folder `path`, and nothing else of that name"
    sys.path.insert(0, str(path))
    import micrograd
    assert Path(micrograd.__file__).resolve().parent == path / 'micrograd', (micrograd.__file__, path)
    return micrograd


def seeded(make, seed):
    "What `make()` returns with `random` seeded (micrograd's models draw their weights from it)"
    random.seed(seed)
    return make()


def micrograd_engine(path, orig=False):
    "micrograd's Value, scalar MLP, graph walk, draw_dot and (when it has one) Tensor MLP"
    micrograd = import_micrograd(path)
    from micrograd.engine import Value
    try: import micrograd.nn as nn
    except ImportError: nn = None
    if orig:  # 0.1.0 has no __version__: read pip's record of it
        from importlib.metadata import distributions
        version = next(d.version for d in distributions(path=[str(path)]) if d.metadata['Name'] == 'micrograd')
    else: version = getattr(micrograd, '__version__', None)
    MLP = getattr(nn, 'MLP', None)
    if orig: make = lambda: MLP(2, [16, 16, 1])  # relu hidden layers, linear output
    else: make = MLP and (lambda: MLP(2, [16, 16, 1], act='relu', out_act='linear'))
    def scalar_model(seed):
        net = seeded(make, seed) if make else W.ScalarMLP(2, [16, 16, 1], Value, random.Random(seed))
        params = net.parameters()
        def zero_grad():
            for p in params: p.grad = 0.0
        def update(lr):
            for p in params: p.data -= lr * p.grad
        return net, params, zero_grad, update
    # the walk that orders the nodes and zeroes the grads, for the profile, in the shapes this engine has had
    order = getattr(sys.modules['micrograd.engine'], '_backward_order', None)
    arity = len(inspect.signature(order).parameters) if order else 0
    walk = order if arity == 1 else (lambda root: order(root, [], {}, {})) if arity == 4 else None
    def batched(X, y, width, seed):
        import numpy as np
        from micrograd.tensor import MLP, Tensor
        net = seeded(lambda: MLP(2, [width, width, 1], act='relu'), seed)
        params, X, y = net.parameters(), Tensor(np.array(X)), np.array(y)[:, None]
        def update(lr):
            for p in params: p.data -= lr * p.grad
        return (lambda: W.batched_loss(net, params, X, y)), net.zero_grad, update
    try: from micrograd.viz import draw_dot
    except ImportError: draw_dot = None
    def gpt(kind, seed):
        "microgpt's GPT from `seed`, on Tensors (kind 'tensor') or of Values ('value'), with micrograd's Adam"
        from micrograd.gpt import GPT, ValueGPT, make_batch
        from micrograd.optim import Adam
        model = (GPT if kind == 'tensor' else ValueGPT)(**W.GPT_SIZES, seed=seed)
        optimizer = Adam(model.parameters(), **W.GPT_ADAM)
        loss = (lambda tokens: model.loss(*make_batch([tokens], model.block_size))) if kind == 'tensor' else model.loss
        return SimpleNamespace(loss=loss, zero_grad=optimizer.zero_grad, update=lambda lr: optimizer.step())
    has_gpt = not orig and (path / 'micrograd' / 'gpt.py').exists()
    return SimpleNamespace(leaf=Value, constant=Value, scalar_model=scalar_model, walk=walk, draw_dot=draw_dot,
                           batched=None if orig else batched, gpt=gpt if has_gpt else None, countable=True,
                           info=dict(engine='micrograd 0.1.0 (PyPI)' if orig else 'micrograd', version=version,
                                     path=str(Path(micrograd.__file__).parent),
                                     model='its nn.MLP' if make else 'bench ScalarMLP'))


def torch_engine(path):
    "torch float64: one 0-d tensor per number (scalar), and the batched MLP with micrograd's first weights"
    import torch
    torch.set_default_dtype(torch.float64)
    if THREADS: torch.set_num_threads(THREADS)
    leaf = lambda x: torch.tensor(float(x), requires_grad=True)
    constant = lambda x: torch.tensor(float(x))
    def updater(params):
        def update(lr):
            with torch.no_grad():
                for p in params: p -= lr * p.grad
        return update
    def scalar_model(seed):
        net = W.ScalarMLP(2, [16, 16, 1], leaf, random.Random(seed))
        params = net.parameters()
        def zero_grad():
            for p in params: p.grad = None
        return net, params, zero_grad, updater(params)
    def batched(X, y, width, seed):
        import_micrograd(path)
        from micrograd.tensor import MLP
        ours = seeded(lambda: MLP(2, [width, width, 1], act='relu'), seed)
        sizes = [2, width, width, 1]
        linears = [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
        with torch.no_grad():
            for layer, linear in zip(ours.layers, linears):
                linear.weight.copy_(torch.from_numpy(layer.w.data.T.copy()))
                linear.bias.copy_(torch.from_numpy(layer.b.data.copy()))
        net = torch.nn.Sequential(linears[0], torch.nn.ReLU(), linears[1], torch.nn.ReLU(), linears[2])
        params, X, y = list(net.parameters()), torch.tensor(X), torch.tensor(y)[:, None]
        return (lambda: W.batched_loss(net, params, X, y)), net.zero_grad, updater(params)
    def gpt_logits(weights, idx, n_head):
        "The logits of microgpt's GPT, written with torch's ops, from `weights` in the order of micrograd's GPT"
        wte, wpe, *blocks, lm_head = weights
        B, T = idx.shape
        C = wte.shape[1]
        norm = lambda x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
        later = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        x = norm(wte[idx] + wpe[:T])
        for c_attn, attn_proj, c_fc, mlp_proj in zip(*[iter(blocks)] * 4):
            q, k, v = (norm(x) @ c_attn).split(C, dim=-1)
            q, k, v = [t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v)]
            att = (q @ k.transpose(-2, -1) / (C // n_head) ** 0.5).masked_fill(later, float('-inf')).softmax(dim=-1)
            x = x + (att @ v).transpose(1, 2).reshape(B, T, C) @ attn_proj
            x = x + torch.relu(norm(x) @ c_fc) @ mlp_proj
        return x @ lm_head
    def gpt(kind, seed):
        "The same GPT in torch float64, from the weights micrograd's GPT draws from `seed`, with torch's Adam"
        import_micrograd(path)
        from micrograd.gpt import GPT
        weights = [torch.tensor(p.data, requires_grad=True) for p in GPT(**W.GPT_SIZES, seed=seed).parameters()]
        optimizer = torch.optim.Adam(weights, **W.GPT_ADAM)
        def loss(tokens):
            logits = gpt_logits(weights, torch.tensor([tokens[:-1]]), W.GPT_SIZES['n_head'])[0]
            return torch.nn.functional.cross_entropy(logits, torch.tensor(tokens[1:]))
        return SimpleNamespace(loss=loss, zero_grad=optimizer.zero_grad, update=lambda lr: optimizer.step())
    config = torch.__config__.show()
    build = re.findall(r'BLAS_INFO=\w+', config) + re.findall(r'Math Kernel Library Version [\d.]+', config)
    return SimpleNamespace(leaf=leaf, constant=constant, scalar_model=scalar_model, walk=None, draw_dot=None,
                           batched=batched, gpt=gpt, countable=False,
                           info=dict(engine='torch', version=torch.__version__, threads=torch.get_num_threads(),
                                     build=build + [f"CPU capability {torch.backends.cpu.get_cpu_capability()}"]))


def blas():
    "The BLAS and OpenMP thread pools this process loaded (threadpoolctl)"
    try: from threadpoolctl import threadpool_info
    except ImportError: return [dict(error='threadpoolctl is not installed')]
    keys = ('user_api', 'internal_api', 'version', 'architecture', 'num_threads')
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def serve(engine):
    steppers = {}
    def run(workload, **cmd):
        if workload == 'moons':
            net, params, zero_grad, update = engine.scalar_model(cmd['seed'])
            loss = lambda: W.scalar_loss(net, params, cmd['X'], cmd['y'], engine.constant)
            first_loss = W.train_steps(loss, zero_grad, update, 1)['losses'][0] if cmd['warmup'] else None
            out = dict(W.train_steps(loss, zero_grad, update, cmd['steps']), first_loss=first_loss)
            if cmd['count']:
                out['nodes'] = W.count_nodes(loss()) if engine.countable else None
                gc.collect()  # 0.1.0 leaves this untimed graph as garbage: do not bill it to the next steps
            return out
        if workload == 'batched':  # the model stays from one repetition to the next
            key, first_loss = (len(cmd['X']), cmd['width']), None
            if key not in steppers:  # a new model: its first loss, and a few steps to warm up
                steppers[key] = engine.batched(cmd['X'], cmd['y'], cmd['width'], cmd['seed'])
                first_loss = W.train_steps(*steppers[key], steps=4, budget=cmd['budget'])['losses'][0]
            out = W.train_steps(*steppers[key], steps=cmd['steps'], budget=cmd['budget'])
            return dict(out, losses=out['losses'][-1:], first_loss=first_loss)  # the last loss is enough
        if workload == 'gpt':  # the model stays from one repetition to the next, as the batched one does
            key, first_loss, nodes = ('gpt', cmd['kind']), None, None
            if key not in steppers:  # a new model: the loss of its first step, which also warms it up
                steppers[key] = engine.gpt(cmd['kind'], cmd['seed'])
                first_loss = W.gpt_steps(steppers[key], cmd['names'][:1], 1)['losses'][0]
                if engine.countable: nodes = W.count_nodes(steppers[key].loss(cmd['names'][0]))
            out = W.gpt_steps(steppers[key], cmd['names'], cmd['steps'])
            return dict(out, losses=out['losses'][-1:], first_loss=first_loss, nodes=nodes)
        if workload == 'profile':
            net, params, zero_grad, _ = engine.scalar_model(cmd['seed'])
            loss = lambda: W.scalar_loss(net, params, cmd['X'], cmd['y'], engine.constant)
            return W.profile_step(loss, zero_grad, cmd['reps'], engine.walk)
        if workload == 'chain': return W.chain(engine.leaf, cmd['n'])
        if workload == 'max_depth': return dict(W.max_backward_depth(engine.leaf), recursion_limit=sys.getrecursionlimit())
        if workload == 'graph':  # tracemalloc does not see torch's allocations
            return W.graph(engine.leaf, cmd['n'], cmd['memory'] and engine.countable, engine.countable)
        if workload == 'rss': return W.rss_growth(engine.leaf, cmd['n'], engine.countable)
        if workload == 'draw': return engine.draw_dot and W.draw(engine.leaf, engine.draw_dot, cmd['n'])
        if workload == 'info':
            return dict(engine.info, python=sys.version.split()[0], pid=os.getpid(), blas=blas(),
                        torch_imported='torch' in sys.modules, numpy=getattr(sys.modules.get('numpy'), '__version__', None))
        raise ValueError(f"unknown workload {workload!r}")
    for number, line in enumerate(sys.stdin):
        cmd = json.loads(line)
        try:
            if cmd['workload'] == 'rss' and number > 0: raise ValueError("rss must be the first command of a fresh worker")
            reply = dict(ok=True, result=run(**cmd))
        except Exception as e:
            reply = dict(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        print(json.dumps(reply), flush=True)


if __name__ == '__main__':
    engine = torch_engine(PATH) if ENGINE == 'torch' else micrograd_engine(PATH, orig=ENGINE == 'orig')
    print(json.dumps(dict(ready=True)), flush=True)
    serve(engine)
