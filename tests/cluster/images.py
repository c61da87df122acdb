"""Container images for the VM nodes, built here: no registry can be reached from the lab.

    python3 tests/cluster/images.py build [--out DIR]

Each image is a Docker image archive (`docker save` layout: manifest.json with RepoTags, a config and
layer tars), which `ctr -n k8s.io images import` takes as is. Every image has two layers:

    userland    Debian's static busybox (its applets as links in /bin), and Debian's bash, date and jq
                with the shared libraries they load, copied from this machine (Debian 12, the nodes'
                release): the chart's multus entrypoint is a bash script that logs with
                `date --iso-8601` and edits its config with jq, as Spiderpool's base image allows
    payload     the image's own files: binaries built from the pinned modules (tests/cluster/realkube)

Images (names exactly as the Spiderpool 1.2.2 chart and containerd reference them):

    registry.k8s.io/pause:3.10                                 pause (tests/cluster/build/pause)
    ghcr.io/spidernet-io/spiderpool/spiderpool-agent:v1.2.2      /usr/bin/spiderpool-agent, spiderpool,
                                                                coordinator, ifacer
    ghcr.io/spidernet-io/spiderpool/spiderpool-controller:v1.2.2 /usr/bin/spiderpool-controller,
                                                                spiderpool-init
    ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.4               /install_multus, and the thin plugin at
                                                                /usr/src/multus-cni/bin/multus
    localhost/underlay-e2e/busybox:1.35.0                        the verification pods' image (busybox
                                                                flavour: sh, ping, wget, httpd)
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realkube  # noqa: E402  pylint: disable=wrong-import-position

IMAGES_DIR = os.path.join(realkube.CACHE, 'images')
PAUSE_IMAGE = 'registry.k8s.io/pause:3.10'
TEST_IMAGE = 'localhost/underlay-e2e/busybox:1.35.0'
USERLAND_TOOLS = ('/usr/bin/bash', '/usr/bin/date', '/usr/bin/jq')
AGENT_PLUGINS = ('spiderpool', 'coordinator', 'ifacer')


def _images():
    """name -> (files {path in image: source path}, container config)."""
    spider, node = realkube.BIN, realkube.NODE_BIN
    return {
        PAUSE_IMAGE: ({'/pause': os.path.join(node, 'pause')}, {'Entrypoint': ['/pause']}),
        'ghcr.io/spidernet-io/spiderpool/spiderpool-agent:' + realkube.SPIDERPOOL_VERSION: (
            {'/usr/bin/' + name: os.path.join(spider, name) for name in ('spiderpool-agent', *AGENT_PLUGINS)},
            {'Cmd': ['/usr/bin/spiderpool-agent', 'daemon']}),
        'ghcr.io/spidernet-io/spiderpool/spiderpool-controller:' + realkube.SPIDERPOOL_VERSION: (
            {'/usr/bin/' + name: os.path.join(spider, name) for name in ('spiderpool-controller', 'spiderpool-init')},
            {'Cmd': ['/usr/bin/spiderpool-controller', 'daemon']}),
        'ghcr.io/k8snetworkplumbingwg/multus-cni:' + realkube.MULTUS_VERSION: (
            {'/install_multus': os.path.join(node, 'install_multus'),
             '/usr/src/multus-cni/bin/multus': os.path.join(node, 'multus')},
            {'Cmd': ['/install_multus']}),
        TEST_IMAGE: ({}, {'Cmd': ['/bin/sh']}),
    }


def _entry(name, mode, kind=tarfile.REGTYPE, size=0, link=''):
    info = tarfile.TarInfo(name.lstrip('/'))
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.uid = info.gid = info.mtime = 0
    return info


def _layer(files, links=()):
    """A reproducible layer tar: parent directories, files (path -> source or bytes), symlinks."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.GNU_FORMAT) as tar:
        dirs = set()
        for path in sorted(list(files) + [link[0] for link in links]):
            parts = path.strip('/').split('/')[:-1]
            for depth in range(1, len(parts) + 1):
                dirs.add('/'.join(parts[:depth]))
        for directory in sorted(dirs | {'tmp'}):
            tar.addfile(_entry(directory, 0o1777 if directory == 'tmp' else 0o755, tarfile.DIRTYPE))
        for path in sorted(files):
            source = files[path]
            data = source if isinstance(source, bytes) else open(source, 'rb').read()  # pylint: disable=consider-using-with
            mode = 0o644 if isinstance(source, bytes) or not os.access(source, os.X_OK) else 0o755
            tar.addfile(_entry(path, mode, size=len(data)), io.BytesIO(data))
        for path, target in sorted(links):
            tar.addfile(_entry(path, 0o777, tarfile.SYMTYPE, link=target))
    return out.getvalue()


def _shared_libraries(binary):
    out = subprocess.run(['ldd', binary], capture_output=True, text=True, check=True).stdout
    libs = set()
    for line in out.splitlines():
        words = line.split()
        path = words[2] if '=>' in words and len(words) > 2 else words[0]
        if path.startswith('/'):
            libs.add(path)
    return libs


def userland_layer():
    files = {'/bin/busybox': '/bin/busybox',
             '/etc/passwd': b'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
             '/etc/group': b'root:x:0:\nnogroup:x:65534:\n'}
    for tool in USERLAND_TOOLS:
        files[tool] = tool
        for lib in _shared_libraries(tool):
            files[lib] = os.path.realpath(lib)
    applets = subprocess.run(['/bin/busybox', '--list-full'], capture_output=True, text=True, check=True).stdout.split()
    taken = set(files) | {'/bin/bash'}
    links = [('/' + applet, '/bin/busybox') for applet in applets
             if '/' + applet not in taken and '/usr/' + applet not in taken and applet != 'bin/busybox']
    links.append(('/bin/bash', '/usr/bin/bash'))
    return _layer(files, links)


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def write_archive(path, name, layers, config):
    """A `docker save` archive of one image named NAME from uncompressed layer tars."""
    diff_ids = ['sha256:' + _digest(layer) for layer in layers]
    image_config = json.dumps({
        'architecture': 'amd64', 'os': 'linux', 'created': '1970-01-01T00:00:00Z',
        'config': dict({'Env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
                        'WorkingDir': '/'}, **config),
        'rootfs': {'type': 'layers', 'diff_ids': diff_ids}}, sort_keys=True).encode()
    config_name = _digest(image_config) + '.json'
    manifest = [{'Config': config_name, 'RepoTags': [name],
                 'Layers': ['%s/layer.tar' % _digest(layer) for layer in layers]}]
    with open(path + '.tmp', 'wb') as raw, tarfile.open(fileobj=raw, mode='w', format=tarfile.GNU_FORMAT) as tar:
        members = [(config_name, image_config), ('manifest.json', json.dumps(manifest).encode())]
        members += [('%s/layer.tar' % _digest(layer), layer) for layer in layers]
        for member, data in members:
            tar.addfile(_entry(member, 0o644, size=len(data)), io.BytesIO(data))
    os.replace(path + '.tmp', path)


def archive_name(image):
    return image.split('/')[-1].replace(':', '_') + '.tar'


def build(out=IMAGES_DIR):
    """Write every image's archive into OUT (realkube builds the binaries first); returns {image: path}."""
    realkube.build()
    os.makedirs(out, exist_ok=True)
    userland = userland_layer()
    written = {}
    for name, (files, config) in _images().items():
        path = os.path.join(out, archive_name(name))
        write_archive(path, name, [userland, _layer(files)] if files else [userland], config)
        written[name] = path
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    build_parser = sub.add_parser('build')
    build_parser.add_argument('--out', default=IMAGES_DIR)
    args = parser.parse_args(argv)
    for name, path in build(args.out).items():
        print('%s %s (%.1f MB)' % (name, path, os.path.getsize(path) / 1e6))


if __name__ == '__main__':
    main()
