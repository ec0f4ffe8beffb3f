"""The whole test suite: package in sync with the notebooks, notebooks clean, the book's Colab and glossary links
up to date (tools/book_links.py --check), every notebook's tests pass with
every test flag on (`notest` excepted) and shows the output saved under each cell, the tests in `tests/` pass
(pytest), and the docs build's processing step re-runs no cell.

Run it with the project's virtual environment (`python3 tasks.py test` sets that up and calls this). It stops at
the first failing sync or cleanliness check, and ends with `N passed, N failed` alone on a line (N counts
notebooks plus pytest tests); it exits non-zero when anything failed or nothing was tested.

A cell whose output legitimately changes from run to run says so in a directive line, `#| varies timings` (or
`memory`, or any other word without a colon): its numbers may differ from the saved ones, its words may not.
`python tools/run_tests.py --notebook nbs/NAME.ipynb [--flags 'slow']` runs that part alone, for one notebook.
"""
import argparse, ast, json, os, re, shutil, subprocess, sys, tempfile, time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKERS = 2
PYTEST_TIMEOUT = 20 * 60  # seconds: the whole suite must stay well under CI's time
_number = re.compile(r'[-+]?(\d+(,\d{3})*(\.\d*)?|\.\d+)([eE][-+]?\d+)?')
_address = re.compile(r'\b0x[0-9a-fA-F]+\b')  # object addresses in reprs differ on every run


def fail(message):
    print(f"FAILED: {message}\nstopped before the notebook tests\n0 passed, 0 failed", flush=True)
    sys.exit(1)


def scratch_copy(tmp):
    "Copy what nbdev reads and writes into `tmp`, so no check touches the working tree"
    for name in ['settings.ini', 'pyproject.toml', 'setup.py']:
        if (ROOT / name).exists(): shutil.copy2(ROOT / name, tmp / name)
    for name in ['nbs', 'micrograd']:
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns('_proc', '__pycache__', '.ipynb_checkpoints'))


def files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob('*') if p.is_file()}


def check_unchanged(command, what, advice):
    "nbdev's `command`, run on a scratch copy of the project, must change no file"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); scratch_copy(tmp)
        before = files(tmp)
        result = subprocess.run([str(BIN / command)], cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0: fail(f"{command} itself failed:\n{result.stdout}{result.stderr}")
        after = files(tmp)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed: fail(f"{command} changes these files:\n  " + "\n  ".join(changed) + f"\n{advice}")
    print(f"ok      {what} ({command} changes nothing)", flush=True)


def notebooks():
    "The notebooks nbdev_test tests: all of them, except in a folder holding a `.notest` file"
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    return sorted(f.absolute() for f in nbglob(get_config().nbs_path, as_path=True)
                  if not (f.parent / '.notest').exists())


def shown_lines(outputs, varies=False):
    """What a cell shows as text, line by line: printed text (stdout), and each result's markdown or plain text;
    a result with a picture (or HTML) counts as one line, `[picture]`, because its bytes differ from run to run"""
    text = ''
    for o in outputs:
        kind, data = o.get('output_type'), o.get('data', {})
        if kind == 'stream' and o.get('name') == 'stdout': text += ''.join(o.get('text', ''))
        elif kind in ('execute_result', 'display_data'):
            shown = data.get('text/markdown') or (data.get('text/plain', '') if set(data) <= {'text/plain'} else '[picture]')
            text += ''.join(shown) + '\n'
    lines = [line.rstrip() for line in _address.sub('0x…', text).rstrip().splitlines()]
    return [' '.join(_number.sub('#', line).split()) for line in lines] if varies else lines


def first_difference(saved, now):
    "(line number, saved line, line now) where the two lists of lines first differ, or None"
    pairs = enumerate(zip_longest(saved, now, fillvalue='(no line)'), 1)
    return next(((k, a, b) for k, (a, b) in pairs if a != b), None)


def test_notebook(fn, flags):
    """Run notebook `fn` as nbdev_test does, with test flags `flags` on; (passed, seconds, stale cells).
    nbdev's `test_nb` keeps the cells' outputs to itself, so this is its loop on public API (NBProcessor, execnb's
    CaptureShell), skipping the same cells, with each cell's outputs kept for comparison with the saved ones."""
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    from fastcore.basics import str2bool
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.process import NBProcessor
    cfg = get_config()
    skip = set(cfg.tst_flags.split()) - set(flags)
    nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb
    if str2bool(nb.frontmatter_.get('skip_exec', False)): return True, 0.0, []
    def skipped(cell):
        if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
        if cell.directives_.get('eval:', [''])[0].lower() == 'false' or skip & cell.directives_.keys(): return True
        cell.outputs = []  # execnb keeps a cell's saved outputs when it shows nothing
    ran = []
    sys.path.insert(0, str(cfg.config_path))
    os.environ['IN_TEST'] = '1'
    start, shell = time.time(), CaptureShell(fn)
    try:
        with working_directory(fn.parent): shell.run_all(nb, exc_stop=True, preproc=skipped, postproc=ran.append)
    except Exception:
        sys.stderr.write(shell.prettytb(fname=fn) + '\n')
        return False, time.time() - start, []
    saved, stale = read_nb(fn).cells, []
    code_number = {c.idx_: k for k, c in enumerate((c for c in saved if c.cell_type == 'code'), 1)}
    for cell in ran:
        varies = 'varies' in cell.directives_
        diff = first_difference(shown_lines(saved[cell.idx_].outputs, varies), shown_lines(cell.outputs, varies))
        if diff:
            first = next((l for l in cell.source.splitlines() if l.strip()), '')[:60]
            stale.append(f"code cell {code_number[cell.idx_]} ({first}), line {diff[0]}: saved {diff[1]!r}, now {diff[2]!r}")
    return True, time.time() - start, stale


def run_notebook_tests(flags):
    "Every notebook in a fresh Python process of its own, `WORKERS` at a time; (passed, failed)"
    def run(fn):
        command = [sys.executable, __file__, '--notebook', str(fn), '--flags', ' '.join(flags)]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    files = notebooks()
    if not files: fail("no notebook was found to test (is nbs/ there?)")
    passed = failed = 0
    with ThreadPoolExecutor(WORKERS) as pool:
        for fn, result in zip(files, pool.map(run, files)):
            name = fn.relative_to(ROOT)
            try: ok, seconds, stale = json.loads(result.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError): ok, seconds, stale = False, 0.0, []
            if ok and not stale:
                passed += 1; print(f"ok      {name} ({seconds:.1f} s)", flush=True)
                continue
            failed += 1
            if not ok: print(f"FAILED  {name}: a cell raised\n{result.stderr}", flush=True)
            else:
                print(f"FAILED  {name}: cells show other output than what is saved under them:", flush=True)
                for s in stale: print(f"          {s}")
                print(f"        run {name} top to bottom and save it (`nbdev_clean`, then commit); for output that differs\n"
                      f"        on every run, add a line `#| varies timings` (numbers may differ, words may not)", flush=True)
    return passed, failed


def mixed_import_cells():
    """(notebook, code cell number, first line) of each cell mixing imports with other code, which nbdev's docs build
    runs again on its own. nbdev's rule for it (`processors._do_eval`) is private: it is restated here, and applied
    to every notebook, with reference entries or not, as the project asks (import lines in cells of their own)"""
    from nbdev.process import NBProcessor
    found = []
    for fn in notebooks():
        code = [c for c in NBProcessor(fn).nb.cells if c.cell_type == 'code']
        for number, cell in enumerate(code, 1):
            d = cell.directives_
            if d.keys() & {'export', 'exports', 'exporti', 'exec_doc'} or d.get('eval:', [''])[0].lower() == 'false': continue
            try: nodes = [n for tree in ast.parse(cell.source).body for n in ast.walk(tree)]
            except SyntaxError: continue  # shell escapes and magics
            kinds = {type(n) for n in nodes}
            if kinds & {ast.Import, ast.ImportFrom} and kinds & {ast.Expr, ast.Assign} and 'nbdev_export()' not in cell.source:
                found.append((fn.relative_to(ROOT), number, next(l for l in cell.source.splitlines() if l.strip())[:70]))
    return found


def check_docs_processing():
    """nbdev's docs processing (the docs build's first step) must succeed and re-run no cell: it runs every cell that
    mixes imports with other code again, on its own, and the page then shows other numbers"""
    mixed = mixed_import_cells()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); scratch_copy(tmp)
        # the `nbdev_proc_nbs` command would first try to install Quarto and `pip install -e` the scratch copy
        process = "from nbdev.serve import proc_nbs; proc_nbs(force=True)"
        result = subprocess.run([sys.executable, '-c', process], cwd=tmp, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [l for l in result.stderr.splitlines() if l.startswith('Exception: Error')] or result.stderr.splitlines()[-5:]
        print("FAILED  docs processing (nbdev_proc_nbs): " + "\n        ".join(errors), flush=True)
        return False
    if mixed or 'Found cells containing imports and other code' in result.stderr:
        print("FAILED  docs processing: these cells mix imports with other code, so nbdev runs them again when it builds the docs:")
        for fn, number, first in mixed: print(f"          {fn}, code cell {number}: {first}")
        if not mixed: print("        " + result.stderr.strip()[-1500:])
        print("        put the imports in a cell of their own (then run the notebook again and save it)", flush=True)
        return False
    print("ok      docs processing (nbdev_proc_nbs) succeeds and re-runs no cell", flush=True)
    return True


def run_pytest():
    "`pytest tests/`; (passed, failed), counted from its JUnit report"
    with tempfile.TemporaryDirectory() as tmp:
        report, start = Path(tmp) / 'pytest.xml', time.time()
        # `python -m pytest` from the root puts this checkout first on sys.path, so the tests import its package
        command = [sys.executable, '-m', 'pytest', 'tests/', '-q', '-p', 'no:cacheprovider', f'--junitxml={report}']
        try: result = subprocess.run(command, cwd=ROOT, timeout=PYTEST_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"FAILED  tests/ (pytest): still running after {PYTEST_TIMEOUT} s, stopped (a test hangs?)", flush=True)
            return 0, 1
        suites = list(ET.parse(report).getroot().iter('testsuite')) if report.exists() else []
    count = lambda key: sum(int(s.get(key, 0)) for s in suites)
    failed = count('failures') + count('errors')
    passed = count('tests') - failed - count('skipped')
    failed = failed or int(result.returncode != 0)  # pytest itself failed (usage or collection error, no test)
    print(f"{'FAILED ' if result.returncode else 'ok     '} tests/ (pytest): {passed} passed, {failed} failed, "
          f"{count('skipped')} skipped ({time.time() - start:.1f} s)", flush=True)
    return passed, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--notebook', type=Path, help="run only this notebook's check; prints its result as JSON")
    parser.add_argument('--flags', help="test flags to run (default: all of settings.ini's tst_flags but notest)")
    args = parser.parse_args()
    if not args.notebook: os.chdir(ROOT)  # nbdev reads settings.ini from the current folder up
    from nbdev.config import get_config
    flags = [f for f in get_config().tst_flags.split() if f != 'notest'] if args.flags is None else args.flags.split()
    if args.notebook: return print(json.dumps(test_notebook(args.notebook.resolve(), flags)))
    start = time.time()
    check_unchanged('nbdev_export', 'package in sync with the notebooks',
                    "Edit the notebooks in nbs/ (not micrograd/*.py), then run `nbdev_export` and commit.")
    check_unchanged('nbdev_clean', 'notebooks clean', "Run `nbdev_clean` and commit.")
    links = subprocess.run([sys.executable, str(ROOT / 'tools' / 'book_links.py'), '--check'], cwd=ROOT, capture_output=True, text=True)
    if links.returncode != 0: fail(f"the book's links are out of date:\n{links.stdout}{links.stderr}")
    print(f"ok      {links.stdout.strip().removeprefix('ok').strip()} (tools/book_links.py --check)", flush=True)
    passed, failed = run_notebook_tests(flags)
    test_passed, test_failed = run_pytest()
    docs_ok = check_docs_processing() if not failed else True
    print(f"checks took {time.time() - start:.0f} s")
    passed, failed = passed + test_passed, failed + test_failed + (not docs_ok)  # a failed docs check counts once
    print(f"{passed} passed, {failed} failed")
    if failed or not passed: sys.exit(1)


if __name__ == '__main__': main()
