"""Benchmark micrograd (this repo) against micrograd 0.1.0 and PyTorch, scalar and batched, and print the tables.

    python bench/run.py                   # full run (a few minutes): writes bench/results.json and bench/results.md
    python bench/run.py --quick           # small sizes, few repetitions (about a minute); writes nothing without --out
    python bench/run.py --baseline PATH   # also measure PATH/micrograd as "baseline" (PATH: a folder or a commit)
    python bench/run.py --ours PATH       # measure PATH/micrograd as "ours" instead of this repository's

Each system runs in a worker process of its own (`worker.py`); repetitions take turns (ours, baseline, 0.1.0,
torch, ours, ...) so a slow moment of the machine hits all alike; the tables show medians, and the spread of each
ratio over the rounds. micrograd 0.1.0 is installed from PyPI into bench/.micrograd-0.1.0/ the first time.
"""
import argparse, io, json, os, platform, statistics, subprocess, sys, tarfile, tempfile, time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ORIG_DIR = BENCH / '.micrograd-0.1.0'
SEED = 1337
UNSET = ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE')  # they slow a current numpy's OpenBLAS: unset in the workers
NAMES = dict(ours='ours', baseline='baseline', orig='0.1.0', torch_batched='torch batched', torch_scalar='torch scalar')
SCALAR = ('ours', 'baseline', 'orig', 'torch_scalar')  # the scalar systems, in the order of their turns
BATCHED = ('ours', 'ours, 1 thread', 'baseline', 'baseline, 1 thread', 'torch', 'torch, 1 thread')
SIZES = (  # the batched step: name, points, hidden width, repetitions, steps per repetition (at most: see BUDGET)
    ('moons step: 100 points, 2-16-16-1', 100, 16, 15, 200),
    ('10,000 points, 2-16-16-1', 10_000, 16, 7, 20),
    ('100 points, 2-256-256-1', 100, 256, 7, 50),
    ('10,000 points, 2-256-256-1', 10_000, 256, 5, 3),
)
BUDGET = 0.3  # seconds per batched repetition: a thread pool fighting a loaded machine can make a step 100x slower
TARGETS = dict(moons_speedup=15.0, build_backward_speedup=12.0, bytes_per_node=150.0, tensor_speedup=1.5,
               gpt_vs_values=100.0, gpt_vs_torch=1.5)
GPT_NAMES = 20  # the GPT step reads the first 20 training names, one per step, each system in the same order


def config(quick):
    "Sizes and repetitions per workload: (repetitions, steps per repetition) for the moons step"
    if quick:
        return dict(mode='quick', moons=dict(ours=(3, 3), orig=(2, 1), torch_scalar=(2, 1)), n=100_000, chain=(2, 1),
                    draw=(10_000, 2), profile_reps=1, sizes=[(a, n, w, min(r, 3), max(1, s // 10)) for a, n, w, r, s in SIZES],
                    gpt=dict(gpt_tensor=(3, GPT_NAMES), gpt_values=(3, GPT_NAMES), gpt_torch=(3, GPT_NAMES)))
    return dict(mode='full', moons=dict(ours=(15, 3), orig=(15, 1), torch_scalar=(3, 2)), n=1_000_000, chain=(3, 1),
                draw=(10_000, 5), profile_reps=3, sizes=[list(s) for s in SIZES],
                gpt=dict(gpt_tensor=(15, 2 * GPT_NAMES), gpt_values=(15, GPT_NAMES), gpt_torch=(15, 2 * GPT_NAMES)))


def log(message): print(message, file=sys.stderr, flush=True)


def ensure_orig():
    "Install micrograd 0.1.0 (no dependencies) into its private folder, beside whatever micrograd this environment has"
    if (ORIG_DIR / 'micrograd' / 'engine.py').exists(): return
    log(f"installing micrograd==0.1.0 into {ORIG_DIR} ...")
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--target', str(ORIG_DIR),
                    'micrograd==0.1.0'], check=True)


class Worker:
    "One system in a process of its own (`worker.py`), driven by JSON lines"
    def __init__(self, engine, path, threads=0):
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        self.proc = subprocess.Popen([sys.executable, str(BENCH / 'worker.py'), engine, str(path), str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(BENCH), env=env)
        self.name = f"{engine} {path}" + (f" ({threads} thread)" if threads else '')
        self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line: raise RuntimeError(f"worker {self.name} died (exit code {self.proc.wait()})")
        return json.loads(line)

    def __call__(self, **command):
        self.proc.stdin.write(json.dumps(command) + '\n')
        self.proc.stdin.flush()
        reply = self._read()
        if not reply['ok']:
            sys.stderr.write(reply['traceback'])
            raise RuntimeError(f"{self.name}, {command['workload']}: {reply['error']}")
        return reply['result']

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


@contextmanager
def started(specs, keys):
    "A worker per key, each started from its spec (engine, path, threads), closed at the end"
    workers = {}
    try:
        for key in keys: workers[key] = Worker(*specs[key])
        yield workers
    finally:
        for w in workers.values(): w.close()


def interleaved(workers, plan, label):
    "`plan`: (key, worker, repetitions, command(repetition)); repetition r of each before r + 1 of any; {key: results}"
    results = {key: [] for key, *_ in plan}
    for rep in range(max(reps for _, _, reps, _ in plan)):
        for key, worker, reps, command in plan:
            if rep < reps:
                log(f"{label}: {NAMES.get(key, key)}, repetition {rep + 1}/{reps}")
                results[key].append(worker(**command(rep)))
    return results


def run(cfg, ours, baseline):
    "Every workload on every system; the raw results of each repetition"
    ensure_orig()
    sys.path.insert(0, str(ours))
    from micrograd.data import make_moons, load_names, CharTokenizer
    moons = {n: [list(a) for a in make_moons(n, noise=0.1, seed=1)] for n in {100} | {s[1] for s in cfg['sizes']}}
    train_names = load_names(split='train')
    names = [CharTokenizer(train_names).encode(name) for name in train_names[:GPT_NAMES]]
    X, y = moons[100]
    specs = dict(ours=('micrograd', ours, 0), baseline=('micrograd', baseline, 0), orig=('orig', ORIG_DIR, 0),
                 torch_scalar=('torch', ours, 0), torch=('torch', ours, 0))  # the workers' engine, path, threads
    specs.update({'ours, 1 thread': ('micrograd', ours, 1), 'baseline, 1 thread': ('micrograd', baseline, 1),
                  'torch, 1 thread': ('torch', ours, 1)})
    has = lambda key: baseline is not None or 'baseline' not in key
    scalar = [s for s in SCALAR if has(s)]
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    raw, infos = {}, {}
    with started(specs, scalar) as workers:
        reps = dict(cfg['moons'], baseline=cfg['moons']['ours'])
        moons_step = lambda steps: lambda rep: dict(workload='moons', X=X, y=y, steps=steps, seed=SEED,
                                                    warmup=rep == 0, count=rep == 0)
        raw['moons'] = interleaved(workers, [(s, workers[s], reps[s][0], moons_step(reps[s][1])) for s in scalar], 'moons step')
        log("where a moons step's time goes: each micrograd")
        raw['profile'] = {s: workers[s](workload='profile', X=X, y=y, seed=SEED, reps=cfg['profile_reps'])
                          for s in scalar if s != 'torch_scalar'}
        n, (ours_reps, other_reps) = cfg['n'], cfg['chain']
        count = lambda s: ours_reps if s in ('ours', 'baseline') else other_reps
        raw['chain'] = interleaved(workers, [(s, workers[s], count(s), lambda rep: dict(workload='chain', n=n))
                                             for s in scalar], f"chain {n:,} deep")
        log("chain: the deepest backward() micrograd 0.1.0 manages")
        raw['orig_max_depth'] = workers['orig'](workload='max_depth')
        raw['graph'] = interleaved(workers, [(s, workers[s], count(s), lambda rep: dict(workload='graph', n=n, memory=rep == 0))
                                             for s in scalar], f"graph of {n:,} nodes")
        nodes, draws = cfg['draw']
        raw['draw'] = interleaved(workers, [(s, workers[s], draws, lambda rep: dict(workload='draw', n=nodes))
                                            for s in scalar if s in ('ours', 'baseline')], f"draw_dot of {nodes:,} nodes")
        gpt = lambda kind, steps: lambda rep: dict(workload='gpt', kind=kind, names=names, steps=steps, seed=SEED)
        plan = [(key, workers['torch_scalar' if key == 'gpt_torch' else 'ours'], reps, gpt(key[4:], steps))
                for key, (reps, steps) in cfg['gpt'].items()]
        raw['gpt'] = interleaved(workers, plan, "GPT step, microgpt's size")
        raw['gpt_names'] = dict(names=len(names), mean_letters=sum(len(t) - 2 for t in names) / len(names))
        infos.update({s: workers[s](workload='info') for s in workers})
    raw['batched'] = {name: {} for name, *_ in cfg['sizes']}
    with started(specs, [s for s in BATCHED if has(s)]) as workers:  # fresh processes: no thread pool left spinning
        for rep in range(max(size[3] for size in cfg['sizes'])):
            log(f"batched moons step, repetition {rep + 1}")
            for name, points, width, size_reps, steps in cfg['sizes']:
                for s in workers if rep < size_reps else ():
                    raw['batched'][name].setdefault(s, []).append(workers[s](
                        workload='batched', X=moons[points][0], y=moons[points][1], width=width, steps=steps,
                        seed=SEED, budget=BUDGET))
        infos.update({s: workers[s](workload='info') for s in workers})
    raw['rss'] = {}  # each engine builds the graph first thing in a fresh process, without tracemalloc
    for s in scalar:
        log(f"growth of resident memory for a graph of {n:,} nodes: {NAMES[s]}, in a fresh process")
        worker = Worker(*specs[s])
        try: raw['rss'][s] = worker(workload='rss', n=n)
        finally: worker.close()
    assert not any(infos[s]['torch_imported'] for s in infos if 'torch' not in s), "a micrograd worker imported torch"
    assert infos['orig']['version'] == '0.1.0' != infos['ours']['version'], (infos['orig'], infos['ours'])
    return dict(config=cfg, systems=infos, raw=raw, machine=machine(infos, ours, baseline, load_before),
                run_seconds=time.perf_counter() - start)


def machine(infos, ours, baseline, load_before):
    "Processor, Python, numpy, torch and BLAS, the commits measured, and the load average before and after"
    cpu = platform.processor() or platform.machine()
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): pass
    def commit(path):
        if path is None: return None
        git = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=path, capture_output=True, text=True)
        return git.stdout.strip() or 'not in git'
    blas = [p for p in infos['ours']['blas'] if p.get('user_api') == 'blas']
    return dict(cpu=cpu, cores=os.cpu_count(), python=f"{platform.python_implementation()} {platform.python_version()}",
                os=platform.platform(), numpy=infos['ours']['numpy'], torch=infos['torch']['version'],
                torch_threads=infos['torch']['threads'], torch_build=infos['torch']['build'],
                blas=', '.join(f"{p['internal_api']} {p['version']}, kernel {p['architecture']}" for p in blas) or 'none loaded',
                date=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), ours=str(ours), ours_commit=commit(ours),
                baseline=baseline and str(baseline), baseline_commit=commit(baseline), load_before=load_before,
                load_after=os.getloadavg()[0], unset=list(UNSET))


def median(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def spread(ratios):
    "min, median and max of the per-round ratios"
    return dict(min=min(ratios), median=statistics.median(ratios), max=max(ratios), rounds=len(ratios)) if ratios else None


def summarize(res):
    "Medians per system, ratios round by round, targets"
    raw = res['raw']
    s = {}
    for key, runs in raw['moons'].items():
        s[key] = {m: median(runs, m) for m in ('step_ms', 'forward_ms', 'backward_ms', 'gc_ms', 'gc_share')}
        s[key].update(build_backward_ms=s[key]['forward_ms'] + s[key]['backward_ms'], nodes=runs[0].get('nodes'),
                      first_loss=runs[0]['first_loss'])
    for key, runs in raw['chain'].items():
        s[key].update(chain_n=runs[0]['n'], chain_build_s=median(runs, 'build_s'), chain_backward_s=median(runs, 'backward_s'),
                      chain_error=runs[0]['error'], chain_grad_ok=runs[0].get('grad_ok'))
    for key, runs in raw['graph'].items():
        s[key].update(graph_nodes=runs[0]['nodes'], graph_build_s=median(runs, 'build_s'),
                      graph_backward_s=median(runs, 'backward_s'), rss_bytes_per_node=raw['rss'][key]['rss_bytes_per_node'],
                      tracemalloc_bytes_per_node=runs[0].get('tracemalloc_bytes_per_node'))
    for key, runs in raw['draw'].items(): s[key].update(draw_s=median(runs, 'draw_dot_s'), draw_nodes=runs[0]['nodes'])
    rows = []
    for name, points, width, reps, steps in res['config']['sizes']:
        runs = raw['batched'][name]
        ms = {k: median(r, 'step_ms') for k, r in runs.items()}
        rounds = list(zip(*[runs[k] for k in runs]))  # one tuple per round, in the order of `runs`
        by_round = lambda system: [min(x['step_ms'] for k, x in zip(runs, rnd) if k.startswith(system)) for rnd in rounds]
        row = dict(name=name, points=points, width=width, reps=reps, steps=steps, ms=ms,
                   steps_done={k: median(r, 'steps') for k, r in runs.items()},
                   speedup=min(ms['torch'], ms['torch, 1 thread']) / min(ms['ours'], ms['ours, 1 thread']),
                   rounds=spread([t / o for o, t in zip(by_round('ours'), by_round('torch'))]),
                   same_first_loss=max(abs(r[0]['first_loss'] - runs['ours'][0]['first_loss']) for r in runs.values()) < 1e-9,
                   first_loss=runs['ours'][0]['first_loss'])
        if 'baseline' in runs:
            row['baseline_speedup'] = min(ms['baseline'], ms['baseline, 1 thread']) / min(ms['ours'], ms['ours, 1 thread'])
            row['baseline_rounds'] = spread([b / o for o, b in zip(by_round('ours'), by_round('baseline'))])
        rows.append(row)
    s['torch_batched'] = dict(step_ms=rows[0]['ms']['torch'], first_loss=rows[0]['first_loss'])
    step = lambda key: [r['step_ms'] for r in raw['moons'][key]]
    rounds = {key: spread([b / a for a, b in zip(step('ours'), step(key))]) for key in raw['moons'] if key != 'ours'}
    ours, orig = s['ours'], s['orig']
    first_losses = [s[k]['first_loss'] for k in s]
    targets = dict(
        moons_speedup=dict(value=orig['step_ms'] / ours['step_ms'], target=TARGETS['moons_speedup']),
        build_backward_speedup=dict(value=orig['build_backward_ms'] / ours['build_backward_ms'],
                                    target=TARGETS['build_backward_speedup']),
        bytes_per_node=dict(value=ours['tracemalloc_bytes_per_node'], target=TARGETS['bytes_per_node'],
                            ok=ours['tracemalloc_bytes_per_node'] < TARGETS['bytes_per_node']),
        million_deep_chain=dict(value=ours['chain_n'], ok=None if ours['chain_n'] < 1_000_000 else
                                bool(ours['chain_grad_ok'] and ours['chain_error'] is None)),
        tensor_speedup=dict(value=rows[0]['speedup'], target=TARGETS['tensor_speedup']),
        same_first_loss=dict(value=first_losses, ok=max(first_losses) - min(first_losses) < 1e-9
                             and all(r['same_first_loss'] for r in rows)))
    for t in targets.values():
        if 'ok' not in t: t['ok'] = t['value'] >= t['target']
    gpt = {key: dict(step_ms=median(r, 'step_ms'), forward_ms=median(r, 'forward_ms'), backward_ms=median(r, 'backward_ms'),
                     gc_ms=median(r, 'gc_ms'), gc_share=median(r, 'gc_share'), first_loss=r[0]['first_loss'],
                     nodes=r[0].get('nodes'), reps=len(r), steps=r[0]['steps'])
           for key, r in raw['gpt'].items()}
    gpt_step = lambda key: [r['step_ms'] for r in raw['gpt'][key]]
    gpt['rounds'] = {key: spread([b / a for a, b in zip(gpt_step('gpt_tensor'), gpt_step(key))]) for key in ('gpt_values', 'gpt_torch')}
    gpt['names'] = raw['gpt_names']
    gpt_losses = [gpt[k]['first_loss'] for k in raw['gpt']]
    targets.update(
        gpt_vs_values=dict(value=gpt['gpt_values']['step_ms'] / gpt['gpt_tensor']['step_ms'], target=TARGETS['gpt_vs_values']),
        gpt_vs_torch=dict(value=gpt['gpt_torch']['step_ms'] / gpt['gpt_tensor']['step_ms'], target=TARGETS['gpt_vs_torch']),
        gpt_same_first_loss=dict(value=gpt_losses, ok=max(gpt_losses) - min(gpt_losses) < 1e-9))
    for t in targets.values():
        if 'ok' not in t: t['ok'] = t['value'] >= t['target']
    res['summary'] = dict(scalar=s, batched=rows, rounds=rounds, profile=raw['profile'], orig_max_depth=raw['orig_max_depth'],
                          gpt=gpt)
    res['targets'] = targets
    return res


def fmt(x, unit=''):
    if x is None: return '–'
    return (f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 1 else f"{x:.3g}") + unit


def ratio(other, ours, words=('faster', 'slower')):
    "How ours compares with `other`, in words (both are costs: smaller is better)"
    if not other or not ours: return '–'
    r = other / ours
    return f"{fmt(r)}x {words[0]}" if r >= 1 else f"{fmt(1 / r)}x {words[1]}"


SCALAR_ROWS = [  # label, metric, words of the ratio (None: no ratio)
    ('1. moons step: forward + backward + SGD (ms/step)', 'step_ms', ('faster', 'slower')),
    ('   building the loss graph (ms)', 'forward_ms', ('faster', 'slower')),
    ('   backward (ms)', 'backward_ms', ('faster', 'slower')),
    ('   build + backward (ms)', 'build_backward_ms', ('faster', 'slower')),
    ('   of it in the garbage collector (ms)', 'gc_ms', None),
    ('   nodes in the step graph', 'nodes', None),
    ('2. chain {n:,} ops deep: build (s)', 'chain_build_s', ('faster', 'slower')),
    ('   backward (s)', 'chain_backward_s', ('faster', 'slower')),
    ('3. graph of {n:,} nodes: bytes per node (tracemalloc)', 'tracemalloc_bytes_per_node', ('less', 'more')),
    ('   bytes per node (growth of RSS, a fresh process each)', 'rss_bytes_per_node', ('less', 'more')),
    ('   build (s)', 'graph_build_s', ('faster', 'slower')),
    ('   backward (s)', 'graph_backward_s', ('faster', 'slower')),
    ('4. draw_dot source, {draw:,} nodes (s)', 'draw_s', ('faster', 'slower')),
]


def scalar_table(res):
    s, depth = res['summary']['scalar'], res['summary']['orig_max_depth']
    systems = [k for k in ('ours', 'baseline', 'orig', 'torch_batched', 'torch_scalar') if k in s]
    def cell(system, metric):
        v = s[system].get(metric)
        if metric == 'gc_ms' and v is not None: return f"{fmt(v)} ({s[system]['gc_share']:.0%})"
        if metric == 'chain_backward_s' and s[system].get('chain_error'):
            return f"RecursionError past depth {depth['max_depth']:,}" if depth.get('max_depth') else 'RecursionError'
        if metric == 'draw_s' and system == 'orig': return 'not in package'
        return fmt(v)
    head = ['workload'] + [NAMES[k] for k in systems] + [f"ours vs {NAMES[k]}" for k in systems[1:]]
    lines = ['| ' + ' | '.join(head) + ' |', '|---|' + '---:|' * (len(head) - 1)]
    labels = dict(n=res['config']['n'], draw=res['config']['draw'][0])
    for label, metric, words in SCALAR_ROWS:
        ratios = [ratio(s[k].get(metric), s['ours'].get(metric), words) if words else '' for k in systems[1:]]
        lines.append('| ' + ' | '.join([label.format(**labels)] + [cell(k, metric) for k in systems] + ratios) + ' |')
    return '\n'.join(lines)


def profile_table(res):
    "Where a moons step's time goes, in CPU ms, with the garbage collector on and off"
    p = res['summary']['profile']
    rows = [('build the loss graph (forward)', 'forward'), ('backward(): all of it', 'backward'),
            ('   of which the walk: topological order, grads zeroed', 'topological_order'),
            ('free the graph (del, then gc.collect())', 'free')]
    head = [f"{NAMES[k]}{gc}" for k in p for gc in ('', ', gc off')]
    lines = ['| phase of one step (CPU ms, best of a few) | ' + ' | '.join(head) + ' |', '|---|' + '---:|' * len(head)]
    for label, key in rows:
        lines.append(f"| {label} | " + ' | '.join(fmt(p[k].get(f'{key}_gc_{m}')) for k in p for m in ('on', 'off')) + ' |')
    return '\n'.join(lines)


def batched_table(res):
    rows = res['summary']['batched']
    systems = list(rows[0]['ms'])
    head = ['workload (ms per training step)'] + [s.replace('ours', 'Tensor (ours)', 1) for s in systems]
    head += ['faster Tensor vs faster torch'] + (['ours vs baseline'] if 'baseline' in systems else [])
    lines = ['| ' + ' | '.join(head) + ' |', '|---|' + '---:|' * (len(head) - 1)]
    for r in rows:
        cells = [fmt(r['ms'][s]) for s in systems] + [ratio(r['speedup'], 1.0)]
        if 'baseline_speedup' in r: cells.append(ratio(r['baseline_speedup'], 1.0))
        lines.append(f"| {r['name']} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


GPT_ROWS = [('forward + backward + Adam (ms/step)', 'step_ms'), ('   building the loss graph (ms)', 'forward_ms'),
            ('   backward (ms)', 'backward_ms'), ('   of it in the garbage collector (ms)', 'gc_ms'),
            ('   nodes in the step graph', 'nodes')]


def gpt_table(res):
    "The GPT step of microgpt's size on Tensors, on Values and in torch float64, and how ours compares"
    g = res['summary']['gpt']
    systems = [('gpt_tensor', 'Tensor GPT (ours)'), ('gpt_values', 'ValueGPT (ours)'), ('gpt_torch', 'torch float64')]
    def cell(key, metric):
        v = g[key].get(metric)
        return f"{fmt(v)} ({g[key]['gc_share']:.0%})" if metric == 'gc_ms' and v is not None else fmt(v)
    head = ['GPT step, one name'] + [name for _, name in systems] + ['Tensor vs Values', 'Tensor vs torch']
    lines = ['| ' + ' | '.join(head) + ' |', '|---|' + '---:|' * (len(head) - 1)]
    for label, metric in GPT_ROWS:
        ratios = [ratio(g[k].get(metric), g['gpt_tensor'].get(metric)) if metric in ('step_ms', 'forward_ms', 'backward_ms')
                  else '' for k in ('gpt_values', 'gpt_torch')]
        lines.append('| ' + ' | '.join([label] + [cell(k, metric) for k, _ in systems] + ratios) + ' |')
    return '\n'.join(lines)


def rounds_table(res):
    "Each ratio round by round: how the machine's drift spreads it"
    summary = res['summary']
    rows = [(f"moons step, scalar: {NAMES[k]} / ours", r) for k, r in summary['rounds'].items()]
    for r in summary['batched']:
        rows.append((f"{r['name']}: faster torch / faster Tensor", r['rounds']))
        if r.get('baseline_rounds'): rows.append((f"{r['name']}: baseline Tensor / ours", r['baseline_rounds']))
    rows += [("GPT step: ValueGPT / Tensor GPT", summary['gpt']['rounds']['gpt_values']),
             ("GPT step: torch float64 / Tensor GPT", summary['gpt']['rounds']['gpt_torch'])]
    lines = ['| ratio of step times (over 1: ours is faster) | rounds | min | median | max |', '|---|---:|---:|---:|---:|']
    lines += [f"| {label} | {r['rounds']} | {r['min']:.2f} | {r['median']:.2f} | {r['max']:.2f} |" for label, r in rows if r]
    return '\n'.join(lines)


def notes(res):
    cfg, m, s = res['config'], res['machine'], res['summary']
    reps = dict(cfg['moons'], baseline=cfg['moons']['ours'])
    depth = s['orig_max_depth']
    return [
        f"Medians over interleaved repetitions, each system in its own process ({cfg['mode']} run). Scalar moons step, "
        "repetitions x steps: " + ', '.join(f"{NAMES[k]} {reps[k][0]}x{reps[k][1]}" for k in ['ours', *s['rounds']]) + "; "
        "batched: " + ', '.join(f"{r['reps']}x{r['steps']}" for r in s['batched']) + f" (a repetition stops after {BUDGET} s).",
        "The moons step: an MLP 2-16-16-1 (relu) on 100 moons points, hinge loss + 1e-4 * the sum of squared "
        "parameters, backward, SGD (lr 0.1); every system starts from the same weights and gives the same first loss: "
        + ('yes.' if res['targets']['same_first_loss']['ok'] else 'NO.'),
        "torch scalar: one 0-d float64 tensor per number; torch batched: float64 tensors of the whole batch "
        f"({m['torch_threads']} threads). '1 thread': OPENBLAS_NUM_THREADS=1 for numpy, torch.set_num_threads(1).",
        f"micrograd 0.1.0's recursive backward() fails at depth {depth.get('fails_at', 0):,} with the default recursion "
        "limit; its million-deep chain still builds.",
        "Garbage collector: the wall-clock time of its passes during the timed steps (gc callbacks), and its share.",
        "tracemalloc sees Python's allocations only, so torch gets the RSS growth only; RSS growth is measured with "
        "each engine building the graph first thing in a fresh process, without tracemalloc (approximate).",
        "micrograd 0.1.0 has no draw_dot in its package (it lives in a notebook of its repository).",
        f"The GPT step: microgpt's configuration (27 tokens, a context of 16, 16 wide, 4 heads, one block: 4,192 "
        f"weights) on one name per step, the first {s['gpt']['names']['names']} training names in turn "
        f"({s['gpt']['names']['mean_letters']:.1f} letters on average): the mean cross-entropy of the next tokens, "
        "backward, Adam (lr 0.01, betas (0.85, 0.99)). micrograd's GPT on Tensors and its ValueGPT of Values run in "
        "the micrograd worker, the same model written with torch's ops in the torch worker (float64, "
        f"{m['torch_threads']} threads); all three start from the same weights and give the same first loss: "
        + ('yes.' if res['targets']['gpt_same_first_loss']['ok'] else 'NO.') + " Repetitions x steps: "
        + ', '.join(f"{k[4:]} {g['reps']}x{g['steps']}" for k, g in s['gpt'].items() if k.startswith('gpt_')) + ".",
    ]


def report(res):
    "The tables, machine, notes and targets as markdown"
    m, t = res['machine'], res['targets']
    verdict = lambda x: 'n/a at these sizes' if x['ok'] is None else 'PASS' if x['ok'] else 'FAIL'
    measured = f"ours: {m['ours']} ({m['ours_commit']})" + (f"; baseline: {m['baseline']} ({m['baseline_commit']})"
                                                           if m['baseline'] else '')
    return '\n'.join([
        f"## micrograd benchmark ({res['config']['mode']} run)", '',
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['python']}, numpy {m['numpy']}, torch {m['torch']}, {m['os']}; "
        f"{m['date']}; load average (1 min) {m['load_before']:.1f} before, {m['load_after']:.1f} after.", '',
        f"BLAS: numpy's {m['blas']}; torch's build: {', '.join(m['torch_build'])}. Workers run without "
        f"{' and '.join(m['unset'])}. Measured: {measured}.", '',
        '### Scalar engines', '', res['tables']['scalar'], '', *[f"- {n}" for n in res['notes']], '',
        "### Where a moons step's time goes", '', res['tables']['profile'], '',
        "Each phase is timed on its own (the rows do not add up to a training step).", '',
        '### Batched: micrograd Tensor against PyTorch float64', '', res['tables']['batched'], '',
        "### A GPT training step: Tensor, Values and PyTorch", '', res['tables']['gpt'], '',
        '### The ratios round by round', '', res['tables']['rounds'], '',
        '### Targets', '',
        f"- scalar moons step >= {t['moons_speedup']['target']:g}x faster than 0.1.0: {t['moons_speedup']['value']:.1f}x: "
        f"{verdict(t['moons_speedup'])}",
        f"- its graph built and backpropagated >= {t['build_backward_speedup']['target']:g}x faster: "
        f"{t['build_backward_speedup']['value']:.1f}x: {verdict(t['build_backward_speedup'])}",
        f"- under {t['bytes_per_node']['target']:g} bytes per node: {t['bytes_per_node']['value']:.1f}: "
        f"{verdict(t['bytes_per_node'])}",
        f"- a chain {t['million_deep_chain']['value']:,} ops deep backpropagates (right gradients), a million needed: "
        f"{verdict(t['million_deep_chain'])}",
        f"- batched moons step >= {t['tensor_speedup']['target']:g}x faster than torch: {t['tensor_speedup']['value']:.2f}x: "
        f"{verdict(t['tensor_speedup'])}",
        f"- the same first loss everywhere: {verdict(t['same_first_loss'])}",
        f"- GPT step on Tensors >= {t['gpt_vs_values']['target']:g}x faster than on Values: "
        f"{t['gpt_vs_values']['value']:.0f}x: {verdict(t['gpt_vs_values'])}",
        f"- GPT step on Tensors >= {t['gpt_vs_torch']['target']:g}x faster than torch float64: "
        f"{t['gpt_vs_torch']['value']:.2f}x: {verdict(t['gpt_vs_torch'])}",
        f"- the same first GPT loss everywhere: {verdict(t['gpt_same_first_loss'])}", '',
        f"Run time: {res['run_seconds']:.0f} s. Rerun: `python bench/run.py` (`--quick` for a short run).", ''])


def checkout(commit, folder):
    "Commit `commit` of this repository, extracted into `folder`/`commit` (git archive): a baseline to measure"
    archive = subprocess.run(['git', 'archive', commit], cwd=REPO, capture_output=True)
    if archive.returncode: sys.exit(f"--baseline {commit}: no such folder, nor a commit git knows ({archive.stderr.decode().strip()})")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(Path(folder) / commit, **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))
    return Path(folder) / commit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='small sizes and few repetitions; writes nothing unless --out')
    p.add_argument('--out', help='folder for results.json and results.md (default: bench/ for a full run)')
    p.add_argument('--ours', type=Path, default=REPO, help='checkout whose micrograd package is "ours" (default: this one)')
    p.add_argument('--baseline', help='another checkout (a folder, or a commit of this repository), measured as '
                                      '"baseline" beside ours')
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = args.baseline and (Path(args.baseline) if Path(args.baseline).is_dir() else checkout(args.baseline, tmp))
        for path in filter(None, (args.ours, baseline)):
            if not (path / 'micrograd' / 'engine.py').exists(): p.error(f"{path} holds no micrograd/engine.py")
        res = run(config(args.quick), args.ours.resolve(), baseline and baseline.resolve())
    if baseline and not Path(args.baseline).is_dir(): res['machine']['baseline_commit'] = f"{args.baseline}, git archive"
    summarize(res)
    res['notes'] = notes(res)
    res['tables'] = dict(scalar=scalar_table(res), profile=profile_table(res), batched=batched_table(res),
                         gpt=gpt_table(res), rounds=rounds_table(res))
    res['report'] = text = report(res)
    print(text)
    out = args.out or (None if args.quick else BENCH)
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / 'results.json').write_text(json.dumps(res, indent=1) + '\n')
        (out / 'results.md').write_text(text)
        log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 0 if all(t['ok'] is not False for t in res['targets'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())
