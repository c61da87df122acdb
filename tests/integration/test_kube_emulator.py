"""Fidelity tests of the Kubernetes API double through the real kubernetes client, kubernetes.core
modules (ansible-playbook subprocesses), helm and kubectl."""
import json
import os
import subprocess
import sys
import time

import pytest
from kubernetes import client, config, dynamic
from kubernetes.dynamic.exceptions import ApiException

from kube_fixtures import EMULATOR_DIR, ROOT, kube, kube_factory, spiderpool_crds  # noqa: F401

POOL_API = 'spiderpool.spidernet.io/v2beta1'


def dyn(double):
    """A DynamicClient bound to the double (own ApiClient: no global configuration)."""
    conf = client.Configuration()
    config.load_kube_config(config_file=double.kubeconfig, client_configuration=conf)
    return dynamic.DynamicClient(client.ApiClient(configuration=conf))


def api_error(call):
    with pytest.raises(ApiException) as info:
        call()
    return info.value.status, json.loads(info.value.body)


def configmap(name, labels=None, data=None):
    return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': name, 'labels': labels or {}},
            'data': data or {'k': 'v'}}


def pool(name, subnet='10.20.0.0/24', ips=None, **spec):
    body = {'apiVersion': POOL_API, 'kind': 'SpiderIPPool', 'metadata': {'name': name},
            'spec': dict({'subnet': subnet}, **spec)}
    if ips is not None:
        body['spec']['ips'] = ips
    return body


# ---------------------------------------------------------------------------------------------
# kubernetes client

def test_crud_metadata_and_errors(kube):  # noqa: F811
    dc = dyn(kube)
    cms = dc.resources.get(api_version='v1', kind='ConfigMap')
    created = cms.create(body=configmap('a', {'app': 'x'}), namespace='default').to_dict()
    meta = created['metadata']
    assert meta['uid'] and meta['creationTimestamp'] and int(meta['resourceVersion']) > 0
    assert 'generation' not in meta
    code, body = api_error(lambda: cms.create(body=configmap('a'), namespace='default'))
    assert (code, body['kind'], body['reason'], body['details']['name']) == (409, 'Status', 'AlreadyExists', 'a')
    code, body = api_error(lambda: cms.get(name='nope', namespace='default'))
    assert (code, body['reason']) == (404, 'NotFound')
    code, body = api_error(lambda: cms.create(body=configmap('b'), namespace='missing-ns'))
    assert code == 404 and 'namespaces "missing-ns" not found' in body['message']
    # replace with a stale resourceVersion -> 409 Conflict; with the current one -> works, rv grows
    stale = dict(created, data={'k': 'new'})
    updated = cms.replace(body=stale, namespace='default').to_dict()
    assert int(updated['metadata']['resourceVersion']) > int(meta['resourceVersion'])
    code, body = api_error(lambda: cms.replace(body=dict(created, data={'k': 'other'}), namespace='default'))
    assert (code, body['reason']) == (409, 'Conflict')
    # a no-op write does not bump the resourceVersion
    again = cms.patch(name='a', namespace='default', body={'data': {'k': 'new'}},
                      content_type='application/merge-patch+json').to_dict()
    assert again['metadata']['resourceVersion'] == updated['metadata']['resourceVersion']
    cms.delete(name='a', namespace='default')
    assert kube.get('ConfigMap', 'a', 'default') is None


def test_list_kind_and_selectors(kube):  # noqa: F811
    dc = dyn(kube)
    cms = dc.resources.get(api_version='v1', kind='ConfigMap')
    for name, labels in (('one', {'tier': 'web', 'env': 'prod'}), ('two', {'tier': 'db', 'env': 'prod'}),
                         ('three', {'tier': 'web'})):
        cms.create(body=configmap(name, labels), namespace='default')

    def names(**kw):
        listed = cms.get(namespace='default', **kw).to_dict()
        assert listed['kind'] == 'ConfigMapList' and listed['apiVersion'] == 'v1'
        assert listed['metadata']['resourceVersion']
        return sorted(i['metadata']['name'] for i in listed['items'])

    assert names(label_selector='tier=web') == ['one', 'three']
    assert names(label_selector='tier==web,env=prod') == ['one']
    assert names(label_selector='tier!=web') == ['two']
    assert names(label_selector='tier in (db, cache)') == ['two']
    assert names(label_selector='tier notin (db),tier') == ['one', 'three']
    assert names(label_selector='!env,tier') == ['three']
    assert names(label_selector='env') == ['one', 'two']
    assert names(field_selector='metadata.name=two') == ['two']
    assert names(field_selector='metadata.name!=two,metadata.namespace=default', label_selector='tier') == [
        'one', 'three']


def test_discovery_and_scope(kube):  # noqa: F811
    dc = dyn(kube)
    for api_version, kind, namespaced in (('v1', 'Namespace', False), ('v1', 'Pod', True), ('v1', 'Node', False),
                                          ('apps/v1', 'DaemonSet', True), ('batch/v1', 'Job', True),
                                          ('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', False),
                                          ('coordination.k8s.io/v1', 'Lease', True),
                                          ('apiextensions.k8s.io/v1', 'CustomResourceDefinition', False)):
        assert dc.resources.get(api_version=api_version, kind=kind).namespaced is namespaced
    roles = dc.resources.get(api_version='rbac.authorization.k8s.io/v1', kind='ClusterRole')
    created = roles.create(body={'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'ClusterRole',
                                 'metadata': {'name': 'r', 'namespace': 'ignored'}, 'rules': []}).to_dict()
    assert 'namespace' not in created['metadata']


def test_cli_writes_kubeconfig_and_serves(tmp_path):
    kubeconfig = tmp_path / 'kc'
    proc = subprocess.Popen([sys.executable, os.path.join(EMULATOR_DIR, 'kube_emulator.py'), '--listen',
                             '127.0.0.1:0', '--kubeconfig', str(kubeconfig), '--nodes', 'n1,n2'],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith('listening on http://127.0.0.1:')
        url = line.split()[-1]
        conf = json.loads(kubeconfig.read_text())
        assert conf['clusters'][0]['cluster']['server'] == url and conf['users'][0]['user']['token']
        conf_obj = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=conf_obj)
        nodes = client.CoreV1Api(client.ApiClient(conf_obj)).list_node().items
        assert sorted(n.metadata.name for n in nodes) == ['n1', 'n2']
    finally:
        proc.terminate()
        proc.wait(10)
