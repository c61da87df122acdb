"""Fidelity tests of the Kubernetes API double through the real kubernetes client, kubernetes.core
modules (ansible-playbook subprocesses), helm and kubectl."""
import json
import os
import subprocess
import sys
import threading
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


def test_patch_flavours_and_dry_run(kube):  # noqa: F811
    dc = dyn(kube)
    deps = dc.resources.get(api_version='apps/v1', kind='Deployment')
    body = {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'web', 'namespace': 'default'},
            'spec': {'selector': {'matchLabels': {'app': 'web'}}, 'template': {
                'metadata': {'labels': {'app': 'web'}},
                'spec': {'containers': [{'name': 'a', 'image': 'img:1', 'env': [{'name': 'X', 'value': '1'}],
                                         'ports': [{'containerPort': 80}]}]}}}}
    # dryRun create: defaults shown, nothing stored
    dry = deps.create(body=body, namespace='default', dry_run='All').to_dict()
    assert dry['spec']['replicas'] == 1 and dry['spec']['strategy']['type'] == 'RollingUpdate'
    assert dry['spec']['template']['spec']['containers'][0]['imagePullPolicy'] == 'IfNotPresent'
    assert kube.get('Deployment', 'web', 'default') is None
    created = deps.create(body=body, namespace='default').to_dict()
    assert created['metadata']['generation'] == 1
    # strategic merge: containers merge by name, env by name, ports by containerPort
    smp = {'spec': {'template': {'spec': {'containers': [
        {'name': 'a', 'env': [{'name': 'Y', 'value': '2'}], 'ports': [{'containerPort': 81}]},
        {'name': 'b', 'image': 'img:2'}]}}}}
    patched = deps.patch(name='web', namespace='default', body=smp,
                         content_type='application/strategic-merge-patch+json').to_dict()
    containers = patched['spec']['template']['spec']['containers']
    assert [c['name'] for c in containers] == ['a', 'b'] and containers[0]['image'] == 'img:1'
    assert [e['name'] for e in containers[0]['env']] == ['X', 'Y']
    assert [p['containerPort'] for p in containers[0]['ports']] == [80, 81]
    assert patched['metadata']['generation'] == 2
    # the same change as merge patch replaces the list
    merged = deps.patch(name='web', namespace='default', content_type='application/merge-patch+json',
                        body={'spec': {'template': {'spec': {'containers': [{'name': 'c', 'image': 'img:3'}]}}}})
    assert [c['name'] for c in merged.to_dict()['spec']['template']['spec']['containers']] == ['c']
    # json patch, and dryRun on patch changes nothing
    jp = [{'op': 'replace', 'path': '/spec/replicas', 'value': 3}]
    assert deps.patch(name='web', namespace='default', body=jp, content_type='application/json-patch+json',
                      dry_run='All').spec.replicas == 3
    assert kube.get('Deployment', 'web', 'default')['spec']['replicas'] == 1
    assert deps.patch(name='web', namespace='default', body=jp,
                      content_type='application/json-patch+json').spec.replicas == 3
    code, status = api_error(lambda: deps.patch(
        name='web', namespace='default', content_type='application/json-patch+json',
        body=[{'op': 'remove', 'path': '/spec/nothing'}]))
    assert code == 422 and status['reason'] == 'Invalid'
    # dryRun delete keeps the object
    deps.delete(name='web', namespace='default', dry_run='All')
    assert kube.get('Deployment', 'web', 'default') is not None


def register_crds(dc, directory):
    crds = dc.resources.get(api_version='apiextensions.k8s.io/v1', kind='CustomResourceDefinition')
    import yaml  # pylint: disable=import-outside-toplevel
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), encoding='utf-8') as handle:
            crds.create(body=yaml.safe_load(handle))
    return crds


def test_spiderpool_crd_schema(kube, spiderpool_crds):  # noqa: F811
    dc = dyn(kube)
    crds = register_crds(dc, spiderpool_crds)
    crd = crds.get(name='spiderippools.spiderpool.spidernet.io').to_dict()
    conditions = {c['type']: c['status'] for c in crd['status']['conditions']}
    assert conditions == {'Established': 'True', 'NamesAccepted': 'True'}
    dc.resources.invalidate_cache()
    pools = dc.resources.get(api_version=POOL_API, kind='SpiderIPPool')
    assert pools.namespaced is False
    created = pools.create(body=pool('p1', ips=['10.20.0.10-10.20.0.12'], unknownField='x')).to_dict()
    assert 'unknownField' not in created['spec']
    assert created['spec']['default'] is False and created['spec']['disable'] is False
    assert created['metadata']['generation'] == 1
    code, status = api_error(lambda: pools.create(body=pool('bad', subnet=None, ipVersion=5)))
    assert (code, status['reason']) == (422, 'Invalid')
    fields = {c['field']: c['reason'] for c in status['details']['causes']}
    assert fields == {'spec.subnet': 'FieldValueTypeInvalid', 'spec.ipVersion': 'FieldValueNotSupported'}
    code, status = api_error(lambda: pools.create(body={'apiVersion': POOL_API, 'kind': 'SpiderIPPool',
                                                        'metadata': {'name': 'bad2'}, 'spec': {'ips': ['x']}}))
    assert [c['field'] for c in status['details']['causes']] == ['spec.subnet']
    code, status = api_error(lambda: pools.create(body=pool('bad3', ips='10.20.0.1')))
    assert status['details']['causes'][0]['field'] == 'spec.ips'
    pools.create(body=pool('dry'), dry_run='All')
    assert kube.get('SpiderIPPool', 'dry') is None
    # strategic merge is refused for custom resources
    code, status = api_error(lambda: pools.patch(name='p1', body={'spec': {'default': True}},
                                                 content_type='application/strategic-merge-patch+json'))
    assert (code, status['reason']) == (415, 'UnsupportedMediaType')
    # status subresource: main writes ignore status, /status writes only status, generation follows spec
    pools.patch(name='p1', body={'status': {'allocatedIPCount': 5}}, content_type='application/merge-patch+json')
    assert 'allocatedIPCount' not in (kube.get('SpiderIPPool', 'p1').get('status') or {})
    current = kube.get('SpiderIPPool', 'p1')
    current['status'] = {'allocatedIPCount': 1}
    current['spec']['default'] = True
    after = pools.status.replace(body=current).to_dict()
    assert after['status']['allocatedIPCount'] == 1 and after['spec']['default'] is False
    assert after['metadata']['generation'] == 1
    after = pools.patch(name='p1', body={'spec': {'default': True}}, content_type='application/merge-patch+json')
    assert after.metadata.generation == 2 and after.status.allocatedIPCount == 1
    # SpiderMultusConfig: int32 bound and enum from the real schema
    smcs = dc.resources.get(api_version=POOL_API, kind='SpiderMultusConfig')
    code, status = api_error(lambda: smcs.create(namespace='default', body={
        'apiVersion': POOL_API, 'kind': 'SpiderMultusConfig', 'metadata': {'name': 'm'},
        'spec': {'cniType': 'bogus', 'ipvlan': {'master': ['eth0'], 'vlanID': 5000}}}))
    assert sorted(c['field'] for c in status['details']['causes']) == ['spec.cniType', 'spec.ipvlan.vlanID']
    # deleting the CRD removes the resource and its objects
    crds.delete(name='spiderippools.spiderpool.spidernet.io')
    assert kube.objects('SpiderIPPool') == []


def test_finalizers_owner_gc_and_watch(kube):  # noqa: F811
    dc = dyn(kube)
    cms = dc.resources.get(api_version='v1', kind='ConfigMap')
    owner = cms.create(namespace='default', body=dict(configmap('owner'), metadata={
        'name': 'owner', 'finalizers': ['example.com/hold']})).to_dict()
    cms.create(namespace='default', body=dict(configmap('child'), metadata={'name': 'child', 'ownerReferences': [
        {'apiVersion': 'v1', 'kind': 'ConfigMap', 'name': 'owner', 'uid': owner['metadata']['uid']}]}))
    events = []
    start_rv = cms.get(namespace='default').metadata.resourceVersion
    deleting = cms.delete(name='owner', namespace='default').to_dict()
    assert deleting['metadata']['deletionTimestamp']
    assert kube.get('ConfigMap', 'child', 'default') is not None
    cms.patch(name='owner', namespace='default', body={'metadata': {'finalizers': None}},
              content_type='application/merge-patch+json')
    assert kube.get('ConfigMap', 'owner', 'default') is None
    assert kube.get('ConfigMap', 'child', 'default') is None
    for event in cms.watch(namespace='default', resource_version=start_rv, timeout=1):
        events.append((event['type'], event['object'].metadata.name))
    assert events[0] == ('MODIFIED', 'owner') and ('DELETED', 'owner') in events and ('DELETED', 'child') in events
    # without resourceVersion: ADDED for what exists, then the changes as they happen, until timeoutSeconds
    cms.create(namespace='default', body=configmap('late'))
    seen = []
    started = time.monotonic()
    watcher = threading.Thread(target=lambda: seen.extend(
        e['type'] for e in cms.watch(namespace='default', field_selector='metadata.name=late', timeout=1)))
    watcher.start()
    time.sleep(0.3)
    cms.patch(name='late', namespace='default', body={'data': {'k': 'z'}}, content_type='application/merge-patch+json')
    cms.create(namespace='default', body=configmap('other'))
    watcher.join(5)
    assert seen == ['ADDED', 'MODIFIED'] and 0.9 < time.monotonic() - started < 3


def test_server_side_apply(kube):  # noqa: F811
    dc = dyn(kube)
    cms = dc.resources.get(api_version='v1', kind='ConfigMap')
    body = configmap('ssa', data={'a': '1', 'b': '2'})
    first = cms.server_side_apply(body=body, namespace='default', field_manager='tester').to_dict()
    again = cms.server_side_apply(body=body, namespace='default', field_manager='tester').to_dict()
    assert first['metadata']['resourceVersion'] == again['metadata']['resourceVersion']
    assert any(m['manager'] == 'tester' and m['operation'] == 'Apply' for m in again['metadata']['managedFields'])
    # a field this manager applied before and no longer applies is removed; others' fields stay
    cms.patch(name='ssa', namespace='default', body={'data': {'c': '3'}}, content_type='application/merge-patch+json')
    shrunk = cms.server_side_apply(body=configmap('ssa', data={'a': '1'}), namespace='default',
                                   field_manager='tester').to_dict()
    assert shrunk['data'] == {'a': '1', 'c': '3'}
    code, status = api_error(lambda: cms.server_side_apply(body=body, namespace='default', field_manager=None))
    assert code == 422


def test_simulated_kubelet_workloads(kube_factory):  # noqa: F811
    double = kube_factory(simulate_kubelet=True, nodes=['n1', 'n2'])
    double.add_node('tainted', taints=[{'key': 'dedicated', 'value': 'x', 'effect': 'NoSchedule'}])
    dc = dyn(double)
    template = {'metadata': {'labels': {'app': 'x'}}, 'spec': {'containers': [{'name': 'c', 'image': 'i:1'}]}}
    apps = {kind: dc.resources.get(api_version='apps/v1', kind=kind) for kind in ('Deployment', 'DaemonSet',
                                                                                   'StatefulSet')}
    for kind, extra in (('Deployment', {'replicas': 3}), ('DaemonSet', {}), ('StatefulSet', {'replicas': 2})):
        apps[kind].create(namespace='default', body={
            'apiVersion': 'apps/v1', 'kind': kind, 'metadata': {'name': kind.lower()},
            'spec': dict({'selector': {'matchLabels': {'app': 'x'}}, 'template': template}, **extra)})
    dep = double.get('Deployment', 'deployment', 'default')
    assert dep['status']['readyReplicas'] == 3 and dep['status']['observedGeneration'] == 1
    assert {c['type']: c['status'] for c in dep['status']['conditions']} == {'Available': 'True',
                                                                              'Progressing': 'True'}
    rs = double.objects('ReplicaSet', 'default')
    assert len(rs) == 1 and rs[0]['metadata']['ownerReferences'][0]['uid'] == dep['metadata']['uid']
    ds = double.get('DaemonSet', 'daemonset', 'default')['status']
    assert ds['desiredNumberScheduled'] == 2 and ds['numberReady'] == 2
    pods = double.objects('Pod', 'default')
    assert len(pods) == 3 + 2 + 2 and all(p['status']['phase'] == 'Running' and p['status']['podIP'] for p in pods)
    assert len({p['status']['podIP'] for p in pods}) == len(pods)
    assert {p['spec']['nodeName'] for p in pods} == {'n1', 'n2'}
    assert sorted(p['metadata']['name'] for p in pods if p['metadata']['name'].startswith('statefulset')) == [
        'statefulset-0', 'statefulset-1']
    # a template change rolls the Deployment onto a new ReplicaSet; generation and observedGeneration follow
    apps['Deployment'].patch(name='deployment', namespace='default', body={'spec': {'template': {'spec': {
        'containers': [{'name': 'c', 'image': 'i:2'}]}}}}, content_type='application/strategic-merge-patch+json')
    dep = double.get('Deployment', 'deployment', 'default')
    assert dep['metadata']['generation'] == 2 and dep['status']['observedGeneration'] == 2
    assert dep['status']['updatedReplicas'] == 3
    images = {c['image'] for p in double.objects('Pod', 'default') if p['metadata']['name'].startswith('deployment')
              for c in p['spec']['containers']}
    assert images == {'i:2'}
    # Jobs complete, Services get cluster IPs, LoadBalancers an ingress IP on request
    dc.resources.get(api_version='batch/v1', kind='Job').create(namespace='default', body={
        'apiVersion': 'batch/v1', 'kind': 'Job', 'metadata': {'name': 'j'},
        'spec': {'template': {'spec': {'restartPolicy': 'Never', 'containers': [{'name': 'c', 'image': 'i'}]}}}})
    job = double.get('Job', 'j', 'default')['status']
    assert job['succeeded'] == 1 and any(c['type'] == 'Complete' and c['status'] == 'True' for c in job['conditions'])
    svc = dc.resources.get(api_version='v1', kind='Service').create(namespace='default', body={
        'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 'lb'},
        'spec': {'type': 'LoadBalancer', 'selector': {'app': 'x'}, 'ports': [{'port': 80}]}}).to_dict()
    assert svc['spec']['clusterIP'] and svc['spec']['ports'][0]['targetPort'] == 80
    double.set_load_balancer_ip('default', 'lb', '203.0.113.7')
    assert double.get('Service', 'lb', 'default')['status']['loadBalancer']['ingress'] == [{'ip': '203.0.113.7'}]
    # deleting the Deployment garbage-collects its ReplicaSets and pods
    apps['Deployment'].delete(name='deployment', namespace='default')
    assert not [p for p in double.objects('Pod', 'default') if p['metadata']['name'].startswith('deployment')]
    assert double.objects('ReplicaSet', 'default') == []


def test_exec_through_stream(kube):  # noqa: F811
    from kubernetes.stream import stream  # pylint: disable=import-outside-toplevel
    dc = dyn(kube)
    dc.resources.get(api_version='v1', kind='Pod').create(namespace='default', body={
        'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'box'},
        'spec': {'containers': [{'name': 'c', 'image': 'busybox'}]}})
    kube.set_exec_table([
        {'pod': 'box', 'command': r'^ping -c 1 (?P<dst>\S+)$', 'stdout': 'PING {dst}: 1 packets received\n',
         'template': True},
        {'pod': 'b.*', 'namespace': 'default', 'command': '^false', 'stderr': 'nope\n', 'rc': 3}])
    core = client.CoreV1Api(dc.client)
    out = stream(core.connect_get_namespaced_pod_exec, 'box', 'default', command=['ping', '-c', '1', '10.0.0.9'],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == 'PING 10.0.0.9: 1 packets received\n'
    resp = stream(core.connect_get_namespaced_pod_exec, 'box', 'default', command=['false'], stderr=True,
                  stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=5)
    assert resp.read_stderr() == 'nope\n' and resp.returncode == 3
    resp = stream(core.connect_get_namespaced_pod_exec, 'box', 'default', command=['unknown'], stderr=True,
                  stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=5)
    assert resp.returncode == 127 and 'no exec table rule matches' in resp.read_stderr()
    stats = kube.request_counts()
    assert stats['exec_count'] == 3 and stats['execs'][0]['command'] == ['ping', '-c', '1', '10.0.0.9']
    assert stats['requests']['create pods/exec'] == 3
