"""The `micrograd-demo` command, run as a user would, with bad flags and in situations where it cannot finish.

Bad usage: exit status 2 and one line on standard error that names the flag, no traceback, nothing written.
A run that fails: exit status 1 (or 2, when found before training), one line, no traceback, and the output folder
exactly as it was: an earlier run's files byte for byte, no temporary file. Every run is tiny.
Interruptions (Ctrl-C) are in test_demo_interrupts.py.
"""
import random, re, resource, shutil
from pathlib import Path
import pytest
from _demo_command import FILES, console_script, child_env, run, contents, outcome

TINY = ['--steps', '2', '--samples', '6', '--quiet']


@pytest.fixture(scope='module')
def command(tmp_path_factory):
    return console_script(tmp_path_factory.mktemp('script'))


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    import os
    return child_env(os.environ, tmp_path_factory.mktemp('site'))


@pytest.fixture(scope='module')
def earlier_run(command, env, tmp_path_factory):
    "An output folder filled by a good run (seed 1), to copy for tests that must leave it as it was"
    folder = tmp_path_factory.mktemp('earlier') / 'out'
    result = run(command, ['--out', folder, '--seed', '1'] + TINY, env, folder.parent)
    assert result.returncode == 0, result
    return folder


def count(fuzz_counts, result, lost=False):
    counts = fuzz_counts['micrograd-demo runs']
    counts['runs'] += 1
    counts['tracebacks'] += result.traceback
    counts['data-loss cases'] += bool(lost)


def assert_one_line_error(result, status, *names):
    assert not result.traceback, f"a traceback:\n{result.stderr[-3000:]}"
    assert result.returncode in ((status,) if isinstance(status, int) else status), \
        f"exit status {result.returncode}, expected {status}; stderr: {result.stderr[-1000:]}"
    assert len(result.lines) == 1, f"{len(result.lines)} lines on stderr, expected one:\n{result.stderr[-2000:]}"
    assert result.lines[0].startswith('micrograd-demo: error: '), result.lines[0]
    for name in names: assert name in result.lines[0], f"the error does not name {name!r}: {result.lines[0]}"


BAD_USAGE = {
    '--steps 0': (['--steps', '0'], '--steps must be an integer >= 1, got 0'),
    '--steps -5': (['--steps', '-5'], '--steps must be an integer >= 1, got -5'),
    '--steps abc': (['--steps', 'abc'], "--steps must be an integer >= 1, got 'abc'"),
    '--steps 1.5': (['--steps', '1.5'], "--steps must be an integer >= 1, got '1.5'"),
    '--steps without a value': (['--steps'], '--steps'),
    '--samples 1': (['--samples', '1'], '--samples must be an integer from 2 to 10000'),
    '--samples 0': (['--samples', '0'], '--samples must be'),
    '--samples abc': (['--samples', 'abc'], "--samples must be an integer from 2 to 10000 (for the moons: each step runs every point"),
    '--seed abc': (['--seed', 'abc'], "--seed must be an integer >= 0, got 'abc'"),
    '--noise 1e308': (['--noise', '1e308'], '--noise must be a number from 0 to 1000, got 1e+308'),
    '--noise nan': (['--noise', 'nan'], '--noise must be a number from 0 to 1000, got nan'),
    '--noise inf': (['--noise', 'inf'], '--noise must be a number from 0 to 1000, got inf'),
    '--noise -1': (['--noise', '-1'], '--noise must be a number from 0 to 1000, got -1.0'),
    '--noise abc': (['--noise', 'abc'], "--noise must be a number from 0 to 1000, got 'abc'"),
    "--out ''": (['--out', ''], "--out must be a folder path (not empty, without NUL bytes), got ''"),
    '--task cats': (['--task', 'cats'], "--task must be moons, digits or names, got 'cats'"),
    '--noise with the digits': (['--task', 'digits', '--noise', '0.2'], '--noise is for the moons only'),
    '--noise with the names': (['--task', 'names', '--noise', '0.2'], 'is for the moons'),  # TINY's --samples is refused first: also one line
    '--samples with the names': (['--task', 'names', '--samples', '6'], '--samples is for the moons and the digits only'),
    'an unknown flag': (['--bogus', '1'], 'unrecognized arguments: --bogus 1'),
    'a stray argument': (['stray'], 'unrecognized arguments: stray'),
}


@pytest.mark.parametrize('case', BAD_USAGE)
def test_bad_usage_is_one_line_that_names_the_flag_and_exit_status_2(case, tmp_path, command, env, fuzz_counts):
    "The errors used to be the library's: `demo() needs steps ...`, `make_moons() needs noise ...`"
    args, says = BAD_USAGE[case]
    out = tmp_path / 'out'
    result = run(command, ['--out', out] + TINY + args if case != "--out ''" else TINY + args, env, tmp_path)
    count(fuzz_counts, result)
    assert_one_line_error(result, 2, says)
    assert 'demo()' not in result.stderr and 'make_moons()' not in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == [], f"bad usage left {sorted(p.name for p in tmp_path.iterdir())} behind"


def test_out_that_is_an_existing_file(tmp_path, command, env, fuzz_counts):
    existing = tmp_path / 'notes.txt'
    existing.write_text('my notes\n')
    result = run(command, ['--out', existing] + TINY, env, tmp_path)
    count(fuzz_counts, result)
    assert_one_line_error(result, 2, 'notes.txt is a file')
    assert existing.read_text() == 'my notes\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.txt']


@pytest.mark.parametrize('out', ['/proc/nope', '/proc/nope/deeper'])
def test_out_that_cannot_be_created(out, tmp_path, command, env, fuzz_counts):
    result = run(command, ['--out', out] + TINY, env, tmp_path)
    count(fuzz_counts, result)
    assert_one_line_error(result, 2, out)


def copy_of(earlier_run, tmp_path):
    folder = tmp_path / 'out'
    shutil.copytree(earlier_run, folder)
    return folder, contents(folder)


@pytest.mark.parametrize('blocked', FILES['moons'])
@pytest.mark.parametrize('inside', [False, True], ids=['empty folder', 'folder with a file'])
def test_a_folder_where_a_file_goes_is_refused_before_training_and_the_earlier_files_stay(
        blocked, inside, earlier_run, tmp_path, command, env, fuzz_counts):
    "A run that could not save used to overwrite the earlier pictures, then fail on the weights (issue 19)"
    folder, _ = copy_of(earlier_run, tmp_path)
    (folder / blocked).unlink(); (folder / blocked).mkdir()
    if inside: (folder / blocked / 'keep.txt').write_text('keep')
    before = contents(folder)
    result = run(command, ['--out', folder, '--seed', '2'] + TINY, env, tmp_path)
    after = contents(folder)
    count(fuzz_counts, result, after != before)
    assert_one_line_error(result, 2, blocked, 'is a folder')
    assert after == before
    assert result.stdout == '', "it trained before finding out it could not save"


def limited(size):
    "A child that can write files of at most `size` bytes (Python ignores SIGXFSZ: a longer write fails with EFBIG)"
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_run_that_cannot_write_its_files_leaves_the_earlier_ones_as_they_were(earlier_run, tmp_path, command, env, fuzz_counts):
    "A file-size limit (as a quota or a full disk would set) makes a write fail: at the first file, the second, the third"
    sizes = sorted(p.stat().st_size for p in earlier_run.iterdir())
    for limit in [1] + [size - 1 for size in sizes]:  # each limit is just too small for one more of the files
        folder, before = copy_of(earlier_run, tmp_path / str(limit))
        result = run(command, ['--out', folder, '--seed', '2'] + TINY, env, tmp_path, preexec_fn=limited(limit))
        lost = outcome(before, contents(folder), FILES['moons'])
        count(fuzz_counts, result, lost != 'old')
        assert_one_line_error(result, 1, 'could not write', 'File too large')
        assert lost == 'old', f"limit {limit:,} bytes: {lost}"


@pytest.mark.parametrize('target', ['/proc/self/nope.json', '/nonexistent/folder/moons_model.json'])
def test_a_file_that_links_where_nothing_can_be_written(target, earlier_run, tmp_path, command, env, fuzz_counts):
    "The weights' name is a symbolic link into /proc, or into a folder that does not exist: the run fails at the end"
    folder, _ = copy_of(earlier_run, tmp_path)
    (folder / 'moons_model.json').unlink()
    (folder / 'moons_model.json').symlink_to(target)
    before = contents(folder)
    result = run(command, ['--out', folder, '--seed', '2'] + TINY, env, tmp_path)
    after = contents(folder)
    count(fuzz_counts, result, after != before)
    assert_one_line_error(result, 1, 'moons_model.json')
    assert after == before and (folder / 'moons_model.json').is_symlink()


@pytest.mark.parametrize('noise', ['5', '1000'])
def test_large_noise_finishes_quickly(noise, tmp_path, command, env, fuzz_counts):
    "The decision-boundary grid is bounded: a huge --noise does not make the picture take forever"
    out = tmp_path / 'out'
    result = run(command, ['--out', out, '--steps', '1', '--samples', '4', '--quiet', '--noise', noise], env, tmp_path, timeout=45)
    count(fuzz_counts, result)
    assert result.returncode == 0 and not result.traceback, result
    assert sorted(p.name for p in out.iterdir()) == FILES['moons']


def test_a_good_run_writes_three_whole_files_and_a_rerun_replaces_them(tmp_path, command, env, fuzz_counts):
    from micrograd.io import read_model
    out = tmp_path / 'new' / 'folder'
    before = {}
    for seed in ('1', '2'):
        result = run(command, ['--out', out, '--seed', seed] + TINY, env, tmp_path)
        count(fuzz_counts, result)
        assert result.returncode == 0 and result.stderr == '', result
        assert outcome(before, contents(out), FILES['moons']) == 'new'
        assert len(read_model(out / 'moons_model.json').parameters()) == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1
        before = contents(out)


# ---------------------------------------------------------------- random flags

VALUES = {
    '--task': ['moons', 'digits', 'MOONS', '', 'moons ', 'cats'],
    '--steps': ['1', '2', '0', '-1', '1.5', 'abc', '', '1e3', '0x10', ' 2', '99999999999999999999999.5', '٣'],
    '--seed': ['0', '7', '-1', '1.5', 'x', '', '12345678901234567890', '2**70'],
    '--samples': ['2', '4', '1', '0', '10001', '1498', 'four', '', '1' * 30],
    '--noise': ['0', '0.3', '-0.0', '1000', '1000.0001', 'nan', 'inf', '-inf', '1e308', '0x10', '', 'one'],
    '--out': ['out', 'a/b/c', '', ' ', '/proc/x', 'notes.txt', 'notes.txt/inside'],
}
EXTRA = [['--quiet'], ['--bogus'], ['-x'], ['--s', '1'], ['stray'], ['--quiet', 'yes'], ['--steps'], ['--steps=2'], ['--out', '-x']]


def random_args(rng):
    "Flags and values, good and bad, in random order; a good combination is a tiny run"
    args = ['--steps', '1', '--samples', '4']  # defaults of the fuzz: cheap if nothing below overrides them with a bad value
    for flag in rng.sample(sorted(VALUES), rng.randint(1, 3)): args += [flag, rng.choice(VALUES[flag])]
    if rng.random() < 0.4: args += rng.choice(EXTRA)
    return args


@pytest.mark.parametrize('seed', range(30))
def test_random_flags_are_a_run_or_one_line_that_names_the_flag(seed, tmp_path, command, env, fuzz_counts):
    args = random_args(random.Random(seed))
    (tmp_path / 'notes.txt').write_text('my notes')
    result = run(command, args, env, tmp_path)
    count(fuzz_counts, result)
    fuzz_counts['micrograd-demo runs']['random flag sets'] += 1
    assert not result.traceback, f"{args}: {result}"
    assert result.returncode in (0, 2), f"{args}: {result}"
    assert (tmp_path / 'notes.txt').read_text() == 'my notes'
    if result.returncode == 2:
        assert_one_line_error(result, 2)
        assert re.search(r"--\w+|unrecognized arguments|ambiguous option|output folder|cannot write in the folder", result.lines[0]), \
            f"{args}: the error names no flag: {result.lines[0]}"
        assert 'demo()' not in result.lines[0], result.lines[0]


def test_the_names_task_trains_a_gpt_and_saves_what_loads_back(tmp_path, command, env, fuzz_counts):
    "`--task names`: samples printed, two pictures and the weights written, the weights load into a GPT"
    out = tmp_path / 'names'
    result = run(command, ['--task', 'names', '--steps', '30', '--quiet', '--out', out], env, tmp_path)
    count(fuzz_counts, result)
    assert result.returncode == 0 and not result.traceback, result.stderr[-2000:]
    assert 'names it made up: ' in result.stdout and 'validation loss' in result.stdout, result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES['names'])
    for name in FILES['names'][:2]: assert (out / name).read_bytes().startswith(b'\x89PNG')
    import numpy as np
    from micrograd.gpt import GPT
    model = GPT(27, 16, 16, 4, 1)
    model.load_state_dict(dict(np.load(out / 'names_model.npz')))
    hint = result.stdout.strip().splitlines()[-1]
    assert 'load_state_dict' in hint and str(out / 'names_model.npz') in hint, hint


@pytest.mark.parametrize('args, says', [(['--steps', 'x'], "--steps must be an integer >= 1, got 'x'"),
                                        (['--noise', 'nan'], '--noise must be a number from 0 to 1000, got nan')])
def test_python_m_micrograd_demo_is_the_same_command(args, says, tmp_path, command, env, fuzz_counts):
    "`python -m micrograd.demo` goes through the console script's function: the same one line and exit status 2"
    import sys
    for way in (command, [sys.executable, '-m', 'micrograd.demo']):
        result = run(way, ['--out', tmp_path / 'out'] + TINY + args, env, tmp_path)
        count(fuzz_counts, result)
        assert_one_line_error(result, 2, says)
        assert result.lines[0] == f"micrograd-demo: error: {says}", result.lines[0]
    assert list(tmp_path.iterdir()) == []
