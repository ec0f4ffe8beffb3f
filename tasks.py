#!/usr/bin/env python3
"""The README's quick start: `python3 tasks.py demo` trains the demo network, `python3 tasks.py test` runs every test.

Both first set up what is missing, and only that: a virtual environment in `.venv/`, PyTorch's CPU build
(pinned, from PyTorch's CPU index, before the dev extras, so pip never pulls the multi-GB CUDA build),
micrograd with its dev extras, and Graphviz's `dot` program (installed with apt when run as root).
Standard library only, Python 3.9+.
"""
import hashlib, os, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / '.venv'
BIN = VENV / ('Scripts' if os.name == 'nt' else 'bin')
PYTHON = BIN / ('python.exe' if os.name == 'nt' else 'python')
TORCH = 'torch==2.13.0'
TORCH_CPU_INDEX = 'https://download.pytorch.org/whl/cpu'
STAMP = VENV / '.micrograd-setup'


def say(message): print(f"[tasks] {message}", flush=True)


def stop(message):
    print(f"[tasks] error: {message}", file=sys.stderr)
    sys.exit(1)


def run(*command, **kwargs):
    say(' '.join(str(c) for c in command))
    return subprocess.run([str(c) for c in command], **kwargs).returncode == 0


def is_root(): return hasattr(os, 'geteuid') and os.geteuid() == 0


def apt_install(*packages):
    "Install Debian/Ubuntu packages when we may; False when we cannot"
    if not (is_root() and shutil.which('apt-get')): return False
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    return run('apt-get', 'update', '-qq', env=env) and run('apt-get', 'install', '-y', '-qq', *packages, env=env)


def ensure_python():
    if sys.version_info < (3, 9): stop(f"micrograd needs Python 3.9 or newer; this is {sys.version.split()[0]}")


def ensure_venv():
    if PYTHON.exists(): return
    if run(sys.executable, '-m', 'venv', VENV): return
    shutil.rmtree(VENV, ignore_errors=True)
    version = f"python3.{sys.version_info.minor}-venv"
    if (apt_install(version) or apt_install('python3-venv')) and run(sys.executable, '-m', 'venv', VENV): return
    shutil.rmtree(VENV, ignore_errors=True)
    stop(f"could not create a virtual environment. On Debian/Ubuntu install it with\n"
         f"    sudo apt-get install {version}\nthen run this command again.")


def ensure_dot():
    if shutil.which('dot'): return
    say("Graphviz's `dot` program is missing: installing the graphviz system package")
    if apt_install('graphviz') and shutil.which('dot'): return
    stop("Graphviz's `dot` program is not on PATH; micrograd draws computation graphs with it. Install it with\n"
         "    sudo apt-get install graphviz     (Debian/Ubuntu)\n"
         "    brew install graphviz             (macOS)\n"
         "    conda install -c conda-forge graphviz\n"
         "then run this command again.")


def setup_fingerprint():
    "Changes when the declared dependencies change, so a stale environment is brought up to date"
    text = ''.join((ROOT / f).read_text() for f in ('settings.ini', 'setup.py', 'pyproject.toml') if (ROOT / f).exists())
    return hashlib.sha256((TORCH + text).encode()).hexdigest()


def install_torch(pip):
    "PyTorch's CPU build, pinned where it exists for this Python; on Linux never PyPI's CUDA build"
    if not sys.platform.startswith('linux'): return run(*pip, TORCH)  # macOS and Windows wheels are CPU builds
    cpu = TORCH + '+cpu'
    return (run(*pip, cpu)  # a wheel already on this machine or on a configured mirror
            or run(*pip, '--index-url', TORCH_CPU_INDEX, cpu)
            or run(*pip, '--index-url', TORCH_CPU_INDEX, 'torch'))  # a Python older than 2.13 supports


def ensure_packages():
    if STAMP.exists() and STAMP.read_text() == setup_fingerprint(): return
    pip = [PYTHON, '-m', 'pip', 'install', '--disable-pip-version-check']
    if not run(*pip, '--quiet', '--upgrade', 'pip', 'setuptools', 'wheel'): stop("could not upgrade pip in .venv")
    has_torch = subprocess.run([str(PYTHON), '-c', 'import torch'], capture_output=True).returncode == 0
    if not has_torch and not install_torch(pip):
        stop(f"could not install PyTorch's CPU build. Install a PyTorch build for your machine into .venv\n"
             f"    ({PYTHON} -m pip install torch --index-url {TORCH_CPU_INDEX}), then run this command again.")
    if not run(*pip, '-e', f"{ROOT}[dev]"): stop("could not install micrograd's dev extras (see pip's message above)")
    STAMP.write_text(setup_fingerprint())


def setup():
    ensure_python()
    ensure_venv()
    ensure_dot()
    ensure_packages()


def demo(args):
    "Train the demo network (moons; `--task digits` for handwritten digits); extra arguments go to `micrograd-demo`"
    setup()
    sys.exit(subprocess.run([str(BIN / 'micrograd-demo'), *args], cwd=ROOT).returncode)


def test(args):
    "Run the whole test suite: export in sync, notebooks clean, every notebook (slow cells too, outputs as saved), tests/, docs"
    setup()
    sys.exit(subprocess.run([str(PYTHON), str(ROOT / 'tools' / 'run_tests.py'), *args], cwd=ROOT).returncode)


def main():
    tasks = {'demo': demo, 'test': test, 'setup': lambda args: setup()}
    if len(sys.argv) < 2 or sys.argv[1] not in tasks:
        print(__doc__.strip())
        print("\nusage: python3 tasks.py {demo|test|setup} [arguments for the demo]")
        sys.exit(0 if len(sys.argv) >= 2 and sys.argv[1] in ('-h', '--help') else 2)
    tasks[sys.argv[1]](sys.argv[2:])


if __name__ == '__main__': main()
