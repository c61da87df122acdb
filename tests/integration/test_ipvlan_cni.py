"""Role underlay.alicloud.ipvlan_cni, run by ansible-playbook with a local connection inside a network
namespace made for each test (veth pair named eth0/eth1 with ENI-style MACs), so the host's own
interfaces are never touched. This kernel has no ipvlan: the real preflight must fail here; the
install paths run with the probe switched to macvlan (which this kernel has) to exercise the
create-then-delete path."""
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import uuid

import pytest

from cluster_sim import CNI_ARCH as ARCH, CNI_PLUGINS as PLUGINS, CNI_VERSION as VERSION, plugins_tarball

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'ipvlan_cni.yml')
MAC0 = '00:16:3e:aa:00:01'
MAC1 = '00:16:3e:aa:00:02'
ENIS = [
    {'id': 'eni-primary', 'type': 'Primary', 'mac': MAC0.upper(), 'device_index': 0},
    {'id': 'eni-second', 'type': 'Secondary', 'mac': MAC1, 'device_index': 1},
]
MACVLAN_PROBE = {'__ipvlan_cni_probe_args': ['type', 'macvlan', 'mode', 'bridge']}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which('ip') is None, reason='needs root and iproute2 for network namespaces')


def ip(*args, check=True):
    return subprocess.run(['ip', *args], check=check, capture_output=True, text=True)


@pytest.fixture
def netns():
    """A namespace with eth0 (up, MAC0) and eth1 (down, MAC1) as a veth pair; always deleted."""
    name = 'ulcni-' + uuid.uuid4().hex[:8]
    ip('netns', 'add', name)
    try:
        ip('-n', name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1')
        ip('-n', name, 'link', 'set', 'eth0', 'address', MAC0)
        ip('-n', name, 'link', 'set', 'eth1', 'address', MAC1)
        ip('-n', name, 'link', 'set', 'eth0', 'up')
        ip('-n', name, 'link', 'set', 'lo', 'up')
        yield name
    finally:
        ip('netns', 'del', name, check=False)


def links(ns):
    return json.loads(ip('-n', ns, '-j', 'link', 'show').stdout)


def link_up(ns, name):
    return next('UP' in link['flags'] for link in links(ns) if link['ifname'] == name)


@pytest.fixture
def tarball(tmp_path):
    """A release-shaped tarball (./ipvlan, ./host-local, ...) of small fake binaries and its sha256."""
    return plugins_tarball(tmp_path)


class Run:
    def __init__(self, proc, cached_fact):
        self.rc, self.out = proc.returncode, proc.stdout + proc.stderr
        recap = re.search(r'node1\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)', self.out)
        self.changed = int(recap.group(2)) if recap else None
        self.failed = int(recap.group(3)) if recap else None
        self.cached_fact = cached_fact


@pytest.fixture
def run_role(tmp_path):
    def run(ns, enis=None, check=False, **extra):
        inventory = {'k8s_cluster': {'hosts': {'node1': {
            'ansible_connection': 'local',
            'ansible_python_interpreter': sys.executable,
            'alicloud_enis': ENIS if enis is None else enis,
        }}}}
        inv = tmp_path / 'inventory.json'
        inv.write_text(json.dumps(inventory))
        variables = {
            'ipvlan_cni_bin_dir': str(tmp_path / 'bin'),
            'ipvlan_cni_download_dir': str(tmp_path / 'cache'),
            'ipvlan_cni_download_retries': 1,
            'ipvlan_cni_download_delay': 0,
        }
        variables.update(extra)
        extra_file = tmp_path / 'extra.json'
        extra_file.write_text(json.dumps(variables))
        cache_dir = tmp_path / 'facts'
        env = dict(os.environ,
                   PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get('PATH', '')]),
                   ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.collections'),
                   ANSIBLE_INVENTORY_ENABLED='ansible.builtin.yaml',
                   ANSIBLE_CACHE_PLUGIN='ansible.builtin.jsonfile',
                   ANSIBLE_CACHE_PLUGIN_CONNECTION=str(cache_dir),
                   ANSIBLE_PIPELINING='1', ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
        cmd = ['ip', 'netns', 'exec', ns, 'ansible-playbook', '-i', str(inv), PLAYBOOK, '-e', '@' + str(extra_file)]
        if check:
            cmd.append('--check')
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)

        def cached_fact(name):
            """A fact as a later play in another run would see it: read back through Ansible's fact cache."""
            out = subprocess.run(['ansible', 'node1', '-i', str(inv), '-o', '-m', 'ansible.builtin.debug', '-a', 'var=' + name],
                                 env=env, capture_output=True, text=True, timeout=60, check=True).stdout
            value = json.loads(out.split('=>', 1)[1])[name]
            return None if 'is undefined' in str(value) or value == 'VARIABLE IS NOT DEFINED!' else value
        return Run(proc, cached_fact)
    return run


def tree(path):
    """{name: (mode, content)} of a directory, for 'left untouched' checks."""
    if not os.path.isdir(path):
        return None
    return {n: (os.stat(os.path.join(path, n)).st_mode, open(os.path.join(path, n), 'rb').read())
            for n in sorted(os.listdir(path))}


def no_probe_links(ns):
    return not [link['ifname'] for link in links(ns) if link['ifname'].startswith('ulprobe')]


def test_preflight_fails_clearly_on_this_kernel_without_ipvlan(netns, tarball, run_role, tmp_path):
    path, sha = tarball
    r = run_role(netns, ipvlan_cni_plugins_archive=str(path), ipvlan_cni_plugins_checksum=sha)
    assert r.rc != 0 and r.failed == 1
    assert 'ipvlan_cni preflight failed on node1: ipvlan is not usable on this node, its kernel ({0})'.format(
        platform.release()) in r.out
    assert 'cannot create IPvlan links' in r.out and 'link eth0|eth1' in r.out
    assert not (tmp_path / 'bin').exists(), 'nothing may be installed after a failed preflight'
    assert no_probe_links(netns)


def test_local_archive_installs_maps_macs_and_is_idempotent(netns, tarball, run_role, tmp_path):
    path, sha = tarball
    args = dict(MACVLAN_PROBE, ipvlan_cni_plugins_archive=str(path), ipvlan_cni_plugins_checksum='sha256:' + sha)
    assert not link_up(netns, 'eth1')
    first = run_role(netns, **args)
    assert first.rc == 0, first.out
    assert first.changed >= 3
    for name in PLUGINS:
        binary = tmp_path / 'bin' / name
        assert binary.read_text() == '#!/bin/sh\necho {0}\n'.format(name)
        assert os.access(binary, os.X_OK)
    # The map the pool planner reads, as a cacheable fact; MACs normalised to lower case.
    assert first.cached_fact('ipvlan_cni_interfaces') == {MAC0: 'eth0', MAC1: 'eth1'}
    assert link_up(netns, 'eth1'), 'the secondary ENI interface is brought up'
    assert no_probe_links(netns), 'the throwaway probe links are deleted'
    second = run_role(netns, **args)
    assert second.rc == 0, second.out
    assert second.changed == 0, second.out


def test_bad_checksum_fails_and_leaves_bin_dir_untouched(netns, tarball, run_role, tmp_path):
    path, sha = tarball
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'ipvlan').write_text('old plugin\n')
    before = tree(bin_dir)
    wrong = hashlib.sha256(b'something else').hexdigest()
    r = run_role(netns, ipvlan_cni_plugins_archive=str(path), ipvlan_cni_plugins_checksum=wrong, **MACVLAN_PROBE)
    assert r.rc != 0
    assert 'ipvlan_cni on node1: {0} has sha256 {1}, expected {2}'.format(path, sha, wrong) in r.out
    assert tree(bin_dir) == before
    assert not (tmp_path / 'cache').exists() or not os.listdir(tmp_path / 'cache')


@pytest.fixture
def mirror(netns, tarball, tmp_path):
    """An HTTP mirror with the release layout, served inside the test namespace."""
    path, sha = tarball
    root = tmp_path / 'mirror'
    (root / ('v' + VERSION)).mkdir(parents=True)
    shutil.copy(path, root / ('v' + VERSION) / path.name)
    proc = subprocess.Popen(['ip', 'netns', 'exec', netns, sys.executable, '-u', '-m', 'http.server', '0',
                             '--bind', '127.0.0.1', '--directory', str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = re.search(r'port (\d+)', proc.stdout.readline()).group(1)
        yield 'http://127.0.0.1:' + port, sha
    finally:
        proc.kill()
        proc.wait()


def test_download_from_mirror_verifies_checksum(netns, mirror, run_role, tmp_path):
    url, sha = mirror
    # Without an override the pinned upstream sha256 applies: this stand-in tarball is refused.
    bad = run_role(netns, ipvlan_cni_plugins_mirror=url, **MACVLAN_PROBE)
    assert bad.rc != 0
    assert 'ipvlan_cni on node1: could not fetch {0}/v{1}/cni-plugins-linux-{2}-v{1}.tgz'.format(url, VERSION, ARCH) in bad.out
    assert 'did not match' in bad.out and 'Nothing was installed' in bad.out
    assert not (tmp_path / 'bin').exists()
    assert not os.listdir(tmp_path / 'cache'), 'a mismatching download is not kept'

    good = run_role(netns, ipvlan_cni_plugins_mirror=url, ipvlan_cni_plugins_checksum=sha, **MACVLAN_PROBE)
    assert good.rc == 0, good.out
    assert (tmp_path / 'bin' / 'ipvlan').read_text() == '#!/bin/sh\necho ipvlan\n'
    assert (tmp_path / 'cache' / 'cni-plugins-linux-{0}-v{1}.tgz'.format(ARCH, VERSION)).is_file()


def test_missing_eni_mac_fails_naming_node_and_eni(netns, run_role):
    enis = ENIS + [{'id': 'eni-gone', 'type': 'Secondary', 'mac': '00:16:3e:aa:00:09'}]
    r = run_role(netns, enis=enis, ipvlan_cni_install_method='chart', **MACVLAN_PROBE)
    assert r.rc != 0
    assert ('ipvlan_cni preflight failed on node1: ENI eni-gone (MAC 00:16:3e:aa:00:09) '
            'is not present as a network interface') in r.out
    assert 'eth0={0}'.format(MAC0) in r.out


def test_down_secondary_interface_fails_when_bring_up_is_off(netns, run_role):
    r = run_role(netns, ipvlan_cni_install_method='chart', ipvlan_cni_bring_up_interfaces=False, **MACVLAN_PROBE)
    assert r.rc != 0
    assert 'ipvlan_cni preflight failed on node1: secondary ENI interface(s) eth1 are down' in r.out
    assert not link_up(netns, 'eth1')


@pytest.mark.parametrize('release, ok', [
    ('4.2.0-42-generic', False),
    ('4.10.17', True),          # a string comparison would call 4.10 older than 4.2
])
def test_kernel_version_is_compared_as_a_version(netns, run_role, tmp_path, release, ok):
    r = run_role(netns, ipvlan_cni_kernel_release=release, ipvlan_cni_install_method='chart', **MACVLAN_PROBE)
    if ok:
        assert r.rc == 0, r.out
        assert not (tmp_path / 'bin').exists(), 'install_method=chart installs nothing on the node'
    else:
        assert r.rc != 0
        assert 'ipvlan_cni preflight failed on node1: kernel {0} is too old for IPvlan'.format(release) in r.out


def test_install_method_none_checks_the_binary(netns, run_role, tmp_path):
    r = run_role(netns, ipvlan_cni_install_method='none', **MACVLAN_PROBE)
    assert r.rc != 0
    assert 'ipvlan_cni on node1: {0}/ipvlan is missing or not executable'.format(tmp_path / 'bin') in r.out
    assert not (tmp_path / 'bin').exists()


def test_check_mode_changes_nothing(netns, tarball, run_role, tmp_path):
    path, sha = tarball
    r = run_role(netns, check=True, ipvlan_cni_plugins_archive=str(path), ipvlan_cni_plugins_checksum=sha,
                 **MACVLAN_PROBE)
    assert r.rc == 0, r.out
    assert r.changed >= 1
    assert not (tmp_path / 'bin').exists() and not (tmp_path / 'cache').exists()
    assert not link_up(netns, 'eth1')
    assert no_probe_links(netns)


def test_render_mode_touches_no_node(netns, tarball, run_role, tmp_path):
    path, sha = tarball
    r = run_role(netns, underlay_mode='render', underlay_render_dir=str(tmp_path / 'out'),
                 ipvlan_cni_plugins_archive=str(path), ipvlan_cni_plugins_checksum=sha)
    assert r.rc == 0, r.out
    # The play ends before its first task on the node: the node has no line in the recap.
    assert 'node1' not in r.out.split('PLAY RECAP')[1], r.out
    assert not (tmp_path / 'bin').exists() and not (tmp_path / 'out').exists()
    assert not link_up(netns, 'eth1')
    assert r.cached_fact('ipvlan_cni_interfaces') is None
