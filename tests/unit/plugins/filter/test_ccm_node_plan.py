"""Unit tests for the alicloud_ccm filter plugin."""
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.filter import alicloud_ccm


def test_filter_reads_host_facts_by_group_order():
    hostvars = {
        'master': {'alicloud_provider_id': 'cn-hangzhou.i-bp1m', 'alicloud_hostname': 'master', 'other': 'x'},
        'worker': {'alicloud_provider_id': 'cn-hangzhou.i-bp1w', 'alicloud_hostname': 'worker'},
    }
    plan = alicloud_ccm.ccm_node_plan(['master', 'worker'], hostvars, [{'metadata': {'name': 'master'}, 'spec': {}}])
    assert [p['metadata']['name'] for p in plan['patches']] == ['master']
    assert [m['node'] for m in plan['missing']] == ['worker']


def test_filter_rejects_unknown_host_and_bad_hostvars():
    with pytest.raises(AnsibleFilterError, match='host ghost has no host variables'):
        alicloud_ccm.ccm_node_plan(['ghost'], {}, [])
    with pytest.raises(AnsibleFilterError, match='hostvars must be a mapping'):
        alicloud_ccm.ccm_node_plan(['a'], ['a'], [])


def test_filter_is_registered():
    assert alicloud_ccm.FilterModule().filters()['ccm_node_plan'] is alicloud_ccm.ccm_node_plan
