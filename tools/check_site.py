"""Reads the built docs site (`_docs/`, from `nbdev_docs`) as a reader meets it, and reports what issue 12 asks of it.

  python tools/check_site.py [--docs _docs] [--strict]

- every definition (class, function, method, private helper) of the modules the book builds appears in a code
  block of some page, as source (a `def name(` or `class Name` line followed by a body), not only as a signature;
- the share of visible code lines that are `test_*` calls or `assert`s, for the site and for each page
  (folded cells, `<details>` that are not open, do not count as visible);
- internal links and anchors that point nowhere, and reference entries that read "Call self as a function".
With --strict it exits 1 when a limit is missed (all shown, <= 10% tests on the site, <= 20% on any page, 0 broken).
Developer aid: it needs a built site, so it is not part of the test command.
"""
import argparse, ast, html, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ['engine', 'nn', 'viz', 'losses', 'optim', 'autograd', 'func', 'tensor']
SITE_URL = 'https://micrograd.github.io/micrograd/'

_block = re.compile(r'<div class="sourceCode"[^>]*>\s*<pre class="sourceCode[^"]*"><code[^>]*>(.*?)</code></pre>', re.S)
_details = re.compile(r'<details( open)?>(.*?)</details>', re.S)
_heading_sig = re.compile(r'<h[2-4][^>]*>[^<]*</h[2-4]>\s*$', re.S)
_tags = re.compile(r'<[^>]+>')


def text_of(block_html):
    return html.unescape(_tags.sub('', block_html))


def code_blocks(page_html):
    "(source text, visible, is_signature) for every code block of a page"
    folded = [(m.start(), m.end()) for m in _details.finditer(page_html) if not m.group(1)]
    blocks = []
    for m in _block.finditer(page_html):
        visible = not any(a <= m.start() < b for a, b in folded)
        # nbdev's reference entry: a heading, then the signature block (and the docstring as a paragraph)
        before = page_html[max(0, m.start() - 400):m.start()]
        is_signature = bool(_heading_sig.search(before))
        blocks.append((text_of(m.group(1)), visible, is_signature))
    return blocks


def definitions(module):
    "(qualified name, class or None, name) for every def and class in micrograd/<module>.py"
    tree = ast.parse((ROOT / 'micrograd' / f'{module}.py').read_text())
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            patched = None
            if any(getattr(d, 'id', None) == 'patch' for d in node.decorator_list) and node.args.args:
                ann = node.args.args[0].annotation
                patched = getattr(ann, 'id', None)
            found.append((f'{patched}.{node.name}' if patched else node.name, patched, node.name))
        elif isinstance(node, ast.ClassDef):
            found.append((node.name, None, node.name))
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found.append((f'{node.name}.{sub.name}', node.name, sub.name))
    return found


def shown(qualified, cls, name, sources):
    "Is this definition's source (not just its signature) in one of the code blocks?"
    if cls is None and qualified == name:
        pattern = re.compile(rf'^\s*(async\s+def|def|class)\s+{re.escape(name)}\b[^\n]*\n(\s*["\'#@\w].*)', re.M)
        return any(pattern.search(s) for s in sources)
    method = re.compile(rf'^\s*(async\s+)?def\s+{re.escape(name)}\((.*)$', re.M)
    for s in sources:
        for m in method.finditer(s):
            if re.match(rf'\s*self\s*:\s*{re.escape(cls)}\b', m.group(2)): return True  # @patch def m(self:Cls, ...)
            if re.search(rf'^class\s+{re.escape(cls)}\b', s[:m.start()], re.M): return True
    return False


def page_ids(page_html):
    return set(re.findall(r'\sid="([^"]+)"', page_html))


def check_links(pages, docs):
    broken = []
    ids = {p: page_ids(h) for p, h in pages.items()}
    for page, page_html in pages.items():
        for href in re.findall(r'href="([^"]+)"', page_html):
            href = html.unescape(href)
            if href.startswith(SITE_URL): target = href[len(SITE_URL):]
            elif re.match(r'^[a-z]+:', href) or href.startswith('//'): continue
            else: target = href
            path, _, anchor = target.partition('#')
            if path == '': dest = page
            else:
                dest = (docs / page).parent / path if not href.startswith(SITE_URL) else docs / path
                try: dest = dest.resolve().relative_to(docs.resolve())
                except ValueError: broken.append((page, href, 'outside the site')); continue
                if dest.suffix != '.html' and (docs / dest).is_dir(): dest = dest / 'index.html'
                if not (docs / dest).exists():
                    broken.append((page, href, 'no such page')); continue
            if anchor and dest.suffix == '.html' and anchor not in ids.get(Path(dest), page_ids((docs / dest).read_text())):
                broken.append((page, href, 'no such anchor'))
    return broken


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--docs', default=str(ROOT / '_docs'))
    parser.add_argument('--strict', action='store_true')
    args = parser.parse_args()
    docs = Path(args.docs)
    if not docs.is_dir(): sys.exit(f"no site at {docs}: build it first (PATH=/path/to/shared/tools:$PATH nbdev_docs)")
    pages = {p.relative_to(docs): p.read_text() for p in sorted(docs.rglob('*.html'))}
    blocks = {p: code_blocks(h) for p, h in pages.items()}
    sources = [s for bs in blocks.values() for s, _, sig in bs if not sig]

    ok = True
    print("Definitions shown as code:")
    for module in MODULES:
        if not (ROOT / 'micrograd' / f'{module}.py').exists(): continue
        defs = definitions(module)
        missing = [q for q, c, n in defs if not shown(q, c, n, sources)]
        print(f"  {module:8} {len(defs) - len(missing):3} of {len(defs):3}" + (f"   missing: {', '.join(missing)}" if missing else ''))
        ok &= not missing

    print("\nVisible code lines that are tests (test_* calls, asserts):")
    total_code = total_tests = 0
    for page, bs in blocks.items():
        lines = [l for s, visible, sig in bs if visible and not sig for l in s.splitlines() if l.strip()]
        tests = [l for l in lines if re.match(r'\s*(test_\w+\(|assert\b)', l)]
        total_code += len(lines); total_tests += len(tests)
        share = len(tests) / len(lines) if lines else 0.0
        flag = '  <-- over 20%' if share > 0.20 else ''
        ok &= share <= 0.20
        print(f"  {str(page):42} {len(tests):4} of {len(lines):4} ({share:5.1%}){flag}")
    site_share = total_tests / total_code if total_code else 0.0
    ok &= site_share <= 0.10
    print(f"  {'whole site':42} {total_tests:4} of {total_code:4} ({site_share:5.1%})" + ('  <-- over 10%' if site_share > 0.10 else ''))

    broken = check_links(pages, docs)
    print(f"\nBroken internal links or anchors: {len(broken)}")
    for page, href, why in broken: print(f"  {page}: {href} ({why})")
    ok &= not broken

    call_self = [str(p) for p, h in pages.items() if 'Call self as a function' in h]
    print(f"Pages with 'Call self as a function': {len(call_self)}" + (f" ({', '.join(call_self)})" if call_self else ''))
    ok &= not call_self
    def_class = [(str(p), m) for p, bs in blocks.items() for s, _, sig in bs if sig
                 for m in re.findall(r'^(?<!@property\n)def ([A-Z]\w*)\(', s, re.M)]
    print(f"Classes whose reference entry reads `def Name(`: {len(def_class)}" + (f" ({', '.join(sorted({m for _, m in def_class}))})" if def_class else ''))
    ok &= not def_class
    if args.strict and not ok: sys.exit(1)


if __name__ == '__main__': main()
