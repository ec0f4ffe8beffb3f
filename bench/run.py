"""Benchmark micrograd (this repo) against micrograd 0.1.0 and PyTorch, and print one table.

    python bench/run.py            # full run (a few minutes), writes bench/results.json and bench/results.md
    python bench/run.py --quick    # smaller sizes and fewer repetitions (under a minute); writes nothing without --out

Each system runs in its own worker process (`worker.py`); repetitions are interleaved A B C A B C and the
table reports medians. micrograd 0.1.0 is installed from PyPI into bench/.micrograd-0.1.0/ the first time.
"""
import argparse, json, os, platform, statistics, subprocess, sys, time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ORIG_DIR = BENCH / '.micrograd-0.1.0'
SYSTEMS = ('ours', 'orig', 'torch')
NAMES = dict(ours='micrograd (ours)', orig='micrograd 0.1.0', torch_batched='torch batched', torch_scalar='torch scalar')
TARGETS = dict(moons_speedup=15.0, moons_speedup_aim=20.0, build_backward_speedup=12.0,
               bytes_per_node=150.0, bytes_per_node_aim=100.0)

def config(quick):
    "Sizes and repetitions per workload and system"
    if quick:
        return dict(mode='quick',
                    moons=dict(ours=(3, 3), orig=(2, 1), torch_scalar=(2, 1), torch_batched=(3, 100)),
                    chain=dict(n=100_000, ours=2, orig=1, torch=1),
                    graph=dict(n=100_000, ours=2, orig=1, torch=1), rss=dict(n=100_000), draw=dict(n=10_000, ours=2),
                    profile_reps=1)
    return dict(mode='full',  # (repetitions, steps per repetition)
                moons=dict(ours=(15, 3), orig=(15, 1), torch_scalar=(3, 2), torch_batched=(15, 100)),
                chain=dict(n=1_000_000, ours=3, orig=1, torch=1),
                graph=dict(n=1_000_000, ours=3, orig=1, torch=1), rss=dict(n=1_000_000), draw=dict(n=10_000, ours=5),
                profile_reps=3)

def installed_version(folder):
    "The version of the micrograd distribution that `pip install --target` put in `folder`, or None"
    from importlib.metadata import distributions
    found = [d.version for d in distributions(path=[str(folder)]) if d.metadata['Name'] == 'micrograd']
    return found[0] if found else None

def ensure_orig():
    "Install micrograd 0.1.0 (no dependencies) into its private folder if it is missing"
    if (ORIG_DIR / 'micrograd' / 'engine.py').exists() and installed_version(ORIG_DIR) == '0.1.0': return
    print(f"installing micrograd==0.1.0 into {ORIG_DIR.relative_to(REPO)} ...", flush=True)
    # --target installs beside whatever micrograd this environment has (ours is 0.2.0 and up, editable or not)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--upgrade', '--target',
                    str(ORIG_DIR), 'micrograd==0.1.0'], check=True)
    if installed_version(ORIG_DIR) != '0.1.0':
        raise SystemExit(f"{ORIG_DIR} should hold micrograd 0.1.0, but holds {installed_version(ORIG_DIR)}")

class Worker:
    "One system in its own process, driven by JSON lines"
    def __init__(self, system):
        self.system = system
        self.proc = subprocess.Popen([sys.executable, str(BENCH / 'worker.py'), system], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=str(BENCH))
        self.info = self._read()['info']

    def _read(self):
        line = self.proc.stdout.readline()
        if not line: raise RuntimeError(f"worker {self.system} died (exit code {self.proc.wait()})")
        return json.loads(line)

    def __call__(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + '\n')
        self.proc.stdin.flush()
        reply = self._read()
        if not reply['ok']:
            sys.stderr.write(reply['traceback'])
            raise RuntimeError(f"{self.system} {cmd['workload']}: {reply['error']}")
        return reply['result']

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()

def machine(torch_info, load_before):
    "CPU model, cores, Python and torch versions, date, and the load average before and after the run"
    cpu = platform.processor() or platform.machine()
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'): cpu = line.split(':', 1)[1].strip(); break
    except OSError: pass
    try: commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True,
                                 text=True).stdout.strip() or None
    except OSError: commit = None
    return dict(cpu=cpu, cores=os.cpu_count(), python=platform.python_version(),
                implementation=platform.python_implementation(), os=platform.platform(),
                torch=torch_info['engine'].split()[-1], torch_threads=torch_info.get('threads'),
                date=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), commit=commit,
                load_before=load_before, load_after=list(os.getloadavg()))

def median(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None

def log(msg): print(msg, file=sys.stderr, flush=True)

def interleaved(workers, reps, name, command):
    "Each system's results, repetitions interleaved across systems: `reps[system]` of `command(repetition)`"
    results = {s: [] for s in SYSTEMS}
    for rep in range(max(reps[s] for s in SYSTEMS)):
        for s in SYSTEMS:
            if rep >= reps[s]: continue
            log(f"{name}: {s}, repetition {rep + 1}/{reps[s]}")
            results[s].append(workers[s](**command(rep)))
    return results

def run(quick=False):
    cfg = config(quick)
    ensure_orig()
    sys.path.insert(0, str(REPO))
    from micrograd.data import make_moons
    X, y = make_moons(100, noise=0.1, seed=1)
    t_start, load_before = time.perf_counter(), list(os.getloadavg())
    workers = {s: Worker(s) for s in SYSTEMS}
    raw = {}
    try:
        # 1. moons step, interleaved: ours, 0.1.0, torch batched, torch scalar, ours, ...
        plan = [('ours', 'ours', 'moons'), ('orig', 'orig', 'moons'), ('torch_batched', 'torch', 'moons_batched'),
                ('torch_scalar', 'torch', 'moons')]
        moons = {key: [] for key, _, _ in plan}
        for rep in range(max(r for r, _ in cfg['moons'].values())):
            for key, system, workload in plan:
                reps, steps = cfg['moons'][key]
                if rep >= reps: continue
                log(f"moons step: {NAMES[key]}, repetition {rep + 1}/{reps} ({steps} steps)")
                moons[key].append(workers[system](workload=workload, X=X, y=y, steps=steps, seed=1337,
                                                  warmup=1 if rep == 0 else 0, count=rep == 0))
        raw['moons'] = moons
        log("where a moons step's time goes: ours, 0.1.0")
        raw['profile'] = {s: workers[s](workload='profile', X=X, y=y, seed=1337, reps=cfg['profile_reps'])
                          for s in ('ours', 'orig')}

        # 2. chain n deep
        n = cfg['chain']['n']
        raw['chain'] = interleaved(workers, cfg['chain'], f"chain {n:,} deep", lambda rep: dict(workload='chain', n=n))
        log("chain: deepest backward() micrograd 0.1.0 manages")
        raw['orig_max_depth'] = workers['orig'](workload='max_depth')

        # 3. graph of n nodes; memory measured on the first repetition only (tracemalloc is slow)
        n = cfg['graph']['n']
        raw['graph'] = interleaved(workers, cfg['graph'], f"graph of {n:,} nodes",
                                   lambda rep: dict(workload='graph', n=n, memory=rep == 0))

        # 4. draw_dot source: only ours has draw_dot in its package
        n = cfg['draw']['n']
        raw['draw'] = []
        for rep in range(cfg['draw']['ours']):
            log(f"draw_dot of {n:,} nodes: ours, repetition {rep + 1}/{cfg['draw']['ours']}")
            r = workers['ours'](workload='draw', n=n)
            if r is None: break
            raw['draw'].append(r)
        infos = {s: workers[s](workload='info') for s in SYSTEMS}
    finally:
        for w in workers.values(): w.close()

    # 5. memory as the operating system sees it: each engine builds the graph first thing in a fresh process,
    # without tracemalloc (its records would count) and before any other workload (whose freed memory it would reuse)
    n = cfg['rss']['n']
    raw['rss'] = {}
    for s in SYSTEMS:
        log(f"growth of resident memory for a graph of {n:,} nodes: {s}, in a fresh process")
        worker = Worker(s)
        try: raw['rss'][s] = worker(workload='rss', n=n)
        finally: worker.close()
    assert not infos['ours']['torch_imported'] and not infos['orig']['torch_imported'], "a pure-Python worker imported torch"
    assert infos['orig']['version'] == '0.1.0' and infos['ours']['version'] != '0.1.0', \
        f"expected ours beside micrograd 0.1.0, got ours {infos['ours']['version']}, orig {infos['orig']['version']}"
    return dict(config=cfg, machine=machine(infos['torch'], load_before), systems=infos, raw=raw,
                run_seconds=time.perf_counter() - t_start)

def summarize(res):
    "Medians, ratios and targets from the raw repetitions"
    raw, cfg = res['raw'], res['config']
    m = {key: dict(step_ms=median(runs, 'step_ms'), forward_ms=median(runs, 'forward_ms'),
                   backward_ms=median(runs, 'backward_ms'), gc_ms=median(runs, 'gc_ms'),
                   gc_share=median(runs, 'gc_share'), nodes=runs[0].get('nodes'), first_loss=runs[0]['losses'][0])
         for key, runs in raw['moons'].items()}
    for v in m.values():
        v['build_backward_ms'] = None if v['forward_ms'] is None else v['forward_ms'] + v['backward_ms']
    chain = {s: dict(n=runs[0]['n'], build_s=median(runs, 'build_s'), backward_s=median(runs, 'backward_s'),
                     error=runs[0].get('error'), grad_ok=runs[0].get('grad_ok'))
             for s, runs in raw['chain'].items()}
    graph = {s: dict(nodes=runs[0]['nodes'], build_s=median(runs, 'build_s'), backward_s=median(runs, 'backward_s'),
                     tracemalloc_bytes_per_node=runs[0].get('tracemalloc_bytes_per_node'),
                     rss_bytes_per_node=raw['rss'][s]['rss_bytes_per_node'], rss_nodes=raw['rss'][s]['nodes'])
             for s, runs in raw['graph'].items()}
    draw = dict(nodes=raw['draw'][0]['nodes'], seconds=median(raw['draw'], 'draw_dot_s'),
                source_chars=raw['draw'][0]['source_chars']) if raw['draw'] else None
    ours, orig = m['ours'], m['orig']
    speedup = orig['step_ms'] / ours['step_ms']
    pairs = [g['step_ms'] / o['step_ms'] for o, g in zip(raw['moons']['ours'], raw['moons']['orig'])]
    bb_speedup = orig['build_backward_ms'] / ours['build_backward_ms']
    bpn = graph['ours']['tracemalloc_bytes_per_node']
    targets = dict(
        moons_speedup=dict(value=speedup, target=TARGETS['moons_speedup'], aim=TARGETS['moons_speedup_aim'],
                           ok=speedup >= TARGETS['moons_speedup'], pairs=pairs,
                           pairs_median=statistics.median(pairs), pairs_min=min(pairs), pairs_max=max(pairs)),
        build_backward_speedup=dict(value=bb_speedup, target=TARGETS['build_backward_speedup'],
                                    ok=bb_speedup >= TARGETS['build_backward_speedup']),
        bytes_per_node=dict(value=bpn, target=TARGETS['bytes_per_node'], aim=TARGETS['bytes_per_node_aim'],
                            nodes=graph['ours']['nodes'], ok=bpn < TARGETS['bytes_per_node']),
        million_deep_chain=dict(value=chain['ours']['n'], ok=(chain['ours']['grad_ok'] is True
                                and chain['ours']['error'] is None) if chain['ours']['n'] >= 1_000_000 else None),
        same_first_loss=dict(value=[ours['first_loss'], orig['first_loss'], m['torch_scalar']['first_loss']],
                             ok=abs(ours['first_loss'] - orig['first_loss']) < 1e-9
                             and abs(ours['first_loss'] - m['torch_scalar']['first_loss']) < 1e-9))
    res['summary'] = dict(moons=m, chain=chain, graph=graph, draw=draw, orig_max_depth=raw['orig_max_depth'],
                          profile=raw['profile'])
    res['targets'] = targets
    return res

def fmt(x, unit=''):
    if x is None: return '–'
    if x >= 100: s = f"{x:,.0f}"
    elif x >= 10: s = f"{x:.1f}"
    elif x >= 1: s = f"{x:.2f}"
    else: s = f"{x:.3g}"
    return s + unit

def ratio(other, ours, better='faster', worse='slower'):
    "How ours compares with `other`, in words (both are costs: smaller is better)"
    if other is None or ours is None or ours == 0: return '–'
    r = other / ours
    return f"{fmt(r)}x {better}" if r >= 1 else f"{fmt(1 / r)}x {worse}"

def gc_cell(m):
    "Time in the garbage collector per step, and its share of the step"
    return '–' if m.get('gc_ms') is None else f"{fmt(m['gc_ms'])} ({m['gc_share']:.0%})"

def table(res):
    "The results as a markdown table"
    s = res['summary']
    m, chain, graph, draw = s['moons'], s['chain'], s['graph'], s['draw']
    o, g, tb, ts = m['ours'], m['orig'], m['torch_batched'], m['torch_scalar']
    md = s['orig_max_depth']
    nc, ng = chain['ours']['n'], graph['ours']['nodes']
    orig_chain_bwd = (f"RecursionError past depth {md['max_depth']:,}" if md.get('max_depth') else
                      fmt(chain['orig']['backward_s'], ' s'))
    rows = [
        ('1. moons step: forward + backward + SGD (ms/step)', fmt(o['step_ms']), fmt(g['step_ms']),
         fmt(tb['step_ms']), fmt(ts['step_ms']), ratio(g['step_ms'], o['step_ms']),
         ratio(tb['step_ms'], o['step_ms']), ratio(ts['step_ms'], o['step_ms'])),
        ('   building the loss graph (ms)', fmt(o['forward_ms']), fmt(g['forward_ms']), '–', fmt(ts['forward_ms']),
         ratio(g['forward_ms'], o['forward_ms']), '–', ratio(ts['forward_ms'], o['forward_ms'])),
        ('   backward (ms)', fmt(o['backward_ms']), fmt(g['backward_ms']), '–', fmt(ts['backward_ms']),
         ratio(g['backward_ms'], o['backward_ms']), '–', ratio(ts['backward_ms'], o['backward_ms'])),
        ('   build + backward (ms)', fmt(o['build_backward_ms']), fmt(g['build_backward_ms']), '–',
         fmt(ts['build_backward_ms']), ratio(g['build_backward_ms'], o['build_backward_ms']), '–',
         ratio(ts['build_backward_ms'], o['build_backward_ms'])),
        ('   of it in the garbage collector (ms)', gc_cell(o), gc_cell(g), '–', gc_cell(ts), '', '', ''),
        ('   nodes in the step graph', fmt(o['nodes']), fmt(g['nodes']), '–', '–', '', '', ''),
        (f'2. chain {nc:,} ops deep: build (s)', fmt(chain['ours']['build_s']), fmt(chain['orig']['build_s']),
         '–', f"{fmt(chain['torch']['build_s'])} (n={chain['torch']['n']:,})" if chain['torch']['n'] != nc
         else fmt(chain['torch']['build_s']), ratio(chain['orig']['build_s'], chain['ours']['build_s']), '–',
         ratio(chain['torch']['build_s'] * nc / chain['torch']['n'], chain['ours']['build_s'])),
        ('   backward (s)', fmt(chain['ours']['backward_s']), orig_chain_bwd, '–',
         fmt(chain['torch']['backward_s']), '–', '–',
         ratio(chain['torch']['backward_s'] * nc / chain['torch']['n'], chain['ours']['backward_s'])),
        (f'3. graph of {ng:,} nodes: bytes per node (tracemalloc)', fmt(graph['ours']['tracemalloc_bytes_per_node']),
         fmt(graph['orig']['tracemalloc_bytes_per_node']), '–', '–',
         ratio(graph['orig']['tracemalloc_bytes_per_node'], graph['ours']['tracemalloc_bytes_per_node'],
               'less', 'more'), '–', '–'),
        ('   bytes per node (growth of RSS, a fresh process each)', fmt(graph['ours']['rss_bytes_per_node']),
         fmt(graph['orig']['rss_bytes_per_node']), '–', fmt(graph['torch']['rss_bytes_per_node']),
         ratio(graph['orig']['rss_bytes_per_node'], graph['ours']['rss_bytes_per_node'], 'less', 'more'), '–',
         ratio(graph['torch']['rss_bytes_per_node'], graph['ours']['rss_bytes_per_node'], 'less', 'more')),
        ('   build (s)', fmt(graph['ours']['build_s']), fmt(graph['orig']['build_s']), '–',
         fmt(graph['torch']['build_s']), ratio(graph['orig']['build_s'], graph['ours']['build_s']), '–',
         ratio(graph['torch']['build_s'], graph['ours']['build_s'])),
        ('   backward (s)', fmt(graph['ours']['backward_s']), fmt(graph['orig']['backward_s']), '–',
         fmt(graph['torch']['backward_s']), ratio(graph['orig']['backward_s'], graph['ours']['backward_s']), '–',
         ratio(graph['torch']['backward_s'], graph['ours']['backward_s'])),
        (f"4. draw_dot source, {draw['nodes']:,} nodes (s)" if draw else '4. draw_dot source (s)',
         fmt(draw['seconds']) if draw else 'no micrograd.viz yet', 'not in package', '–', '–', '', '', ''),
    ]
    head = ('workload', 'ours', '0.1.0', 'torch batched', 'torch scalar', 'ours vs 0.1.0', 'ours vs torch batched',
            'ours vs torch scalar')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '|'.join(['---'] + ['---:'] * (len(head) - 1)) + '|']
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines)

def profile_table(res):
    "Where a moons step's time goes, in CPU ms, with the garbage collector on and off"
    p = res['summary']['profile']
    o, g = p['ours'], p['orig']
    rows = [('build the loss graph (forward)', 'forward'),
            ('backward(): all of it', 'backward'),
            ('   of which the walk: topological order, grads zeroed', 'topological_order'),
            ('free the graph (del, then gc.collect())', 'free')]
    lines = ['| phase of one step (CPU ms, best of a few) | ours | ours, gc off | 0.1.0 | 0.1.0, gc off |',
             '|---|---:|---:|---:|---:|']
    for label, key in rows:
        cells = [fmt(d.get(f'{key}_gc_{mode}')) for d in (o, g) for mode in ('on', 'off')]
        lines.append(f"| {label} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines)

def report(res):
    "Table, machine, notes and targets as markdown"
    mach, t, cfg = res['machine'], res['targets'], res['config']
    ok = lambda x: 'n/a in a quick run' if x['ok'] is None else 'PASS' if x['ok'] else 'FAIL'
    md = res['summary']['orig_max_depth']
    m = cfg['moons']
    notes = [
        f"Medians over interleaved repetitions, each system in its own process ({cfg['mode']} run). Moons step: "
        f"repetitions x steps = ours {m['ours'][0]}x{m['ours'][1]}, 0.1.0 {m['orig'][0]}x{m['orig'][1]}, "
        f"torch batched {m['torch_batched'][0]}x{m['torch_batched'][1]}, torch scalar "
        f"{m['torch_scalar'][0]}x{m['torch_scalar'][1]}; an MLP 2-16-16-1 (relu) on 100 moons, hinge loss + 1e-4 L2.",
        f"ours vs 0.1.0, one round at a time (each repetition of ours against the 0.1.0 repetition right after it): "
        f"median {t['moons_speedup']['pairs_median']:.1f}x, from {t['moons_speedup']['pairs_min']:.1f}x to "
        f"{t['moons_speedup']['pairs_max']:.1f}x over {len(t['moons_speedup']['pairs'])} rounds.",
        f"ours uses {res['systems']['ours']['model']}; all three scalar engines start from the same weights "
        f"and give the same first loss: {ok(t['same_first_loss'])}.",
        "torch scalar = one 0-d float64 tensor per value; torch batched = float64 tensors of the whole batch "
        f"({mach['torch_threads']} threads). 'x faster' / 'x less' compare ours with the column's system.",
        f"micrograd 0.1.0's recursive backward() fails at depth {md.get('fails_at', 0):,} with the default "
        f"recursion limit ({md.get('message')}); its million-deep chain still builds.",
        "Garbage collector: the wall-clock time of its passes during the timed steps (gc callbacks), and its share "
        "of the step.",
        "tracemalloc sees Python's allocations only, so torch (C++ allocations) gets the RSS growth only. RSS growth "
        "is measured apart: each engine builds the graph first thing in a fresh process of its own, without "
        "tracemalloc; it is approximate (allocator caches, pages).",
        "micrograd 0.1.0 has no draw_dot in its package (it lives in a notebook of its repository): ours alone.",
    ]
    if Path(res['systems']['ours']['path']).resolve() != REPO / 'micrograd':
        notes.insert(0, f"ours is NOT this repository's package but {res['systems']['ours']['path']} (--ours).")
    targets = [
        f"- moons step >= {t['moons_speedup']['target']:g}x faster than 0.1.0 (aim {t['moons_speedup']['aim']:g}x): "
        f"{t['moons_speedup']['value']:.1f}x: {ok(t['moons_speedup'])}",
        f"- building + backpropagating the moons step graph >= {t['build_backward_speedup']['target']:g}x faster: "
        f"{t['build_backward_speedup']['value']:.1f}x: {ok(t['build_backward_speedup'])}",
        f"- under {t['bytes_per_node']['target']:g} bytes per node for {t['bytes_per_node']['nodes']:,} nodes "
        f"(aim {t['bytes_per_node']['aim']:g}): {t['bytes_per_node']['value']:.1f}: {ok(t['bytes_per_node'])}",
        f"- a chain {t['million_deep_chain']['value']:,} ops deep builds and backpropagates (right gradients): "
        f"{ok(t['million_deep_chain'])}",
    ]
    machine_line = (f"{mach['cpu']}, {mach['cores']} cores, {mach['implementation']} {mach['python']}, "
                    f"torch {mach['torch']}, {mach['os']}; {mach['date']}"
                    + (f", commit {mach['commit']}" if mach['commit'] else '')
                    + f"; load average (1 min) {mach['load_before'][0]:.1f} before, {mach['load_after'][0]:.1f} after")
    return '\n'.join([f"## micrograd benchmark ({cfg['mode']} run)", '', f"Machine: {machine_line}", '',
                      table(res), '', *[f"- {n}" for n in notes], '', "### Where a moons step's time goes", '',
                      profile_table(res), '',
                      "Each phase is timed on its own (the rows do not add up to a training step, whose forward "
                      "also pays the collector for garbage left by earlier steps).", '', '### Targets', '', *targets, '',
                      f"Run time: {res['run_seconds']:.0f} s. Rerun: `python bench/run.py` (`--quick` for a short run).",
                      ''])

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='smaller sizes and fewer repetitions')
    p.add_argument('--out', help='folder for results.json and results.md (default: bench/ for a full run; a quick run '
                                 'writes nothing unless given one, so it never replaces the full results the docs show)')
    p.add_argument('--no-save', action='store_true', help='print only, write no files')
    p.add_argument('--ours', help='folder holding the micrograd package to measure as ours (default: this repo)')
    args = p.parse_args(argv)
    if args.ours: os.environ['MICROGRAD_BENCH_OURS'] = str(Path(args.ours).resolve())
    res = summarize(run(args.quick))
    res['table'], res['profile_table'] = table(res), profile_table(res)
    res['report'] = text = report(res)
    print(text)
    if args.out is None and not args.quick: args.out = str(BENCH)
    if args.out and not args.no_save:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / 'results.json').write_text(json.dumps(res, indent=1) + '\n')
        (out / 'results.md').write_text(text)
        print(f"wrote {out / 'results.json'} and {out / 'results.md'}", file=sys.stderr)
    return 0 if all(t['ok'] is not False for t in res['targets'].values()) else 1

if __name__ == '__main__':
    sys.exit(main())
