"""The real-cluster harness's own interface: `realkube up` prints the kubeconfig and the cluster
answers; `down` leaves no process; a component that fails is one line and leaves nothing behind."""
import os
import subprocess

import pytest

from real_cluster import ROOT, require_real_cluster

REALKUBE = os.path.join(ROOT, 'tests', 'cluster', 'realkube')
KUBECTL = os.path.join(ROOT, '.venv', 'bin', 'kubectl')


@pytest.fixture
def built():
    """Skips (or fails under UNDERLAY_REQUIRE_REAL_CLUSTER=1) where the components cannot be built."""
    require_real_cluster()


def processes_of(directory):
    out = subprocess.run(['ps', '-eo', 'args'], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if directory in line and 'ps -eo' not in line]


def test_up_prints_the_kubeconfig_and_down_leaves_nothing(built, tmp_path):  # pylint: disable=redefined-outer-name,unused-argument
    directory = str(tmp_path / 'cluster')
    up = subprocess.run([REALKUBE, 'up', '--dir', directory, '--node', 'cp-1:control-plane', '--node', 'node-1'],
                        capture_output=True, text=True, timeout=300, check=False)
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip().splitlines()[-1] == 'kubeconfig %s/kubeconfig' % directory
        nodes = subprocess.run([KUBECTL, '--kubeconfig', directory + '/kubeconfig', 'get', 'nodes', '--no-headers'],
                               capture_output=True, text=True, timeout=60, check=True).stdout
        assert sorted(line.split()[:3] for line in nodes.splitlines()) == [
            ['cp-1', 'Ready', 'control-plane'], ['node-1', 'Ready', '<none>']]
        again = subprocess.run([REALKUBE, 'up', '--dir', directory], capture_output=True, text=True, timeout=60, check=False)
        assert again.returncode == 1 and 'a cluster is already running in %s' % directory in again.stderr
    finally:
        down = subprocess.run([REALKUBE, 'down', '--dir', directory], capture_output=True, text=True, timeout=60, check=False)
    assert down.returncode == 0, down.stderr
    assert processes_of(directory) == []


def test_a_failing_component_is_one_line_and_nothing_is_left(built, tmp_path):  # pylint: disable=redefined-outer-name,unused-argument
    assets = tmp_path / 'assets'
    assets.mkdir()
    fake = assets / 'kube-apiserver'
    fake.write_text('#!/bin/sh\necho "E1 run.go: failed to listen on 127.0.0.1:6443: listen tcp 127.0.0.1:6443: '
                    'bind: address already in use" >&2\nexit 1\n')
    fake.chmod(0o755)
    directory = str(tmp_path / 'cluster')
    env = dict(os.environ, KUBEBUILDER_ASSETS=str(assets))
    up = subprocess.run([REALKUBE, 'up', '--dir', directory], capture_output=True, text=True, timeout=300, env=env, check=False)
    assert up.returncode == 1
    [line] = up.stderr.strip().splitlines()
    assert line.startswith('realkube: kube-apiserver: port in use (') and 'address already in use' in line, line
    assert processes_of(directory) == []


def test_bad_node_argument_is_refused():
    proc = subprocess.run([REALKUBE, 'up', '--dir', '/nonexistent/never', '--node', 'n1:worker'],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "realkube: bad --node 'n1:worker': expected NAME or NAME:control-plane" in proc.stderr
    assert not os.path.exists('/nonexistent/never')
