"""The whole test suite: package in sync with the notebooks, notebooks clean, every notebook's tests pass.

Run it with the project's virtual environment (`python3 tasks.py test` sets that up and calls this).
Stops at the first failing check, ends with `N passed, N failed` (N counts notebooks), and exits non-zero
when anything failed or no notebook was tested.
"""
import filecmp, multiprocessing, os, shutil, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fail(message):
    print(f"FAILED: {message}", flush=True)
    print("stopped before the notebook tests")
    print("0 passed, 0 failed")
    sys.exit(1)


def changed_files(before, after):
    "Relative paths that differ between folders `before` and `after` (added, removed or edited)"
    cmp = filecmp.dircmp(before, after, ignore=['__pycache__', '.ipynb_checkpoints'])
    changed = []
    def walk(c, prefix):
        changed.extend(prefix + n for n in c.left_only + c.right_only + c.diff_files)
        for name, sub in c.subdirs.items(): walk(sub, prefix + name + '/')
    walk(cmp, '')
    return sorted(changed)


def scratch_copy(tmp):
    "Copy what nbdev reads and writes into `tmp`, so the checks never touch the working tree"
    for name in ['settings.ini', 'pyproject.toml', 'setup.py']:
        if (ROOT / name).exists(): shutil.copy2(ROOT / name, tmp / name)
    shutil.copytree(ROOT / 'nbs', tmp / 'nbs', ignore=shutil.ignore_patterns('_proc', '_docs', '.ipynb_checkpoints'))
    shutil.copytree(ROOT / 'micrograd', tmp / 'micrograd', ignore=shutil.ignore_patterns('__pycache__'))


def run_nbdev(command, cwd):
    result = subprocess.run([str(Path(sys.executable).parent / command)], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0: fail(f"{command} itself failed:\n{result.stdout}{result.stderr}")


def snapshot(tmp, dest):
    "Copy what `nbdev_export` writes in `tmp` (the package and pyproject.toml) to `dest`"
    shutil.copytree(tmp / 'micrograd', dest / 'micrograd', ignore=shutil.ignore_patterns('__pycache__'))
    if (tmp / 'pyproject.toml').exists(): shutil.copy2(tmp / 'pyproject.toml', dest / 'pyproject.toml')


def check_export_in_sync():
    "`nbdev_export` must change nothing: the package is exactly what the notebooks say"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); scratch_copy(tmp)
        snapshot(tmp, tmp / 'before')
        run_nbdev('nbdev_export', tmp)
        snapshot(tmp, tmp / 'after')
        changed = changed_files(tmp / 'before', tmp / 'after')
    if changed:
        fail("the package is out of sync with the notebooks; these files differ from what nbdev_export writes:\n  "
             + "\n  ".join(changed) + "\nEdit the notebooks in nbs/ (not micrograd/*.py), then run `nbdev_export` and commit.")
    print("ok      package in sync with the notebooks (nbdev_export changes nothing)", flush=True)


def check_notebooks_clean():
    "`nbdev_clean` must change nothing: no execution counts, no stray metadata"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); scratch_copy(tmp)
        before = tmp / 'before'; shutil.copytree(tmp / 'nbs', before)
        run_nbdev('nbdev_clean', tmp)
        changed = changed_files(before, tmp / 'nbs')
    if changed:
        fail("these notebooks are not clean:\n  nbs/" + "\n  nbs/".join(changed) + "\nRun `nbdev_clean` and commit.")
    print("ok      notebooks clean (nbdev_clean changes nothing)", flush=True)


def notebooks():
    "The notebooks nbdev_test would test"
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    from nbdev.test import _keep_file
    cfg = get_config(path=ROOT)
    files = nbglob(cfg.nbs_path, as_path=True)
    return sorted(f.absolute() for f in files if _keep_file(f, '.notest'))


def _shown_kinds(outputs):
    "What a cell shows the reader: printed text and/or a displayed result (stderr, e.g. warnings, does not count)"
    kinds = set()
    for o in outputs:
        if o.get('output_type') in ('display_data', 'execute_result'): kinds.add('display')
        elif o.get('output_type') == 'stream' and o.get('name') == 'stdout': kinds.add('printed text')
    return kinds


def test_notebook(fn):
    "Run `fn` exactly as nbdev_test does; also list code cells whose shown output (text, pictures) is not saved"
    import nbdev.test
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    from nbdev.config import get_config
    cfg = get_config(path=ROOT)
    shells = []
    class RecordingShell(CaptureShell):
        def run_all(self, nb, *args, **kwargs):
            shells.append(nb)
            return super().run_all(nb, *args, **kwargs)
    nbdev.test.CaptureShell = RecordingShell
    os.chdir(cfg.nbs_path)
    passed, seconds = nbdev.test.test_nb(fn, skip_flags=cfg.tst_flags.split(), basepath=cfg.config_path)
    missing = []
    if passed and shells:
        executed = [c for c in shells[0].cells if c.cell_type == 'code']
        saved = [c for c in read_nb(fn).cells if c.cell_type == 'code']
        for number, (ran, kept) in enumerate(zip(executed, saved), 1):
            lost = _shown_kinds(ran.get('outputs', [])) - _shown_kinds(kept.get('outputs', []))
            if lost:
                missing.append(f"code cell {number} ({', '.join(sorted(lost))} not saved): {kept.source.strip().splitlines()[-1][:60]}")
    return passed, seconds, missing


def run_notebook_tests(workers=2):
    files = notebooks()
    if not files: fail("no notebook was found to test (is nbs/ there?)")
    passed = failed = 0
    # a fresh process per notebook (Python 3.11+), so one notebook's patches cannot leak into another
    isolate = {'max_tasks_per_child': 1} if sys.version_info >= (3, 11) else {}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn'), **isolate) as pool:
        for fn, (ok, seconds, missing) in zip(files, pool.map(test_notebook, files)):
            name = fn.relative_to(ROOT)
            if ok and not missing:
                passed += 1; print(f"ok      {name} ({seconds:.1f} s)", flush=True)
                continue
            failed += 1
            if not ok: print(f"FAILED  {name}: a cell raised (traceback above)", flush=True)
            else:
                print(f"FAILED  {name}: cells show output when run but have none saved (stale or missing pictures):", flush=True)
                for m in missing: print(f"          {m}")
                print(f"        run {name} top to bottom (in Jupyter: Restart & Run All) and save it, then `nbdev_clean`, and commit", flush=True)
    return passed, failed


def check_docs_processing():
    "The docs build's first step, nbdev's notebook processing, must succeed (it runs import and show_doc cells on their own)"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); scratch_copy(tmp)
        # nbdev's own processing step; the `nbdev_proc_nbs` command would first try to install Quarto (sudo) and then
        # `pip install -e` whatever folder it runs in, repointing this environment at a temporary copy
        process = "from nbdev.serve import proc_nbs; proc_nbs(force=True)"
        result = subprocess.run([sys.executable, '-c', process], cwd=tmp, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [l for l in result.stderr.splitlines() if l.startswith('Exception: Error')] or result.stderr.splitlines()[-5:]
        print("FAILED  docs processing (nbdev_proc_nbs): " + "\n        ".join(errors), flush=True)
        print("        nbdev runs every cell that mixes imports with other code on its own when it builds the docs:\n"
              "        put imports in a cell of their own, or make that cell self-contained", flush=True)
        return False
    print("ok      docs processing (nbdev_proc_nbs) succeeds", flush=True)
    return True


def main():
    os.chdir(ROOT)
    start = time.time()
    check_export_in_sync()
    check_notebooks_clean()
    passed, failed = run_notebook_tests()
    docs_ok = check_docs_processing() if not failed else True
    print(f"checks took {time.time() - start:.0f} s")
    print(f"{passed} passed, {failed} failed")
    if failed or not passed or not docs_ok: sys.exit(1)


if __name__ == '__main__': main()
