"""Every way a save or a load can fail leaves both the file and the model as they were.

Saves: an exception in the middle of writing (disk full, Ctrl-C), a failing fsync or rename, a 4 KB file-size
limit (in a child process), a folder that is missing, a path that is a folder. The old file must stay byte for
byte and no temporary file may be left next to it.
Loads: corrupt, truncated, binary, huge-declared, deeply nested, wrong-shape files, wrong, extra and missing
keys, non-finite and 401-digit numbers. `load_model` and `read_model` must raise a typed error that names the
function and the file, and leave the model's parameters unchanged.
"""
import errno, io, json, math, os, random, subprocess, sys, tempfile
from pathlib import Path
import pytest
from micrograd.nn import MLP, Layer, Neuron
from micrograd.io import save_model, load_model, read_model


def make_model(seed, shape=(3, [4, 2])):
    random.seed(seed)
    return MLP(*shape)


def snapshot(model): return [p.data for p in model.parameters()]


@pytest.fixture
def saved(tmp_path):
    "(folder, path, the file's bytes, the model saved in it): a good file in a folder of its own"
    folder = tmp_path / 'models'; folder.mkdir()
    model = make_model(1)
    path = save_model(model, folder / 'model.json')
    return folder, Path(path), Path(path).read_bytes(), model


COUNTS = None  # the session's fuzz_counts, set by the autouse fixture below


@pytest.fixture(autouse=True)
def _counts(fuzz_counts):
    global COUNTS
    COUNTS = fuzz_counts['io failures']


def assert_file_kept(folder, path, old_bytes):
    COUNTS['old files damaged'] += path.read_bytes() != old_bytes
    COUNTS['temporary files left'] += len([p for p in folder.iterdir() if p.name != path.name])
    assert path.read_bytes() == old_bytes, f"the old file changed: {path.read_bytes()[:120]!r}"
    assert sorted(p.name for p in folder.iterdir()) == [path.name], f"left behind: {sorted(p.name for p in folder.iterdir())}"


# ---------------------------------------------------------------- saves that are interrupted or cannot complete

class Injected(Exception): "The failure a test injects"


class BreakingFile:
    "A file that writes `budget` bytes and then raises `error` (a full disk, a Ctrl-C)"
    def __init__(self, f, budget, error, fired):
        self._f, self._budget, self._error, self._fired = f, budget, error, fired
    def write(self, data):
        if len(data) > self._budget:
            self._f.write(data[:self._budget]); self._f.flush()
            self._fired.append(True)
            raise self._error
        self._budget -= len(data)
        return self._f.write(data)
    def writelines(self, lines):
        for line in lines: self.write(line)
    def __enter__(self): return self
    def __exit__(self, *exc): return self._f.__exit__(*exc)
    def __iter__(self): return iter(self._f)
    def __getattr__(self, name): return getattr(self._f, name)


def break_writes_in(monkeypatch, folder, error, budget=100):
    "Make every file opened for writing in `folder` fail after `budget` bytes; returns a list that fills when it fires"
    real_open, fired = io.open, []
    def opener(file, mode='r', *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        name = file if not isinstance(file, int) else os.readlink(f"/proc/self/fd/{file}")
        writing = any(c in mode for c in 'wax+')
        if writing and Path(os.path.abspath(name)).parent == folder.resolve(): return BreakingFile(f, budget, error, fired)
        return f
    monkeypatch.setattr(io, 'open', opener)
    monkeypatch.setattr('builtins.open', opener)
    return fired


@pytest.mark.parametrize('error', [OSError(errno.ENOSPC, 'No space left on device (injected)'), KeyboardInterrupt()],
                         ids=['disk full', 'Ctrl-C'])
def test_a_save_interrupted_mid_write_keeps_the_old_file(saved, monkeypatch, error, fuzz_counts):
    folder, path, old, _ = saved
    fired = break_writes_in(monkeypatch, folder, error)
    fuzz_counts['io failures']['interrupted saves'] += 1
    with pytest.raises(BaseException) as raised: save_model(make_model(2), path)
    monkeypatch.undo()
    assert fired, f"the injected write failure never happened: save_model did not write through open() ({raised.value!r})"
    assert_file_kept(folder, path, old)


def test_a_failing_encoder_keeps_the_old_file(saved, monkeypatch, fuzz_counts):
    folder, path, old, _ = saved
    def fail(*args, **kwargs): raise Injected("the JSON encoder failed")
    for name in ('dumps', 'dump'): monkeypatch.setattr(json, name, fail)
    monkeypatch.setattr(json.JSONEncoder, 'iterencode', fail)
    monkeypatch.setattr(json.JSONEncoder, 'encode', fail)
    fuzz_counts['io failures']['interrupted saves'] += 1
    try: save_model(make_model(2), path)
    except Injected: return assert_file_kept(folder, path, old)
    monkeypatch.undo()  # the file was written without json: it must be a whole, loadable save
    assert snapshot(load_model(make_model(3), path)) == snapshot(make_model(2))


def test_a_failing_fsync_keeps_the_old_file(saved, monkeypatch, fuzz_counts):
    "A temporary file must reach the disk (fsync) before it replaces the old one"
    folder, path, old, _ = saved
    fired = []
    def fsync(fd): fired.append(fd); raise OSError(errno.EIO, 'Input/output error (injected)')
    monkeypatch.setattr(os, 'fsync', fsync)
    fuzz_counts['io failures']['interrupted saves'] += 1
    with pytest.raises(Exception): save_model(make_model(2), path)
    monkeypatch.undo()
    assert fired, "save_model never calls os.fsync: the new file may not be on the disk when it replaces the old one"
    assert_file_kept(folder, path, old)


def test_a_failing_replace_keeps_the_old_file_and_removes_the_temporary_one(saved, monkeypatch, fuzz_counts):
    folder, path, old, _ = saved
    fired = []
    def replace(*args, **kwargs): fired.append(args); raise OSError(errno.EXDEV, 'Invalid cross-device link (injected)')
    monkeypatch.setattr(os, 'replace', replace)
    monkeypatch.setattr(os, 'rename', replace)
    fuzz_counts['io failures']['interrupted saves'] += 1
    with pytest.raises(Exception): save_model(make_model(2), path)
    monkeypatch.undo()
    assert fired, "save_model does not write a temporary file and rename it over the old one"
    assert_file_kept(folder, path, old)


CHILD_SAVE = """
import random, resource, signal, sys
sys.path.insert(0, {root!r})
from micrograd.nn import MLP
from micrograd.io import save_model
if {ignore_signal}: signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit raises instead
random.seed(5)
big = MLP(2, [32, 32, 1])
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try: save_model(big, {path!r})
except Exception as e: print('error', type(e).__name__, e)
else: print('saved')
"""


@pytest.mark.parametrize('ignore_signal', [True, False], ids=['error EFBIG', 'killed by SIGXFSZ'])
def test_a_save_past_a_file_size_limit_keeps_the_old_file(saved, ignore_signal, child_env, fuzz_counts):
    folder, path, old, _ = saved
    root = str(Path(__file__).resolve().parent.parent)
    code = CHILD_SAVE.format(root=root, path=str(path), ignore_signal=ignore_signal)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, env=child_env)
    fuzz_counts['io failures']['saves past a 4 KB limit'] += 1
    assert 'saved' not in result.stdout, "a 25 KB save succeeded under a 4 KB file-size limit?"
    COUNTS['old files damaged'] += path.read_bytes() != old
    assert path.read_bytes() == old, f"the old file changed: now {len(path.read_bytes())} bytes"
    if ignore_signal:  # the process lived on: it must have cleaned up and said why
        assert result.stdout.startswith('error'), result.stdout + result.stderr
        assert_file_kept(folder, path, old)


def test_a_save_into_a_missing_folder_creates_nothing(tmp_path, fuzz_counts):
    target = tmp_path / 'no such folder' / 'model.json'
    with pytest.raises(OSError) as e: save_model(make_model(2), target)
    fuzz_counts['io failures']['saves that cannot complete'] += 1
    assert 'no such folder' in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_save_onto_a_folder_changes_nothing(tmp_path, fuzz_counts):
    (tmp_path / 'model.json').mkdir()
    (tmp_path / 'model.json' / 'inside.txt').write_text('keep me')
    with pytest.raises((OSError, ValueError)) as e: save_model(make_model(2), tmp_path / 'model.json')
    fuzz_counts['io failures']['saves that cannot complete'] += 1
    assert 'model.json' in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.json']
    assert (tmp_path / 'model.json' / 'inside.txt').read_text() == 'keep me'


def test_saving_non_finite_parameters_is_refused_or_round_trips(saved):
    folder, path, old, _ = saved
    model = make_model(2)
    model.parameters()[0].data, model.parameters()[1].data = math.nan, -math.inf
    try: save_model(model, path)
    except ValueError as e:
        assert 'save_model' in str(e)
        return assert_file_kept(folder, path, old)
    back = snapshot(read_model(path))
    assert math.isnan(back[0]) and back[1] == -math.inf and back[2:] == snapshot(model)[2:]


def test_a_save_replaces_the_old_file_whole(saved):
    folder, path, old, _ = saved
    save_model(make_model(2), path)
    assert sorted(p.name for p in folder.iterdir()) == [path.name]
    assert snapshot(read_model(path)) == snapshot(make_model(2))


# ---------------------------------------------------------------- loads that fail

def good_state():
    "The JSON of a good file, as a dict"
    with tempfile.TemporaryDirectory() as folder:
        return json.loads(Path(save_model(make_model(1), Path(folder) / 'good.json')).read_text())


def state_with(**changes):
    "A good file's JSON with top-level keys changed (None: removed), as bytes"
    state = good_state()
    for k, v in changes.items():
        if v is None: state.pop(k)
        else: state[k] = v
    return json.dumps(state).encode()


def arch_with(**changes):
    state = good_state()
    for k, v in changes.items():
        if v is None: state['architecture'].pop(k)
        else: state['architecture'][k] = v
    return json.dumps(state).encode()


def params_text(replace_last):
    "A good file whose last parameter is written as the JSON text `replace_last`"
    state = good_state()
    params = ', '.join(json.dumps(p) for p in state['parameters'][:-1])
    state['parameters'] = '@'
    return json.dumps(state).replace('"@"', f'[{params}, {replace_last}]').encode()


def good_bytes(): return json.dumps(good_state(), indent=1).encode()


BAD_FILES = {
    'empty': lambda: b'',
    'truncated after 1 byte': lambda: good_bytes()[:1],
    'truncated in the middle': lambda: good_bytes()[:len(good_bytes()) // 2],
    'truncated before the last brace': lambda: good_bytes().rstrip()[:-1],
    'binary': lambda: bytes(range(256)) * 8,
    'invalid UTF-8 in a string': lambda: good_bytes().replace(b'micrograd', b'micro\xff\xfegrad'),
    'UTF-16': lambda: good_bytes().decode().encode('utf-16'),
    'NUL bytes': lambda: b'\x00' * 1000,
    'not JSON': lambda: b'weights: 0.1 0.2 0.3\n',
    'a JSON list': lambda: b'[1.0, 2.0, 3.0]',
    'a JSON string': lambda: b'"micrograd"',
    'JSON null': lambda: b'null',
    'deeply nested parameters': lambda: params_text('[' * 100_000 + ']' * 100_000),
    'deeply nested file': lambda: b'[' * 1_000_000,
    'deeply nested architecture': lambda: arch_with(act='@').replace(b'"@"', b'{"a":' * 100_000 + b'1' + b'}' * 100_000),
    'format is not micrograd': lambda: state_with(format='pytorch'),
    'version 2': lambda: state_with(version=2),
    'version missing': lambda: state_with(version=None),
    'parameters missing': lambda: state_with(parameters=None),
    'parameters not a list': lambda: state_with(parameters='0.5'),
    'parameters a dict': lambda: state_with(parameters={'w': 0.5}),
    'a parameter that is a string': lambda: params_text('"0.5"'),
    'a parameter that is null': lambda: params_text('null'),
    'a parameter that is true': lambda: params_text('true'),
    'a parameter that is a list': lambda: params_text('[0.5]'),
    'one parameter too few': lambda: state_with(parameters=good_state()['parameters'][:-1]),
    'one parameter too many': lambda: state_with(parameters=good_state()['parameters'] + [0.5]),
    'no parameters': lambda: state_with(parameters=[]),
    'NaN': lambda: params_text('NaN'),
    'Infinity': lambda: params_text('Infinity'),
    '-Infinity': lambda: params_text('-Infinity'),
    '1e999 (inf once parsed)': lambda: params_text('1e999'),
    'a 401-digit integer': lambda: params_text('1' + '0' * 400),
    'a -401-digit integer': lambda: params_text('-' + '9' * 401),
    'a 401-digit decimal': lambda: params_text('1' + '0' * 400 + '.5'),
    'wrong shape (another MLP)': lambda: json.dumps({**good_state(), 'architecture': {
        'type': 'MLP', 'nin': 2, 'nouts': [5, 2], 'act': 'tanh', 'out_act': 'linear'}}).encode(),
    'wrong architecture type': lambda: arch_with(type='Layer'),
    'unknown architecture type': lambda: arch_with(type='Transformer'),
    'architecture not a dict': lambda: state_with(architecture=[3, [4, 2]]),
    'architecture missing': lambda: state_with(architecture=None),
    'an extra architecture key': lambda: arch_with(dropout=0.5),
    'a missing architecture key (act)': lambda: arch_with(act=None),
    'a missing architecture key (nouts)': lambda: arch_with(nouts=None),
    'nin a string': lambda: arch_with(nin='3'),
    'nin true': lambda: arch_with(nin=True),
    'nin negative': lambda: arch_with(nin=-3),
    'nouts a string': lambda: arch_with(nouts='4, 2'),
    'nouts with a zero': lambda: arch_with(nouts=[0, 2]),
    'act unknown': lambda: arch_with(act='swish'),
    'act a number': lambda: arch_with(act=1),
    'huge declared MLP(2000, [2000]) with one parameter': lambda: json.dumps({**good_state(), 'architecture': {
        'type': 'MLP', 'nin': 2000, 'nouts': [2000], 'act': 'tanh', 'out_act': 'linear'}, 'parameters': [0.5]}).encode(),
}


def assert_typed_error(e, function, path):
    assert isinstance(e, (ValueError, TypeError)) and not isinstance(e, UnicodeError), f"untyped error {type(e).__name__}: {e}"
    assert function in str(e), f"the message does not name {function}: {e}"
    assert path.name in str(e), f"the message does not name the file {path.name}: {e}"


@pytest.mark.parametrize('case', BAD_FILES)
def test_a_bad_file_does_not_change_the_model(case, tmp_path, fuzz_counts):
    path = tmp_path / 'bad-model.json'
    path.write_bytes(BAD_FILES[case]())
    model = make_model(7)
    before = snapshot(model)
    fuzz_counts['io failures']['bad files loaded'] += 1
    with pytest.raises(BaseException) as raised: load_model(model, path)
    fuzz_counts['io failures']['models changed by a failed load'] += snapshot(model) != before
    assert snapshot(model) == before, "load_model changed the model's parameters, then failed"
    assert_typed_error(raised.value, 'load_model', path)


@pytest.mark.parametrize('case', [c for c in BAD_FILES if not c.startswith('huge')])  # huge ones: in a child, below
def test_read_model_refuses_a_bad_file(case, tmp_path, fuzz_counts):
    path = tmp_path / 'bad-model.json'
    path.write_bytes(BAD_FILES[case]())
    state = random.getstate()
    fuzz_counts['io failures']['bad files read'] += 1
    with pytest.raises(BaseException) as raised: read_model(path)
    assert_typed_error(raised.value, 'read_model', path)
    assert random.getstate() == state


@pytest.mark.parametrize('function', ['load_model', 'read_model'])
@pytest.mark.parametrize('what', ['missing', 'a folder'])
def test_a_missing_file_or_a_folder_is_an_os_error_naming_the_file(function, what, tmp_path):
    path = tmp_path / 'model.json'
    if what == 'a folder': path.mkdir()
    model = make_model(7); before = snapshot(model)
    call = (lambda: load_model(model, path)) if function == 'load_model' else (lambda: read_model(path))
    with pytest.raises((OSError, ValueError)) as e: call()
    assert 'model.json' in str(e.value)
    assert snapshot(model) == before


CHILD_READ = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
resource.setrlimit(resource.RLIMIT_AS, (1 << 29, 1 << 29))  # 512 MB and 5 s: a model built before the check runs out
resource.setrlimit(resource.RLIMIT_CPU, (5, 5))
from micrograd.io import read_model
start = time.perf_counter()
try: read_model({path!r}); outcome = ['no error', '']
except BaseException as e: outcome = [type(e).__name__, str(e)]
print(json.dumps(outcome + [time.perf_counter() - start]))
"""

HUGE = {'MLP(2000, [2000])': {'type': 'MLP', 'nin': 2000, 'nouts': [2000], 'act': 'tanh', 'out_act': 'linear'},
        'MLP(10**6, [10**6])': {'type': 'MLP', 'nin': 10**6, 'nouts': [10**6], 'act': 'tanh', 'out_act': 'linear'},
        'MLP(2, [10**5] * 100)': {'type': 'MLP', 'nin': 2, 'nouts': [10**5] * 100, 'act': 'relu', 'out_act': 'linear'},
        'Layer(10**9, 10**9)': {'type': 'Layer', 'nin': 10**9, 'nout': 10**9, 'act': 'tanh'},
        'Neuron(10**12)': {'type': 'Neuron', 'nin': 10**12, 'act': 'tanh'},
        'Neuron(10**400)': {'type': 'Neuron', 'nin': 10**400, 'act': 'tanh'}}


@pytest.mark.parametrize('declared', HUGE)
def test_read_model_checks_declared_sizes_before_building(declared, tmp_path, child_env, fuzz_counts):
    "A small file declaring a huge model is refused at once, without building it (in a child with 512 MB and 5 s of CPU)"
    path = tmp_path / 'huge.json'
    path.write_text(json.dumps({'format': 'micrograd', 'version': 1, 'architecture': HUGE[declared], 'parameters': [0.5]}))
    code = CHILD_READ.format(root=str(Path(__file__).resolve().parent.parent), path=str(path))
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, env=child_env)
    fuzz_counts['io failures']['huge-declared files read'] += 1
    assert result.returncode == 0, f"read_model died (exit {result.returncode}) under 5 s of CPU and 512 MB: {result.stderr[-500:]}"
    kind, message, seconds = json.loads(result.stdout.strip().splitlines()[-1])
    assert kind in ('ValueError', 'TypeError'), f"{kind}: {message}"
    assert 'read_model' in message and 'huge.json' in message, message
    assert seconds < 1.0, f"read_model took {seconds:.1f} s to refuse a {path.stat().st_size}-byte file"


@pytest.mark.parametrize('function', ['save_model', 'load_model'])
@pytest.mark.parametrize('model', [[1.0, 2.0], 'MLP(3, [4, 2])', None, {'w': 1.0}], ids=['list', 'str', 'None', 'dict'])
def test_save_and_load_refuse_what_is_not_a_module(function, model, tmp_path, saved):
    _, path, old, _ = saved
    with pytest.raises(TypeError) as e:
        save_model(model, path) if function == 'save_model' else load_model(model, path)
    assert function in str(e.value) and 'model' in str(e.value).replace(function, ''), str(e.value)
    assert path.read_bytes() == old


# ---------------------------------------------------------------- paths that cannot name the file (issues 14 to 17)

CALLS = {'save_model': lambda path: save_model(make_model(2), path),
         'load_model': lambda path: load_model(make_model(2), path),
         'read_model': lambda path: read_model(path)}


def test_a_file_name_of_250_characters_saves_and_loads(tmp_path, fuzz_counts):
    "The temporary file's name has a fixed length: it used to add 19 characters to the target's, past the 255 allowed"
    for length in (200, 250, 255):
        path = tmp_path / ('m' * (length - 5) + '.json')
        fuzz_counts['io failures']['long file names saved'] += 1
        save_model(make_model(2), path)
        assert snapshot(load_model(make_model(3), path)) == snapshot(make_model(2))
        assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
        path.unlink()


@pytest.mark.parametrize('existing', [False, True], ids=['missing folder', 'existing folder'])
def test_a_path_that_ends_in_a_separator_is_refused_and_nothing_is_written(existing, tmp_path, fuzz_counts):
    "save_model('newdir/') used to write a file called newdir"
    folder = tmp_path / 'newdir'
    if existing: folder.mkdir()
    fuzz_counts['io failures']['saves that cannot complete'] += 1
    with pytest.raises(IsADirectoryError) as e: save_model(make_model(2), str(folder) + os.sep)
    assert 'save_model()' in str(e.value) and 'path' in str(e.value) and 'newdir' in str(e.value), str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == (['newdir'] if existing else [])
    if existing: assert list(folder.iterdir()) == []


@pytest.mark.parametrize('function', CALLS)
@pytest.mark.parametrize('path', ['model\0.json', '\0', Path('dir\0') / 'model.json'], ids=['inside', 'alone', 'in a Path'])
def test_a_nul_byte_in_a_path_is_a_typed_error_naming_the_function_and_the_argument(function, path, tmp_path, monkeypatch):
    "It used to be a bare 'embedded null byte' that named no function"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as e: CALLS[function](path)
    assert f"{function}() needs path" in str(e.value) and 'NUL' in str(e.value), str(e.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('function', CALLS)
def test_every_function_refuses_a_path_that_names_a_folder(function, tmp_path, saved):
    _, path, _, _ = saved
    with pytest.raises(IsADirectoryError) as e: CALLS[function](str(path) + os.sep)
    assert f"{function}()" in str(e.value) and path.name in str(e.value), str(e.value)


def test_reading_a_small_file_takes_memory_for_the_file_not_for_the_limit(tmp_path):
    "A 155-byte file used to be read into a buffer sized to the 64 MB limit"
    import tracemalloc
    path = tmp_path / 'small.json'
    path.write_text('{"format": "micrograd", "version": 1, "architecture": {"type": "Neuron", "nin": 1, "act": "tanh"}, '
                    '"parameters": [0.5, 0.25]}' + ' ' * 30)
    assert path.stat().st_size == 155
    for read in (lambda: read_model(path), lambda: load_model(Neuron(1), path)):
        tracemalloc.start()
        try: read()
        finally: peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
        assert peak < 2**20, f"reading a 155-byte file took {peak:,} bytes"


def test_a_file_over_the_limit_is_refused(tmp_path, monkeypatch):
    import micrograd.io
    monkeypatch.setattr(micrograd.io, '_MAX_FILE_BYTES', 1000)
    path = tmp_path / 'big.json'
    path.write_bytes(b' ' * 1001)
    with pytest.raises(ValueError, match=r"read_model\(\): .*big.json is larger than 1,000 bytes"): read_model(path)
    path.write_bytes(b' ' * 1000)  # exactly the limit: read, then refused as no JSON
    with pytest.raises(ValueError, match="not valid JSON"): read_model(path)


# ---------------------------------------------------------------- atomic_write: several files, all or none

from micrograd.io import atomic_write


def files_in(folder): return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def three(tmp_path):
    "A folder with a.txt and b.txt; atomic_write will write those and c.txt"
    folder = tmp_path / 'out'; folder.mkdir()
    (folder / 'a.txt').write_bytes(b'old a'); (folder / 'b.txt').write_bytes(b'old b')
    new = {folder / 'a.txt': b'new a', folder / 'b.txt': lambda f: f.write(b'new b'), folder / 'c.txt': b'new c'}
    return folder, files_in(folder), new


@pytest.mark.parametrize('fails', ['replace 1', 'replace 2', 'replace 3', 'open 1', 'open 3', 'fsync 1', 'fsync 3', 'writer'])
def test_a_failure_at_any_step_leaves_every_file_as_it_was(fails, three, monkeypatch, fuzz_counts):
    folder, before, new = three
    name, n = (fails.split() + ['1'])[:2]
    calls = []
    def failing(real):
        def call(*args, **kwargs):
            if name == 'open' and not any(c in (args[1] if len(args) > 1 else kwargs.get('mode', 'r')) for c in 'x'): return real(*args, **kwargs)
            calls.append(args)
            if len(calls) == int(n): raise OSError(errno.ENOSPC, 'No space left on device (injected)')
            return real(*args, **kwargs)
        return call
    if name == 'writer': new[folder / 'c.txt'] = lambda f: (f.write(b'half'), 1 / 0)
    elif name == 'open': monkeypatch.setattr('builtins.open', failing(open))
    else: monkeypatch.setattr(os, name, failing(getattr(os, name)))
    fuzz_counts['io failures']['several-file writes that fail'] += 1
    with pytest.raises((OSError, ZeroDivisionError)) as e: atomic_write(new, 'example')
    monkeypatch.undo()
    if isinstance(e.value, OSError): assert 'example() could not write' in str(e.value), str(e.value)
    fuzz_counts['io failures']['old files damaged'] += files_in(folder) != before
    assert files_in(folder) == before


def test_when_links_fail_the_old_files_are_copied_and_the_write_completes(three, monkeypatch):
    folder, before, new = three
    def no_links(*args): raise OSError(errno.EPERM, 'Operation not permitted (injected)')
    monkeypatch.setattr(os, 'link', no_links)
    atomic_write(new)
    assert files_in(folder) == {'a.txt': b'new a', 'b.txt': b'new b', 'c.txt': b'new c'}


@pytest.mark.parametrize('at', [1, 2, 3])
def test_ctrl_c_while_the_files_move_into_place_is_held_until_all_are_there(at, three, monkeypatch, fuzz_counts):
    "A SIGINT between two renames used to leave some files new and some old"
    import signal
    folder, before, new = three
    real, calls = os.replace, []
    def replace(*args):
        calls.append(args)
        if len(calls) == at: signal.raise_signal(signal.SIGINT)  # Ctrl-C, just before this rename
        return real(*args)
    monkeypatch.setattr(os, 'replace', replace)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt): atomic_write(new)
    finally: signal.signal(signal.SIGINT, previous)
    fuzz_counts['io failures']['several-file writes interrupted'] += 1
    assert files_in(folder) == {'a.txt': b'new a', 'b.txt': b'new b', 'c.txt': b'new c'}
    assert signal.getsignal(signal.SIGINT) is previous


def test_atomic_write_from_another_thread_works_without_holding_ctrl_c(three):
    import threading
    folder, _, new = three
    errors = []
    def run():
        try: atomic_write(new)
        except BaseException as e: errors.append(e)
    thread = threading.Thread(target=run); thread.start(); thread.join()
    assert errors == [] and files_in(folder) == {'a.txt': b'new a', 'b.txt': b'new b', 'c.txt': b'new c'}


def test_a_folder_in_the_way_of_any_file_is_refused_before_anything_is_written(three):
    folder, before, new = three
    (folder / 'c.txt').mkdir()
    with pytest.raises(IsADirectoryError, match=r"atomic_write\(\) could not write .*c.txt: it is a folder"): atomic_write(new)
    assert {p.name for p in folder.iterdir()} == {'a.txt', 'b.txt', 'c.txt'}
    assert (folder / 'a.txt').read_bytes() == b'old a' and (folder / 'b.txt').read_bytes() == b'old b'
