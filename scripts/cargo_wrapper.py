#!/usr/bin/env python3
"""Runs cargo for meson.build (a much smaller cousin of gst-plugins-rs's).

  cargo_wrapper.py build --source-dir S --target-dir T --profile dev|release
                   [--features a,b] --output O --depfile D [-- CARGO ARGS]
  cargo_wrapper.py test  --source-dir S --target-dir T --profile dev|release
                   [--features a,b] [-- CARGO TEST ARGS]

build: `cargo build` into the target dir T (under meson's build dir), copies
the library named like O from T/<profile dir> to O, and writes a depfile D
from cargo's own dep-info plus Cargo.toml, Cargo.lock and build.rs, so that
ninja reruns cargo only when one of them changes.

test: `cargo test --no-fail-fast` with the same target dir, profile and
features; anything after `--` (meson test --test-args) goes to cargo, e.g.
`--test element` or `-- --test-threads=1`. The suite reads its reference
data from ../shared next to the source dir; without it the test exits 77,
which meson reports as SKIP, with the reason on stdout.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

MESON_SKIP = 77


def parse_args(argv):
    extra = []
    if '--' in argv:
        split = argv.index('--')
        argv, extra = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=['build', 'test'])
    parser.add_argument('--cargo', default='cargo')
    parser.add_argument('--source-dir', type=Path, required=True)
    parser.add_argument('--target-dir', type=Path, required=True)
    parser.add_argument('--profile', choices=['dev', 'release'], required=True)
    parser.add_argument('--features', default='')
    parser.add_argument('--output', type=Path)
    parser.add_argument('--depfile', type=Path)
    opts = parser.parse_args(argv)
    if opts.command == 'build' and not (opts.output and opts.depfile):
        parser.error('build needs --output and --depfile')
    return opts, extra


def run_cargo(opts, subcommand, extra):
    cmd = [opts.cargo, subcommand, '--locked',
           '--manifest-path', str(opts.source_dir / 'Cargo.toml')]
    if opts.profile == 'release':
        cmd.append('--release')
    if opts.features:
        cmd += ['--features', opts.features]
    if subcommand == 'test':
        cmd.append('--no-fail-fast')
    cmd += extra
    env = dict(os.environ, CARGO_TARGET_DIR=str(opts.target_dir))
    print('CARGO_TARGET_DIR=' + str(opts.target_dir), ' '.join(cmd), flush=True)
    return subprocess.run(cmd, env=env, cwd=opts.source_dir).returncode


def make_escape(path):
    return str(path).replace('$', '$$').replace(' ', '\\ ')


def crate_stem(path):
    stem = Path(path).stem
    return stem[3:] if stem.startswith('lib') else stem


def write_depfile(opts, library):
    """Our output depends on what rustc read for the library (cargo's
    dep-info next to it) and on the files rustc's list leaves out. With
    several crate types cargo writes one <profile dir>/lib<crate>.d, naming
    just one of the outputs (here the rlib): all have the same inputs."""
    crate = crate_stem(library)
    candidates = [library.with_suffix('.d'), library.with_name(f'lib{crate}.d')]
    deps = None
    for dep_info in (c for c in candidates if c.is_file()):
        with open(dep_info, encoding='utf-8') as f:
            for line in f:
                line = line.rstrip('\n')
                # "<output>: <dep> <dep>..." with make escaping; split at
                # ': ' rather than ':' because of Windows drive letters.
                if line.endswith(':'):
                    output, rest = line[:-1], ''
                else:
                    output, sep, rest = line.partition(': ')
                    if not sep:
                        continue
                if crate_stem(output) == crate:
                    deps = [rest.strip()]
                    break
        if deps is not None:
            break
    if deps is None:
        sys.exit(f'cargo_wrapper: no dep-info for {library.name} in {library.parent}')
    for name in ('Cargo.toml', 'Cargo.lock', 'build.rs'):
        path = opts.source_dir / name
        if path.exists() and make_escape(path) not in deps[0].split(' '):
            deps.append(make_escape(path))
    with open(opts.depfile, 'w', encoding='utf-8') as f:
        f.write(f"{make_escape(opts.output)}: {' '.join(d for d in deps if d)}\n")


def build(opts, extra):
    rc = run_cargo(opts, 'build', extra)
    if rc != 0:
        return rc
    profile_dir = 'debug' if opts.profile == 'dev' else 'release'
    library = opts.target_dir / profile_dir / opts.output.name
    if not library.is_file():
        sys.exit(f'cargo_wrapper: cargo built no {library}')
    # Copy then rename (a running GStreamer never maps a half-written file);
    # copyfile gives the copy a fresh mtime, newer than whatever made ninja
    # rerun us, even when cargo had nothing to rebuild.
    tmp = opts.output.with_name('.' + opts.output.name + '.tmp')
    shutil.copyfile(library, tmp)
    os.replace(tmp, opts.output)
    write_depfile(opts, library)
    return 0


def test(opts, extra):
    # tests/common/mod.rs reads CARGO_MANIFEST_DIR/../shared: resolve it the
    # same way (through the OS, not lexically).
    shared = opts.source_dir / '..' / 'shared'
    if not shared.is_dir():
        print(f'SKIP: {os.path.normpath(shared)} is missing. The test suite reads '
              'its reference data (reference/, eval/) from ../shared next to the '
              'source dir; put that folder there (a symlink will do) to run it.',
              flush=True)
        return MESON_SKIP
    return run_cargo(opts, 'test', extra)


def main():
    opts, extra = parse_args(sys.argv[1:])
    opts.source_dir = opts.source_dir.absolute()
    opts.target_dir = opts.target_dir.absolute()
    return build(opts, extra) if opts.command == 'build' else test(opts, extra)


if __name__ == '__main__':
    sys.exit(main())
