"""The test command fails on a notebook whose saved outputs are not what its cells print, and names the cell.

Each test plants a stale output in a copy of a notebook (in a temporary project: settings.ini and nbs/) and runs
the command's notebook check on it, `tools/run_tests.py --notebook`, as a subprocess.
"""
import json, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / 'nbs' / 'tutorials' / '01_derivatives.ipynb'  # a fast chapter with printed text and pictures


def check(fn, flags=''):
    "(passed, stale cells) of the test command's check of notebook `fn`"
    result = subprocess.run([sys.executable, str(ROOT / 'tools' / 'run_tests.py'), '--notebook', str(fn),
                             '--flags', flags], capture_output=True, text=True, cwd=fn.parent)
    assert result.returncode == 0, result.stderr
    passed, seconds, stale = json.loads(result.stdout.splitlines()[-1])
    return passed, stale


@pytest.fixture
def project(tmp_path):
    shutil.copy2(ROOT / 'settings.ini', tmp_path / 'settings.ini')
    (tmp_path / 'nbs').mkdir()
    return tmp_path


def copy_with(project, edit):
    "A copy of NOTEBOOK in `project`, its JSON changed by `edit(code_cells)`"
    nb = json.loads(NOTEBOOK.read_text())
    edit([c for c in nb['cells'] if c['cell_type'] == 'code'])
    fn = project / 'nbs' / NOTEBOOK.name
    fn.write_text(json.dumps(nb, indent=1))
    return fn


def first_text_result(cells):
    "(code cell number, cell) of the first cell whose result is plain text only"
    return next((k, c) for k, c in enumerate(cells, 1) for o in c['outputs']
                if o['output_type'] == 'execute_result' and set(o['data']) == {'text/plain'})


def test_a_faithful_copy_passes(project):
    assert check(copy_with(project, lambda cells: None)) == (True, [])


def test_a_changed_result_fails_naming_the_cell_and_line(project):
    def plant(cells):
        k, cell = first_text_result(cells)
        cell['outputs'][0]['data']['text/plain'] = ['stale']
    fn = copy_with(project, plant)
    k, cell = first_text_result([c for c in json.loads(NOTEBOOK.read_text())['cells'] if c['cell_type'] == 'code'])
    passed, stale = check(fn)
    assert passed and len(stale) == 1
    first_line = next(l for l in cell['source'] if l.strip() and not l.startswith('#|')).strip()
    assert stale[0].startswith(f"code cell {k} ({first_line[:60]}), line 1: saved 'stale', now ")


def test_lines_under_a_cell_that_prints_nothing_fail(project):
    "The Optimizers page's case: lines saved under a cell that only defines a function"
    def plant(cells):
        quiet = next(c for c in cells if not c['outputs'])
        quiet['outputs'] = [dict(output_type='stream', name='stdout', text=['an old line\n'])]
    passed, stale = check(copy_with(project, plant))
    assert passed and len(stale) == 1 and stale[0].endswith("line 1: saved 'an old line', now '(no line)'")


def test_a_picture_not_saved_fails(project):
    def plant(cells):
        drawing = next(c for c in cells if any('image/png' in o.get('data', {}) for o in c['outputs']))
        drawing['outputs'] = []
    passed, stale = check(copy_with(project, plant))
    assert passed and len(stale) == 1 and stale[0].endswith("saved '(no line)', now '[picture]'")


def cell(source, *lines):
    return dict(cell_type='code', execution_count=None, metadata={}, source=source,
                outputs=[dict(output_type='stream', name='stdout', text=[l + '\n' for l in lines])] if lines else [])


def notebook(project, *cells):
    fn = project / 'nbs' / 'varies.ipynb'
    fn.write_text(json.dumps(dict(cells=list(cells), metadata={}, nbformat=4, nbformat_minor=5)))
    return fn


TIMED = "import time\nstart = time.perf_counter()\nprint(f'took {time.perf_counter() - start + 1e-9:.3g} s, {3:5} steps')"


def test_varies_lets_numbers_differ_not_words(project):
    assert check(notebook(project, cell(TIMED, 'took 0.25 s,     3 steps')))[1]  # unmarked: the number differs
    assert check(notebook(project, cell('#| varies timings\n' + TIMED, 'took 1e-05 s, 12 steps'))) == (True, [])
    passed, stale = check(notebook(project, cell('#| varies timings\n' + TIMED, 'lasted 0.25 s, 3 steps')))
    assert len(stale) == 1 and "saved 'lasted # s, # steps', now 'took # s, # steps'" in stale[0]


def test_flagged_cells_run_only_with_their_flag(project):
    fn = notebook(project, cell("#| slow\nprint('now')", 'then'))
    assert check(fn) == (True, [])  # skipped, so its saved output cannot be compared
    assert check(fn, 'slow')[1] == ["code cell 1 (print('now')), line 1: saved 'then', now 'now'"]


def test_a_raising_cell_fails(project):
    assert check(notebook(project, cell("raise ValueError('boom')"))) == (False, [])
