"""Runs every benchmark of tests/benchmarks at a quick size and prints their numbers (`make bench`).

Each bench_*.py runs in its own process with the arguments below (smaller than its default, so the
whole set takes minutes, not the tens of minutes of the documented sizes); its output is printed as
it comes, then one line per benchmark with its exit code and wall time. A benchmark without an entry
runs with its own defaults. Measurements, not tests: `make test` does not run them.

  .venv/bin/python tests/benchmarks/run_all.py [--only inventory,pools] [--full]

--full runs each benchmark with its own defaults (the sizes docs/benchmarks.md quotes).
"""
import argparse
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

QUICK = {
    'bench_capacity.py': ['--nodes', '50'],
    'bench_instance_paging.py': ['--instances', '1000', '--repeat', '1'],
    'bench_inventory.py': ['--instances', '1000', '--repeat', '1'],
    'bench_pools.py': ['--nodes', '50'],
    'bench_site.py': ['--large', '20', '--repeat', '1'],
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--only', help='comma-separated benchmark names without bench_ and .py, e.g. inventory,pools')
    parser.add_argument('--full', action='store_true', help="each benchmark's own default size")
    args = parser.parse_args(argv)
    scripts = sorted(glob.glob(os.path.join(HERE, 'bench_*.py')))
    if args.only:
        wanted = {'bench_%s.py' % name.strip() for name in args.only.split(',')}
        unknown = wanted - {os.path.basename(script) for script in scripts}
        if unknown:
            parser.error('no such benchmark: %s' % ', '.join(sorted(unknown)))
        scripts = [script for script in scripts if os.path.basename(script) in wanted]
    results = []
    for script in scripts:
        name = os.path.basename(script)
        command = [sys.executable, script] + ([] if args.full else QUICK.get(name, []))
        print('== %s' % ' '.join([os.path.relpath(script, os.getcwd())] + command[2:]), flush=True)
        started = time.monotonic()
        code = subprocess.call(command)
        results.append((name, code, time.monotonic() - started))
    print('== summary')
    for name, code, seconds in results:
        print('  %-28s %s in %.0f s' % (name, 'ok' if code == 0 else 'exit %d' % code, seconds))
    return 1 if any(code for _name, code, _seconds in results) else 0


if __name__ == '__main__':
    sys.exit(main())
