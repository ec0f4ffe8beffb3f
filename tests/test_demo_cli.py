"""The `micrograd-demo` command, run as a user would, with bad flags and in situations where it cannot finish.

Bad usage: exit status 2 and one line on standard error that names the problem, no traceback, nothing written.
A run that fails: exit status 1 (or 2), one line, no traceback, no half-written file. Every run is tiny.
"""
import os, subprocess, sys, time
from pathlib import Path
import pytest

SCRIPT = Path(sys.executable).parent / 'micrograd-demo'  # the console script settings.ini declares
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [
    sys.executable, '-c', "import sys; from micrograd.demo import main; sys.argv[0] = 'micrograd-demo'; sys.exit(main())"]
TINY = ['--steps', '2', '--samples', '6', '--quiet']


def demo(args, env, cwd, timeout=120):
    start = time.perf_counter()
    try: result = subprocess.run(COMMAND + [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired: pytest.fail(f"micrograd-demo {' '.join(map(str, args))} still running after {timeout} s")
    result.seconds = time.perf_counter() - start
    return result


def assert_one_line_error(result, status, *names):
    lines = result.stderr.strip().splitlines()
    assert 'Traceback' not in result.stderr, f"a traceback:\n{result.stderr[-3000:]}"
    assert result.returncode in ((status,) if isinstance(status, int) else status), \
        f"exit status {result.returncode}, expected {status}; stderr: {result.stderr[-1000:]}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr, expected one:\n{result.stderr[-2000:]}"
    for name in names: assert name.lstrip('-') in lines[0], f"the error does not name {name!r}: {lines[0]}"


BAD_USAGE = {
    '--steps 0': (['--steps', '0'], '--steps'),
    '--steps -5': (['--steps', '-5'], '--steps'),
    '--steps abc': (['--steps', 'abc'], '--steps'),
    '--steps 1.5': (['--steps', '1.5'], '--steps'),
    '--steps without a value': (['--steps'], '--steps'),
    '--samples 1': (['--samples', '1'], '--samples'),
    '--samples 0': (['--samples', '0'], '--samples'),
    '--samples abc': (['--samples', 'abc'], '--samples'),
    '--seed abc': (['--seed', 'abc'], '--seed'),
    '--noise 1e308': (['--noise', '1e308'], '--noise'),
    '--noise nan': (['--noise', 'nan'], '--noise'),
    '--noise inf': (['--noise', 'inf'], '--noise'),
    '--noise -1': (['--noise', '-1'], '--noise'),
    '--noise abc': (['--noise', 'abc'], '--noise'),
    'an unknown flag': (['--bogus', '1'], '--bogus'),
    'a stray argument': (['stray'], 'stray'),
}


@pytest.mark.parametrize('case', BAD_USAGE)
def test_bad_usage_is_one_line_and_exit_status_2(case, tmp_path, child_env, fuzz_counts):
    args, name = BAD_USAGE[case]
    out = tmp_path / 'out'
    result = demo(['--out', out] + TINY + args, child_env, tmp_path)
    fuzz_counts['micrograd-demo runs']['runs'] += 1
    fuzz_counts['micrograd-demo runs']['tracebacks'] += 'Traceback' in result.stderr
    assert_one_line_error(result, 2, name)
    assert not out.exists(), f"bad usage left {sorted(p.name for p in out.iterdir())} behind"


def test_out_that_is_an_existing_file(tmp_path, child_env, fuzz_counts):
    existing = tmp_path / 'notes.txt'
    existing.write_text('my notes\n')
    result = demo(['--out', existing] + TINY, child_env, tmp_path)
    fuzz_counts['micrograd-demo runs']['runs'] += 1
    fuzz_counts['micrograd-demo runs']['tracebacks'] += 'Traceback' in result.stderr
    assert_one_line_error(result, 2, 'notes.txt')
    assert existing.read_text() == 'my notes\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.txt']


@pytest.mark.parametrize('out', ['/proc/nope', '/proc/nope/deeper'])
def test_out_that_cannot_be_created(out, tmp_path, child_env, fuzz_counts):
    result = demo(['--out', out] + TINY, child_env, tmp_path)
    fuzz_counts['micrograd-demo runs']['runs'] += 1
    fuzz_counts['micrograd-demo runs']['tracebacks'] += 'Traceback' in result.stderr
    assert_one_line_error(result, 2, out)


@pytest.mark.parametrize('blocked', ['moons_model.json', 'moons_boundary.png'])
def test_a_run_that_cannot_save_fails_in_one_line_and_leaves_no_partial_file(blocked, tmp_path, child_env, fuzz_counts):
    "An output file's name is taken by a folder: the run fails (exit 1, or 2 if checked up front), in one line"
    out = tmp_path / 'out'
    (out / blocked).mkdir(parents=True)
    result = demo(['--out', out] + TINY, child_env, tmp_path)
    fuzz_counts['micrograd-demo runs']['runs'] += 1
    fuzz_counts['micrograd-demo runs']['tracebacks'] += 'Traceback' in result.stderr
    assert_one_line_error(result, (1, 2), blocked)
    assert list((out / blocked).iterdir()) == []
    for p in out.iterdir():  # whatever else is there is whole: a finished picture, no temporary file
        assert p.name in ('moons_boundary.png', 'moons_loss.png', 'moons_model.json'), f"left behind: {p.name}"
        if p.suffix == '.png' and p.is_file(): assert p.read_bytes().endswith(b'IEND\xaeB`\x82'), f"{p.name} is cut short"


@pytest.mark.parametrize('noise', ['5', '1000'])
def test_large_noise_finishes_quickly(noise, tmp_path, child_env, fuzz_counts):
    "The decision-boundary grid is bounded: a huge --noise does not make the picture take forever"
    out = tmp_path / 'out'
    result = demo(['--out', out, '--steps', '1', '--samples', '4', '--quiet', '--noise', noise], child_env, tmp_path, timeout=45)
    fuzz_counts['micrograd-demo runs']['runs'] += 1
    fuzz_counts['micrograd-demo runs']['tracebacks'] += 'Traceback' in result.stderr
    if result.returncode == 2: return assert_one_line_error(result, 2, '--noise')  # refused as bad usage: fine
    assert result.returncode == 0 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert result.seconds < 30, f"--noise {noise} took {result.seconds:.0f} s"
    assert sorted(p.name for p in out.iterdir()) == ['moons_boundary.png', 'moons_loss.png', 'moons_model.json']


def test_a_good_run_writes_three_whole_files_and_a_rerun_replaces_them(tmp_path, child_env, fuzz_counts):
    from micrograd.io import read_model
    out = tmp_path / 'new' / 'folder'
    for seed in ('1', '2'):
        result = demo(['--out', out, '--seed', seed] + TINY, child_env, tmp_path)
        fuzz_counts['micrograd-demo runs']['runs'] += 1
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stderr == '', result.stderr
        assert sorted(p.name for p in out.iterdir()) == ['moons_boundary.png', 'moons_loss.png', 'moons_model.json']
        assert len(read_model(out / 'moons_model.json').parameters()) == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1
