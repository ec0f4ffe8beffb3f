"""Running `micrograd-demo` as a user would, for the tests of the command: the console script settings.ini declares,
an output folder an earlier run filled, faults injected at chosen moments, and what a run leaves behind.

Faults come from a `sitecustomize` module placed first on the child's PYTHONPATH; Python imports it while it
starts, before the command's script runs. MICROGRAD_FAULT says what it does:

- `import NAME`: Ctrl-C (a real SIGINT, raised in the process) when the module NAME is first imported;
- `sigint before|after FUNCTION N`: Ctrl-C just before, or just after, the N-th call of FUNCTION;
- `fail before FUNCTION N`: the N-th call of FUNCTION fails with "No space left on device" instead of running.

FUNCTION is `open` (only the temporary files, which are opened with mode 'x'), or `os.replace`, `os.link`,
`os.fsync`. MICROGRAD_READY names a file it creates once Python has started, for SIGINTs sent after a delay.
"""
import configparser, os, signal, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = {'moons': ['moons_boundary.png', 'moons_loss.png', 'moons_model.json'],
         'digits': ['digits_loss.png', 'digits_model.json', 'digits_predictions.png'],
         'names': ['names_loss.png', 'names_attention.png', 'names_model.npz']}

SITECUSTOMIZE = r'''
import builtins, errno, os, signal, sys
fault, ready = os.environ.get('MICROGRAD_FAULT', ''), os.environ.get('MICROGRAD_READY')

def act(what):
    if what == 'sigint': signal.raise_signal(signal.SIGINT)
    else: raise OSError(errno.ENOSPC, 'No space left on device (injected)')

if fault.startswith('import '):
    name = fault.split()[1]
    class CtrlC:
        def find_spec(self, fullname, path=None, target=None):
            if fullname == name:
                sys.meta_path.remove(self)
                act('sigint')
            return None
    sys.meta_path.insert(0, CtrlC())
elif fault:
    what, when, function, n = fault.split()
    n, calls = int(n), [0]
    def wrap(real, counted=lambda *args, **kwargs: True):
        def call(*args, **kwargs):
            if not counted(*args, **kwargs): return real(*args, **kwargs)
            calls[0] += 1
            if calls[0] == n and when == 'before': act(what)
            result = real(*args, **kwargs)
            if calls[0] == n and when == 'after': act(what)
            return result
        return call
    if function == 'open': builtins.open = wrap(builtins.open, lambda file, mode='r', *args, **kwargs: 'x' in mode)
    else: setattr(os, function[3:], wrap(getattr(os, function[3:])))
if ready: open(ready, 'w').close()
'''


def console_script(folder):
    "The command line that runs the script pip writes for settings.ini's console_scripts entry, written into `folder`"
    config = configparser.ConfigParser(delimiters=['='])
    config.read(ROOT / 'settings.ini')
    name, target = config['DEFAULT']['console_scripts'].split('=')
    module, function = target.split(':')
    script = Path(folder) / name
    script.write_text(f"import sys\nfrom {module} import {function}\nif __name__ == '__main__':\n    sys.exit({function}())\n")
    return [sys.executable, str(script)]


def child_env(base, folder, fault=None, ready=None):
    "The environment of a child run: this checkout's package, the fault injector, no stray settings"
    (Path(folder) / 'sitecustomize.py').write_text(SITECUSTOMIZE)
    env = dict(base)
    env['PYTHONPATH'] = os.pathsep.join([str(folder), str(ROOT), env.get('PYTHONPATH', '')])
    env.pop('PYTHONSTARTUP', None)
    env['MPLBACKEND'] = 'Agg'
    for key, value in (('MICROGRAD_FAULT', fault), ('MICROGRAD_READY', ready)):
        if value: env[key] = str(value)
        else: env.pop(key, None)
    return env


class Run:
    "What a run of the command did: its exit status, its output and how long it took"
    def __init__(self, returncode, stdout, stderr, seconds):
        self.returncode, self.stdout, self.stderr, self.seconds = returncode, stdout, stderr, seconds
    @property
    def lines(self): return self.stderr.strip().splitlines()
    @property
    def traceback(self): return 'Traceback' in self.stderr
    def __repr__(self): return f"exit {self.returncode}, stderr {self.stderr[-1500:]!r}"


def run(command, args, env, cwd, timeout=120, sigint_after=None, ready=None, preexec_fn=None):
    "Run the command; with `sigint_after`, send it SIGINT that many seconds after the file `ready` appears"
    def prepare():  # Ctrl-C as a terminal delivers it, even if this process was started with SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if preexec_fn: preexec_fn()
    start = time.perf_counter()
    child = subprocess.Popen(command + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=cwd, preexec_fn=prepare)
    if sigint_after is not None:
        while not Path(ready).exists() and child.poll() is None and time.perf_counter() - start < timeout: time.sleep(0.001)
        time.sleep(sigint_after)
        if child.poll() is None: child.send_signal(signal.SIGINT)
    try: stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        raise AssertionError(f"micrograd-demo {' '.join(map(str, args))} still running after {timeout} s")
    return Run(child.returncode, stdout, stderr, time.perf_counter() - start)


def contents(folder):
    "Every file in `folder`: {name: (inode, bytes)}"
    folder = Path(folder)
    if not folder.is_dir(): return {}
    def entry(p):
        if p.is_symlink(): return 'a link to', os.readlink(p)
        return p.stat().st_ino, p.read_bytes() if p.is_file() else None
    return {p.name: entry(p) for p in sorted(folder.iterdir())}


def whole(name, data):
    "Is `data` a complete file of its kind: a PNG with its end chunk, a weights archive numpy reads, a model file that parses"
    if data is None: return False
    if name.endswith('.png'): return data.startswith(b'\x89PNG') and data.endswith(b'IEND\xaeB`\x82')
    if name.endswith('.npz'):
        import io, zipfile, numpy as np
        try:
            with np.load(io.BytesIO(data)) as weights: return len(weights.files) > 0
        except (ValueError, OSError, zipfile.BadZipFile, EOFError): return False
    import json
    try: return json.loads(data)['format'] == 'micrograd'
    except (ValueError, KeyError, TypeError): return False


def outcome(before, after, names):
    "'old' if every file is as it was, 'new' if every one was replaced by a whole file, else what was lost"
    if sorted(after) != sorted(names): return f"the folder holds {sorted(after)}, not {sorted(names)}"
    kinds = {'old' if after[n] == before.get(n) else 'new' if whole(n, after[n][1]) and after[n][1] != before.get(n, (0, b''))[1]
             else 'broken' for n in names}
    return kinds.pop() if len(kinds) == 1 and kinds <= {'old', 'new'} else f"files {sorted(kinds)}: a mix, or damaged"
