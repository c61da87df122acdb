"""The underlay_capacity_* filters: registration, plumbing to module_utils and error reporting."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.filter.capacity import FilterModule

FILTERS = FilterModule().filters()
RECORD = {'id': 'eni-n', 'type': 'Secondary', 'mac': '00:16:3e:00:00:09', 'device_index': 1, 'vswitch_id': 'vsw-a',
          'cidr': '10.0.0.0/24', 'gateway': '10.0.0.253', 'primary_ip': '10.0.0.40', 'secondary_ips': ['10.0.0.41'],
          'ipv6_cidr': None, 'ipv6_ips': [], 'status': 'InUse', 'instance_id': 'i-n1'}


def test_filters_registered():
    assert sorted(FILTERS) == ['underlay_capacity_attached', 'underlay_capacity_facts', 'underlay_capacity_with_enis']


def test_attached_enis_reach_the_host_facts():
    attached = FILTERS['underlay_capacity_attached']([{'item': {'node': 'n1', 'instance_id': 'i-n1'}, 'network_interface': RECORD}])
    primary = dict(RECORD, id='eni-p', type='Primary', device_index=0)
    hosts = [{'inventory_hostname': 'n1', 'alicloud_instance_id': 'i-n1', 'alicloud_enis': [primary]}]
    merged = FILTERS['underlay_capacity_with_enis'](hosts, attached)
    assert [e['id'] for e in merged[0]['alicloud_enis']] == ['eni-p', 'eni-n']


@pytest.mark.parametrize('name, args, message', [
    ('underlay_capacity_attached', ({'results': []},), 'expected the results list of an ecs_eni loop'),
    ('underlay_capacity_with_enis', ('hosts', []), 'expected a list of host facts, got str'),
    ('underlay_capacity_facts', ([1],), 'entry 0 is int, expected host variables'),
])
def test_bad_input_is_one_clear_line(name, args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        FILTERS[name](*args)
