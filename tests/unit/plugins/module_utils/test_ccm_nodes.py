"""Unit tests for the providerID planner of the alicloud_ccm role."""
import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import ccm_nodes


def host(name, provider_id='default', node=None, region='cn-hangzhou', instance=None, hostname=None):
    instance = instance or 'i-bp1' + name.replace('-', '')
    facts = {'alicloud_region': region, 'alicloud_instance_id': instance, 'alicloud_hostname': hostname or name}
    if provider_id == 'default':
        facts['alicloud_provider_id'] = '%s.%s' % (region, instance)
    elif provider_id is not None:
        facts['alicloud_provider_id'] = provider_id
    if node:
        facts['alicloud_ccm_node_name'] = node
    return ccm_nodes.host_record(name, facts)


def node(name, provider_id=None):
    obj = {'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': name}, 'spec': {}}
    if provider_id is not None:
        obj['spec']['providerID'] = provider_id
    return obj


def test_host_record_prefers_override_then_hostname_then_inventory_name():
    assert ccm_nodes.host_record('h1', {'alicloud_hostname': 'master', 'alicloud_ccm_node_name': 'm-1'})['node'] == 'm-1'
    assert ccm_nodes.host_record('h1', {'alicloud_hostname': 'master', 'alicloud_ccm_node_name': ''})['node'] == 'master'
    assert ccm_nodes.host_record('h1', {})['node'] == 'h1'
    assert ccm_nodes.host_record('h1', {})['provider_id'] is None


def test_plan_sorts_nodes_into_patch_unchanged_conflict_missing():
    hosts = [host('master'), host('worker'), host('worker2'), host('gone')]
    nodes = [node('master', ''), node('worker', 'cn-hangzhou.i-bp1worker'), node('worker2', 'cn-beijing.i-other'),
             node('stranger')]
    result = ccm_nodes.plan(hosts, nodes)
    assert result['errors'] == []
    assert [e['node'] for e in result['patch']] == ['master']
    assert result['patches'] == [{'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': 'master'},
                                  'spec': {'providerID': 'cn-hangzhou.i-bp1master'}}]
    assert [e['node'] for e in result['unchanged']] == ['worker']
    [missing] = result['missing']
    assert (missing['host'], missing['node'], missing['provider_id']) == ('gone', 'gone', 'cn-hangzhou.i-bp1gone')
    assert 'host gone: no Node named gone in the cluster (wanted providerID cn-hangzhou.i-bp1gone)' in missing['message']
    assert result['unmanaged'] == ['stranger']
    [conflict] = result['conflicts']
    assert conflict['current'] == 'cn-beijing.i-other' and conflict['provider_id'] == 'cn-hangzhou.i-bp1worker2'
    for text in ('worker2', 'cn-beijing.i-other', 'cn-hangzhou.i-bp1worker2', 'does not allow changing'):
        assert text in conflict['message']


def test_node_without_spec_is_patched():
    result = ccm_nodes.plan([host('master')], [{'metadata': {'name': 'master'}}])
    assert [e['node'] for e in result['patch']] == ['master']


def test_override_maps_host_to_other_node_name():
    result = ccm_nodes.plan([host('worker2', node='worker-2', hostname='iZbp1Z')], [node('worker-2')])
    assert result['patches'][0]['metadata']['name'] == 'worker-2'


@pytest.mark.parametrize('provider_id, fragment', [
    (None, 'alicloud_provider_id is not set'),
    ('i-bp1master', 'is malformed'),
    ('cn-hangzhou/i-bp1master', 'is malformed'),
    ('cn-hangzhou.i-bp1other', 'does not match alicloud_region.alicloud_instance_id'),
])
def test_bad_provider_id_is_an_error_and_nothing_is_planned(provider_id, fragment):
    result = ccm_nodes.plan([host('master', provider_id=provider_id)], [node('master')])
    assert len(result['errors']) == 1 and fragment in result['errors'][0] and 'master' in result['errors'][0]
    assert result['patches'] == [] and result['patch'] == []


def test_duplicate_node_names_and_provider_ids_are_errors():
    hosts = [host('a', node='same'), host('b', node='same'),
             ccm_nodes.host_record('c', {'alicloud_provider_id': 'cn-hangzhou.i-bp1a'})]
    errors = ccm_nodes.plan(hosts, [])['errors']
    assert any('both map to Kubernetes node same' in e for e in errors)
    assert any('both have providerID cn-hangzhou.i-bp1a' in e for e in errors)


def test_invalid_node_name_is_an_error():
    errors = ccm_nodes.plan([host('w', hostname='Worker_2.LAB')], [])['errors']
    assert errors and "host w: Kubernetes node name 'Worker_2.LAB' (from alicloud_hostname)" in errors[0]
    assert 'alicloud_ccm_node_name' in errors[0]


def test_node_name_is_the_kubelet_s_lower_case_hostname():
    # ECS default HostNames (iZbp1...Z) register as lower-case Nodes.
    record = host('w', hostname=' iZbp1Z ')
    assert record['node'] == 'izbp1z'
    assert not ccm_nodes.plan([record], [])['errors']


def test_provider_id_without_region_facts_is_accepted():
    record = ccm_nodes.host_record('m', {'alicloud_provider_id': 'ap-southeast-1.i-t4n0abc'})
    assert ccm_nodes.plan([record], [node('m')])['patches'][0]['spec']['providerID'] == 'ap-southeast-1.i-t4n0abc'
