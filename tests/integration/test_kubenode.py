"""The Kubernetes-node tooling of `make e2e` without booting a VM: the image archives are what
containerd imports (the real containerd, when this machine has it), node credentials name the node
as the Node authorizer wants, and a lab without the node disk is refused in one line."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from real_cluster import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tests', 'cluster'))
import images  # noqa: E402  pylint: disable=wrong-import-position
import kubenode  # noqa: E402  pylint: disable=wrong-import-position
import realkube  # noqa: E402  pylint: disable=wrong-import-position

KUBENODE = os.path.join(ROOT, 'tests', 'cluster', 'kubenode')


def _members(path):
    with tarfile.open(path) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isfile()}


def test_an_archive_is_a_docker_save_of_the_named_image_with_matching_digests(tmp_path):
    layer = images._layer({'/usr/bin/tool': b'#!/bin/sh\necho hi\n'}, [('/bin/tool2', '/usr/bin/tool')])
    assert layer == images._layer({'/usr/bin/tool': b'#!/bin/sh\necho hi\n'}, [('/bin/tool2', '/usr/bin/tool')])
    path = str(tmp_path / 'x.tar')
    images.write_archive(path, 'ghcr.io/example/tool:v1', [layer], {'Cmd': ['/usr/bin/tool']})
    members = _members(path)
    manifest = json.loads(members['manifest.json'])
    assert manifest[0]['RepoTags'] == ['ghcr.io/example/tool:v1']
    config = json.loads(members[manifest[0]['Config']])
    assert config['rootfs']['diff_ids'] == ['sha256:' + hashlib.sha256(layer).hexdigest()]
    assert config['config']['Cmd'] == ['/usr/bin/tool']
    assert members[manifest[0]['Layers'][0]] == layer
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        names = {m.name: m for m in tar.getmembers()}
    assert names['usr/bin/tool'].mode == 0o644 and names['bin/tool2'].issym() and names['tmp'].isdir()


def test_the_userland_has_a_shell_bash_and_jq_with_their_libraries():
    with tarfile.open(fileobj=io.BytesIO(images.userland_layer())) as tar:
        names = {m.name: m for m in tar.getmembers()}
    assert names['bin/sh'].issym() and names['bin/sh'].linkname == '/bin/busybox'
    assert names['bin/bash'].linkname == '/usr/bin/bash'
    for tool in images.USERLAND_TOOLS:
        assert names[tool.lstrip('/')].isfile()
        for lib in images._shared_libraries(tool):
            assert lib.lstrip('/') in names, lib


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which('containerd'), reason='needs root and containerd')
def test_containerd_imports_and_unpacks_an_archive(tmp_path):
    layer = images._layer({'/pause': b'not really'})
    path = str(tmp_path / 'pause.tar')
    images.write_archive(path, 'registry.k8s.io/pause:test', [layer], {'Entrypoint': ['/pause']})
    root = str(tmp_path / 'root')
    kubenode._import_images([path], root, str(tmp_path))
    blob = os.path.join(root, 'io.containerd.content.v1.content', 'blobs', 'sha256', hashlib.sha256(layer).hexdigest())
    assert os.path.exists(blob)
    snapshots = os.path.join(root, 'io.containerd.snapshotter.v1.overlayfs', 'snapshots')
    assert any(os.path.exists(os.path.join(snapshots, s, 'fs', 'pause')) for s in os.listdir(snapshots))


def test_node_files_carry_the_node_identity_and_the_join_script(tmp_path):
    pki = realkube._certificates(str(tmp_path))
    blob = kubenode._node_files(pki, 'https://10.0.2.2:6443', 'worker-1')
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert sorted(files) == ['kube-proxy.conf', 'kubelet.conf', 'kubenode-join', 'pki/ca.crt']
    kubelet = json.loads(files['kubelet.conf'])
    assert kubelet['clusters'][0]['cluster']['server'] == 'https://10.0.2.2:6443'
    import base64  # pylint: disable=import-outside-toplevel
    cert = x509.load_pem_x509_certificate(base64.b64decode(kubelet['users'][0]['user']['client-certificate-data']))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == 'system:node:worker-1'
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == 'system:nodes'
    proxy = json.loads(files['kube-proxy.conf'])
    cert = x509.load_pem_x509_certificate(base64.b64decode(proxy['users'][0]['user']['client-certificate-data']))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == 'system:kube-proxy'


def test_join_refuses_a_lab_without_the_node_disk(tmp_path):
    lab = tmp_path / 'lab'
    lab.mkdir()
    (lab / 'vmnodes.json').write_text(json.dumps({'vms': [], 'disk': None}), encoding='utf-8')
    proc = subprocess.run([KUBENODE, 'join', '--lab', str(lab), '--cluster', str(tmp_path / 'cluster')],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'kubenode: lab %s was started without the node disk: vmnodes up --disk %s' % (
        lab, kubenode.DISK)
    assert yaml.safe_load(proc.stdout or 'null') is None
