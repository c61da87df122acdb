# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import copy
import fnmatch
import ipaddress
import re

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import node_names, planner, verify
from ansible_collections.underlay.alicloud.plugins.module_utils.planner import PlanError, plan
from ansible_collections.underlay.alicloud.tests.unit.utils.spiderpool_crds import assert_valid, validators


def eni(eni_id, mac, index, cidr, primary, secondary, gateway=None, kind='Secondary', ipv6_cidr=None, ipv6=()):
    return {
        'id': eni_id, 'type': kind, 'mac': mac, 'device_index': index, 'vswitch_id': 'vsw-' + eni_id,
        'cidr': cidr, 'gateway': gateway, 'primary_ip': primary, 'secondary_ips': list(secondary),
        'ipv6_cidr': ipv6_cidr, 'ipv6_ips': list(ipv6),
    }


def ips(prefix, first, last):
    return ['%s.%d' % (prefix, i) for i in range(first, last + 1)]


def host(name, instance, enis, **extra):
    facts = {
        'inventory_hostname': name, 'alicloud_hostname': name, 'alicloud_instance_id': instance,
        'alicloud_region': 'cn-hangzhou', 'alicloud_enis': enis,
    }
    facts.update(extra)
    return facts


def guide_hosts():
    """The Alibaba guide's two nodes: eth0 in 172.31.192.0/20, eth1 in 192.168.0.0/24, 5 IPs each."""
    return [
        host('master', 'i-bp1master', [
            eni('eni-bp1m0', '00:16:3e:00:00:01', 0, '172.31.192.0/20', '172.31.199.183', ips('172.31.199', 185, 189),
                gateway='172.31.207.253', kind='Primary'),
            eni('eni-bp1m1', '00:16:3e:00:00:02', 1, '192.168.0.0/24', '192.168.0.150', ips('192.168.0', 156, 160),
                gateway='192.168.0.253'),
        ]),
        host('worker', 'i-bp1worker', [
            eni('eni-bp1w0', '00:16:3e:00:01:01', 0, '172.31.192.0/20', '172.31.199.184', ips('172.31.199', 190, 194),
                gateway='172.31.207.253', kind='Primary'),
            eni('eni-bp1w1', '00:16:3e:00:01:02', 1, '192.168.0.0/24', '192.168.0.151', ips('192.168.0', 161, 165),
                gateway='192.168.0.253'),
        ]),
    ]


def pools_by_name(result):
    return {p['metadata']['name']: p for p in result['ippools']}


def test_guide_topology_gives_exactly_its_four_pools():
    result = plan(guide_hosts())
    pools = pools_by_name(result)
    assert sorted(pools) == ['master-eth0-v4', 'master-eth1-v4', 'worker-eth0-v4', 'worker-eth1-v4']
    expected = {
        'master-eth0-v4': ('172.31.199.185-172.31.199.189', '172.31.192.0/20', '172.31.207.253', 'master', 'eth0'),
        'master-eth1-v4': ('192.168.0.156-192.168.0.160', '192.168.0.0/24', '192.168.0.253', 'master', 'eth1'),
        'worker-eth0-v4': ('172.31.199.190-172.31.199.194', '172.31.192.0/20', '172.31.207.253', 'worker', 'eth0'),
        'worker-eth1-v4': ('192.168.0.161-192.168.0.165', '192.168.0.0/24', '192.168.0.253', 'worker', 'eth1'),
    }
    for name, (ip_range, subnet, gateway, node, iface) in expected.items():
        assert pools[name]['apiVersion'] == 'spiderpool.spidernet.io/v2beta1'
        assert pools[name]['spec'] == {
            'default': True, 'ipVersion': 4, 'subnet': subnet, 'gateway': gateway, 'ips': [ip_range],
            'nodeName': [node], 'multusName': ['kube-system/ipvlan-%s' % iface],
        }
        assert pools[name]['metadata']['labels'] == {
            'app.kubernetes.io/managed-by': 'underlay.alicloud', 'underlay.alicloud/node': node,
            'underlay.alicloud/interface': iface, 'underlay.alicloud/ip-family': 'ipv4',
            'underlay.alicloud/eni': {'master-eth0-v4': 'eni-bp1m0', 'master-eth1-v4': 'eni-bp1m1',
                                      'worker-eth0-v4': 'eni-bp1w0', 'worker-eth1-v4': 'eni-bp1w1'}[name],
        }
        assert 'namespace' not in pools[name]['metadata']     # SpiderIPPool is cluster-scoped
    assert result['multus_configs'] == [
        {'apiVersion': 'spiderpool.spidernet.io/v2beta1', 'kind': 'SpiderMultusConfig',
         'metadata': {'name': 'ipvlan-%s' % i, 'namespace': 'kube-system',
                      'labels': {'app.kubernetes.io/managed-by': 'underlay.alicloud', 'underlay.alicloud/interface': i}},
         'spec': {'cniType': 'ipvlan', 'enableCoordinator': True,
                  'ipvlan': {'master': [i], 'ippools': {'ipv4': ['*-%s-v4' % i]}}}}
        for i in ('eth0', 'eth1')
    ]
    assert [o['metadata']['name'] for o in result['objects']] == ['ipvlan-eth0', 'ipvlan-eth1'] + sorted(pools)
    assert result['summary'] == {'nodes': 2, 'interfaces': ['eth0', 'eth1'], 'multus_configs': 2, 'ippools': 4,
                                 'ipv4_addresses': 20, 'ipv6_addresses': 0}
    assert_valid(result['objects'])


def test_objects_validate_against_the_real_crds():
    checks = validators()
    assert {'SpiderCoordinator', 'SpiderIPPool', 'SpiderMultusConfig', 'SpiderSubnet'} <= set(checks)
    objects = plan(guide_hosts(), {'mtu': 1400, 'vlan_id': 7, 'ipvlan_options': {'rdmaResourceName': 'r'}})['objects']
    assert_valid(objects)
    # The closed schemas do catch an unknown field and a wrong type.
    bad = copy.deepcopy(objects[2])
    bad['spec']['vlan'] = 5
    assert any('vlan' in e.message for e in checks['SpiderIPPool'].iter_errors(bad))
    bad = copy.deepcopy(objects[0])
    bad['spec']['ipvlan']['mtu'] = 'big'
    assert list(checks['SpiderMultusConfig'].iter_errors(bad))


def test_primary_and_gateway_never_in_a_pool():
    hosts = guide_hosts()
    # Metadata-style facts list the primary among the private IPs: it is dropped, never pooled.
    hosts[0]['alicloud_enis'][0]['secondary_ips'].insert(0, '172.31.199.183')
    pools = pools_by_name(plan(hosts))
    assert pools['master-eth0-v4']['spec']['ips'] == ['172.31.199.185-172.31.199.189']
    hosts[0]['alicloud_enis'][0]['secondary_ips'] = ['172.31.199.183']
    assert 'master-eth0-v4' not in pools_by_name(plan(hosts))


def test_gateway_defaults_to_broadcast_minus_two():
    hosts = guide_hosts()
    for facts in hosts:
        for item in facts['alicloud_enis']:
            item['gateway'] = None
    pools = pools_by_name(plan(hosts))
    assert pools['master-eth0-v4']['spec']['gateway'] == '172.31.207.253'
    assert pools['worker-eth1-v4']['spec']['gateway'] == '192.168.0.253'


def test_dual_stack_three_nics_and_eni_without_secondaries():
    v6_cidr = '2408:4005:39c:1::/64'
    node = host('node-a', 'i-a', [
        eni('eni-a0', '00:16:3e:0a:00:00', 0, '10.10.0.0/24', '10.10.0.10', ['10.10.0.11', '10.10.0.12'], kind='Primary',
            ipv6_cidr=v6_cidr, ipv6=['2408:4005:39c:1::12', '2408:4005:39c:1::11', '2408:4005:39c:1::20']),
        eni('eni-a1', '00:16:3e:0a:00:01', 1, '10.10.1.0/24', '10.10.1.10', []),                    # no secondaries: no pool
        eni('eni-a2', '00:16:3e:0a:00:02', 2, '10.10.2.0/24', '10.10.2.10', ['10.10.2.20', '10.10.2.9', '10.10.2.11', '10.10.2.21']),
    ])
    result = plan([node])
    pools = pools_by_name(result)
    assert sorted(pools) == ['node-a-eth0-v4', 'node-a-eth0-v6', 'node-a-eth2-v4']
    v6 = pools['node-a-eth0-v6']['spec']
    assert v6 == {'default': True, 'ipVersion': 6, 'subnet': v6_cidr, 'gateway': '2408:4005:39c:1::',
                  'ips': ['2408:4005:39c:1::11-2408:4005:39c:1::12', '2408:4005:39c:1::20'],
                  'nodeName': ['node-a'], 'multusName': ['kube-system/ipvlan-eth0']}
    assert pools['node-a-eth0-v6']['metadata']['labels']['underlay.alicloud/ip-family'] == 'ipv6'
    # Non-contiguous addresses: numeric order, contiguous runs merged, isolated ones bare.
    assert pools['node-a-eth2-v4']['spec']['ips'] == ['10.10.2.9', '10.10.2.11', '10.10.2.20-10.10.2.21']
    assert [m['metadata']['name'] for m in result['multus_configs']] == ['ipvlan-eth0', 'ipvlan-eth2']
    assert result['summary']['ipv6_addresses'] == 3 and result['summary']['ipv4_addresses'] == 6
    assert_valid(result['objects'])
    only_v4 = pools_by_name(plan([node], {'families': [4]}))
    assert sorted(only_v4) == ['node-a-eth0-v4', 'node-a-eth2-v4']


def test_interface_names_from_facts_explicit_map_and_device_index():
    hosts = guide_hosts()
    # Preflight found the ENIs under other names; the explicit map still wins for one of them.
    hosts[0]['ipvlan_cni_interfaces'] = {'00:16:3E:00:00:01': 'ens5', '00:16:3e:00:00:02': 'ens6'}
    hosts[0]['spiderpool_networks_interface_map'] = {'eni-bp1m1': 'ens7'}
    hosts[1]['ipvlan_cni_interfaces'] = {'00:16:3e:00:01:01': 'ens5', '00:16:3e:00:01:02': 'ens6'}
    hosts[1]['spiderpool_networks_interface_map'] = {'00-16-3e-00-01-02': 'ens7'}
    result = plan(hosts)
    assert sorted(pools_by_name(result)) == ['master-ens5-v4', 'master-ens7-v4', 'worker-ens5-v4', 'worker-ens7-v4']
    assert [m['spec']['ipvlan']['master'] for m in result['multus_configs']] == [['ens5'], ['ens7']]
    # Without any map: eth<device_index>; a primary ENI without index is eth0.
    hosts = guide_hosts()
    hosts[0]['alicloud_enis'][0]['device_index'] = None
    hosts[0]['alicloud_enis'][1]['device_index'] = 3
    assert sorted(pools_by_name(plan(hosts)))[:2] == ['master-eth0-v4', 'master-eth3-v4']


def test_node_name_override_and_case():
    hosts = guide_hosts()
    hosts[0]['alicloud_hostname'] = 'Master'
    hosts[1]['spiderpool_networks_node_name'] = 'worker-1.example.internal'
    pools = pools_by_name(plan(hosts))
    assert pools['master-eth0-v4']['spec']['nodeName'] == ['master']
    assert pools['worker-1-example-internal-eth0-v4']['spec']['nodeName'] == ['worker-1.example.internal']
    assert pools['worker-1-example-internal-eth0-v4']['metadata']['labels']['underlay.alicloud/node'] == 'worker-1.example.internal'


def test_hostvars_dict_input_and_selection_options():
    as_dict = {h['inventory_hostname']: h for h in guide_hosts()}
    for facts in as_dict.values():
        del facts['inventory_hostname']
    assert plan(as_dict)['objects'] == plan(guide_hosts())['objects']
    assert sorted(pools_by_name(plan(guide_hosts(), {'interfaces': ['eth1']}))) == ['master-eth1-v4', 'worker-eth1-v4']
    only_eth0 = plan(guide_hosts(), {'exclude_interfaces': ['eth1']})
    assert [m['metadata']['name'] for m in only_eth0['multus_configs']] == ['ipvlan-eth0']


def test_options_shape_the_objects():
    result = plan(guide_hosts(), {
        'namespace': 'spiderpool', 'multus_name_template': 'underlay-{interface}', 'pool_name_template': '{node}-{interface}',
        'default_pool': False, 'mtu': 1400, 'vlan_id': 0, 'labels': {'cluster': 'lab'},
        'interface_options': {'eth1': {'default_pool': True, 'mtu': 9000, 'ipvlan_options': {'rdmaResourceName': 'rdma'}}},
    })
    pools = pools_by_name(result)
    assert pools['master-eth0']['spec']['default'] is False and pools['master-eth1']['spec']['default'] is True
    assert pools['master-eth1']['spec']['multusName'] == ['spiderpool/underlay-eth1']
    assert pools['master-eth1']['metadata']['labels']['cluster'] == 'lab'
    smc = {m['metadata']['name']: m for m in result['multus_configs']}
    assert smc['underlay-eth0']['metadata']['namespace'] == 'spiderpool'
    assert smc['underlay-eth0']['spec']['ipvlan'] == {'master': ['eth0'], 'mtu': 1400, 'ippools': {'ipv4': ['*-eth0']}}
    assert smc['underlay-eth1']['spec']['ipvlan'] == {'master': ['eth1'], 'mtu': 9000, 'rdmaResourceName': 'rdma',
                                                      'ippools': {'ipv4': ['*-eth1']}}
    vlan = plan(guide_hosts(), {'vlan_id': 12, 'enable_coordinator': False})['multus_configs'][0]['spec']
    assert vlan == {'cniType': 'ipvlan', 'enableCoordinator': False,
                    'ipvlan': {'master': ['eth0'], 'vlanID': 12, 'ippools': {'ipv4': ['*-eth0-v4']}}}
    # The ownership label cannot be overridden by user labels.
    assert plan(guide_hosts(), {'labels': {'app.kubernetes.io/managed-by': 'someone'}})['ippools'][0]['metadata']['labels'][
        'app.kubernetes.io/managed-by'] == 'underlay.alicloud'
    assert_valid(result['objects'])


def test_names_are_stable_dns_safe_and_truncated_with_hash():
    long_node = 'Very-Long.Node.Name.' + 'x' * 70
    hosts = [host('h1', 'i-1', [eni('eni-1', '00:16:3e:00:00:11', 0, '10.0.0.0/24', '10.0.0.5', ['10.0.0.6'], kind='Primary')],
                  spiderpool_networks_node_name=long_node)]
    first = plan(hosts)
    second = plan(copy.deepcopy(hosts))
    name = first['ippools'][0]['metadata']['name']
    assert name == second['ippools'][0]['metadata']['name']
    assert len(name) == 63 and re.match(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', name)
    assert name.startswith('very-long-node-name-xxx')
    assert re.search(r'-[0-9a-f]{8}$', name)
    node_label = first['ippools'][0]['metadata']['labels']['underlay.alicloud/node']
    assert len(node_label) == 63
    # Two names that differ only past the cut get different hashes.
    hosts2 = copy.deepcopy(hosts)
    hosts2[0]['spiderpool_networks_node_name'] = long_node + 'y'
    assert plan(hosts2)['ippools'][0]['metadata']['name'] != name
    # Order of hosts and ENIs does not change the output.
    assert plan(list(reversed(guide_hosts())))['objects'] == plan(guide_hosts())['objects']
    assert planner.dns_name('ipvlan-Eth_0.100') == 'ipvlan-eth-0-100'


def _error(hosts, options=None):
    with pytest.raises(PlanError) as info:
        plan(hosts, options)
    message = str(info.value)
    assert '\n' not in message
    return message


def test_error_overlapping_addresses():
    hosts = guide_hosts()
    hosts[1]['alicloud_enis'][0]['secondary_ips'].append('172.31.199.187')
    assert _error(hosts) == 'address 172.31.199.187 is in both SpiderIPPool master-eth0-v4 and worker-eth0-v4 (two ENIs report the same address)'


def test_error_overlapping_subnets():
    hosts = guide_hosts()
    hosts[1]['alicloud_enis'][1].update(cidr='192.168.0.0/23', gateway='192.168.1.253', secondary_ips=['192.168.1.7'])
    assert _error(hosts) == ('vSwitch subnets 192.168.0.0/23 (SpiderIPPool worker-eth1-v4) and 192.168.0.0/24 '
                             '(SpiderIPPool master-eth1-v4) overlap')


@pytest.mark.parametrize('address, message', [
    ('172.31.208.1', 'address 172.31.208.1 of ENI eni-bp1m0 on node master is outside its vSwitch 172.31.192.0/20'),
    ('172.31.207.254', 'address 172.31.207.254 of ENI eni-bp1m0 on node master is reserved in vSwitch 172.31.192.0/20'),
    ('172.31.192.0', 'address 172.31.192.0 of ENI eni-bp1m0 on node master is reserved in vSwitch 172.31.192.0/20'),
    ('172.31.199.999', "ENI eni-bp1m0 on node master: secondary IP '172.31.199.999' is not an IP address"),
    ('fd00::1', "ENI eni-bp1m0 on node master: secondary IP list"),
])
def test_error_bad_addresses(address, message):
    hosts = guide_hosts()
    hosts[0]['alicloud_enis'][0]['secondary_ips'].append(address)
    assert _error(hosts).startswith(message)


def test_error_ipv6_without_vswitch_cidr_and_bad_gateway():
    hosts = guide_hosts()
    hosts[0]['alicloud_enis'][0]['ipv6_ips'] = ['2408:4005:39c:1::11']
    assert _error(hosts) == 'ENI eni-bp1m0 (eth0) on node master has IPv6 address(s) 2408:4005:39c:1::11 but no vSwitch ipv6_cidr'
    hosts = guide_hosts()
    hosts[0]['alicloud_enis'][0]['gateway'] = '10.0.0.1'
    assert _error(hosts) == 'gateway 10.0.0.1 of ENI eni-bp1m0 on node master is outside its vSwitch 172.31.192.0/20'
    hosts = guide_hosts()
    hosts[0]['alicloud_enis'][0]['cidr'] = '172.31.192.0/40'
    assert _error(hosts) == "vSwitch cidr of ENI eni-bp1m0 on node master '172.31.192.0/40' is not a CIDR"


@pytest.mark.parametrize('enis, message', [
    (None, 'node master (host master) has no ENI facts (alicloud_enis is missing)'),
    ([], 'node master (host master) has no ENI facts (alicloud_enis is [])'),
])
def test_error_node_without_eni_facts(enis, message):
    hosts = guide_hosts()
    if enis is None:
        del hosts[0]['alicloud_enis']
    else:
        hosts[0]['alicloud_enis'] = enis
    assert _error(hosts) == message


def test_error_name_collisions():
    hosts = guide_hosts()
    hosts[1]['spiderpool_networks_node_name'] = 'Master'
    assert _error(hosts) == 'hosts master and worker have the same Kubernetes node name master'
    hosts = guide_hosts()
    hosts[0]['spiderpool_networks_node_name'] = 'node.a'
    hosts[1]['spiderpool_networks_node_name'] = 'node-a'         # different node, same DNS name
    assert _error(hosts) == ('SpiderIPPool name node-a-eth0-v4 is given to both node.a/eth0/IPv4 and node-a/eth0/IPv4; '
                             'make pool_name_template unique')
    hosts = guide_hosts()
    hosts[1]['alicloud_hostname'] = 'Worker_2.LAB'
    assert _error(hosts) == node_names.invalid_message('worker', 'alicloud_hostname', 'Worker_2.LAB')
    assert _error(guide_hosts(), {'pool_name_template': '{node}'}) == (
        'SpiderIPPool name master is given to both master/eth0/IPv4 and master/eth1/IPv4; make pool_name_template unique')
    hosts = guide_hosts()
    hosts[1]['spiderpool_networks_interface_map'] = {'eni-bp1w1': 'eth_1'}
    assert _error(hosts, {'multus_name_template': 'ipvlan'}) == 'interfaces eth0 and eth1 both give the SpiderMultusConfig name ipvlan'


def test_error_two_enis_on_one_interface():
    hosts = guide_hosts()
    hosts[0]['ipvlan_cni_interfaces'] = {'00:16:3e:00:00:01': 'eth0', '00:16:3e:00:00:02': 'eth0'}
    assert _error(hosts) == 'ENIs eni-bp1m0 and eni-bp1m1 of node master both map to interface eth0'


def test_error_unknown_interface_and_bad_names():
    hosts = guide_hosts()
    hosts[0]['alicloud_enis'][1]['device_index'] = None
    assert _error(hosts) == ('cannot tell the interface of ENI eni-bp1m1 (MAC 00:16:3e:00:00:02) on node master: no device_index and no entry in '
                             'ipvlan_cni_interfaces or spiderpool_networks_interface_map; set spiderpool_networks_interface_map on host master')
    hosts = guide_hosts()
    hosts[0]['spiderpool_networks_interface_map'] = {'eni-bp1m1': 'eth 1'}
    assert _error(hosts) == "interface name 'eth 1' for ENI eni-bp1m1 on node master is not a valid Linux interface name"
    hosts = guide_hosts()
    hosts[0]['spiderpool_networks_interface_map'] = ['eth0']
    assert _error(hosts).startswith('spiderpool_networks_interface_map on host master must be a mapping')
    hosts = guide_hosts()
    del hosts[0]['alicloud_hostname']
    assert _error(hosts) == 'host master has no Kubernetes node name: neither spiderpool_networks_node_name nor alicloud_hostname is set'


@pytest.mark.parametrize('options, message', [
    ({'nmespace': 'x'}, 'unknown planner option(s) nmespace; expected some of'),
    ({'families': [5]}, 'families must be a non-empty list of 4 and/or 6, got [5]'),
    ({'interfaces': 'eth0'}, "interfaces must be a list of interface names, got 'eth0'"),
    ({'labels': {'team': 'a b'}}, "labels.team: 'a b' is not a valid label value"),
    ({'namespace': 'Kube_System'}, "namespace 'Kube_System' is not a valid Kubernetes namespace name"),
    ({'vlan_id': 5000}, 'vlan_id for interface eth0 must be an integer 0-4094, got 5000'),
    ({'mtu': 'big'}, "mtu for interface eth0 must be an integer 0-65535, got 'big'"),
    ({'pool_name_template': '{host}-{interface}'}, "pool_name_template '{host}-{interface}' is not usable: 'host'"),
    ({'interface_options': {'eth1': {'mtuu': 1}}}, 'interface_options.eth1: unknown key(s) mtuu'),
    ({'ipvlan_options': {'master': ['eth9']}}, 'ipvlan_options for interface eth0 may not set master'),
    ({'multus_name_template': '---'}, "cannot derive a DNS-1123 name from '---'"),
])
def test_error_bad_options(options, message):
    assert _error(guide_hosts(), options).startswith(message)


@pytest.mark.parametrize('hosts, message', [
    ([], 'no hosts given'),
    ('master', 'hosts must be a list of host facts or a dict of hostvars, got str'),
    (['master'], 'host entry 0 is str, expected a dict of host facts'),
])
def test_error_bad_hosts(hosts, message):
    assert _error(hosts).startswith(message)


@pytest.mark.parametrize('v6_cidr, gateway', [
    ('2408:4005:3a1:a400::/64', '2408:4005:3a1:a400::'),
    ('2001:db8:ffff:ff00::/64', '2001:db8:ffff:ff00::'),
])
def test_ipv6_pool_gateway_is_the_subnet_router_anycast_address(v6_cidr, gateway):
    prefix = v6_cidr.split('::/')[0]
    node = host('node-a', 'i-a', [eni('eni-a0', '00:16:3e:0a:00:00', 0, '10.10.0.0/24', '10.10.0.10', ['10.10.0.11'], kind='Primary',
                                      ipv6_cidr=v6_cidr, ipv6=[prefix + '::1', prefix + '::ffff'])])
    result = plan([node])
    pool = pools_by_name(result)['node-a-eth0-v6']
    assert pool['spec']['gateway'] == gateway
    # What Spiderpool's webhook demands of a gateway: inside subnet, not one of the pool's addresses.
    assert ipaddress.ip_address(gateway) in ipaddress.ip_network(pool['spec']['subnet'])
    assert not verify.pool_contains(pool, gateway) and verify.pool_contains(pool, prefix + '::1')
    assert_valid(result['objects'])


# -- spec.ipvlan.ippools of the SpiderMultusConfigs (the pools a pod's interface uses)

def dual_stack_hosts(*names):
    """Nodes with eth0 IPv4 only (its vSwitch has no IPv6) and eth1 dual-stack, as in the lab world."""
    hosts = []
    for index, name in enumerate(names):
        hosts.append(host(name, 'i-%s' % name, [
            eni('eni-%s0' % name, '00:16:3e:00:%02x:00' % index, 0, '172.31.192.0/20', '172.31.193.%d' % (10 * index + 1),
                ['172.31.193.%d' % (10 * index + 2)], kind='Primary'),
            eni('eni-%s1' % name, '00:16:3e:00:%02x:01' % index, 1, '192.168.0.0/24', '192.168.0.%d' % (10 * index + 1),
                ['192.168.0.%d' % (10 * index + 2)], ipv6_cidr='2408:4005:3a1:a400::/64',
                ipv6=['2408:4005:3a1:a400::%x' % (index + 0x100)]),
        ]))
    return hosts


def multus_ippools(result):
    return {m['spec']['ipvlan']['master'][0]: m['spec']['ipvlan']['ippools'] for m in result['multus_configs']}


def test_multus_ippools_name_the_families_the_interface_has_as_wildcards():
    result = plan(dual_stack_hosts('master', 'worker'))
    assert sorted(pools_by_name(result)) == ['master-eth0-v4', 'master-eth1-v4', 'master-eth1-v6',
                                             'worker-eth0-v4', 'worker-eth1-v4', 'worker-eth1-v6']
    # eth0 has no IPv6 pool anywhere: no ipv6 entry, so the IPAM asks for no IPv6 address there.
    assert multus_ippools(result) == {'eth0': {'ipv4': ['*-eth0-v4']},
                                      'eth1': {'ipv4': ['*-eth1-v4'], 'ipv6': ['*-eth1-v6']}}
    assert_valid(result['objects'])
    # What each wildcard selects (Spiderpool: filepath.Match over the pools of that family), here
    # with fnmatch, which agrees with it on [a-z0-9*-]: exactly the interface's pools of the family.
    for iface, families in multus_ippools(result).items():
        for key, (pattern,) in families.items():
            family = int(key[-1])
            assert sorted(n for n, p in pools_by_name(result).items() if p['spec']['ipVersion'] == family and fnmatch.fnmatchcase(n, pattern)) \
                == sorted(n for n, p in pools_by_name(result).items()
                          if p['spec']['ipVersion'] == family and p['spec']['multusName'] == ['kube-system/ipvlan-%s' % iface])
    # IPv6 only on a single node of eth1 is enough for the ipv6 entry; families=[4] drops it.
    one_v6 = dual_stack_hosts('master', 'worker')
    one_v6[1]['alicloud_enis'][1]['ipv6_ips'] = []
    assert multus_ippools(plan(one_v6))['eth1'] == {'ipv4': ['*-eth1-v4'], 'ipv6': ['*-eth1-v6']}
    assert multus_ippools(plan(dual_stack_hosts('master'), {'families': [4]})) == {'eth0': {'ipv4': ['*-eth0-v4']},
                                                                                   'eth1': {'ipv4': ['*-eth1-v4']}}
    # An IPv6-only interface gets only ipv6.
    v6_only = dual_stack_hosts('master')
    v6_only[0]['alicloud_enis'][1]['secondary_ips'] = []
    assert multus_ippools(plan(v6_only))['eth1'] == {'ipv6': ['*-eth1-v6']}


def test_a_family_on_some_nodes_of_an_interface_only_is_named():
    assert plan(dual_stack_hosts('master', 'worker'))['warnings'] == []
    gap = dual_stack_hosts('master', 'worker', 'worker-2')
    gap[1]['alicloud_enis'][1]['ipv6_ips'] = []
    assert plan(gap)['warnings'] == [
        'interface eth1 has IPv6 pools on 2 of 3 nodes: on worker a pod that attaches kube-system/ipvlan-eth1 fails IPAM, '
        'because Spiderpool allocates every family its multus config lists; give those ENIs IPv6 addresses '
        '(alicloud_enis_ipv6_per_eni) or plan fewer families (spiderpool_networks_families)']
    # IPv4 missing is named the same way; an interface whose family the user chose is not.
    gap[2]['alicloud_enis'][1]['secondary_ips'] = []
    heads = ['interface eth1 has IPv4 pools on 2 of 3 nodes', 'interface eth1 has IPv6 pools on 2 of 3 nodes']
    assert [w.split(':')[0] for w in plan(gap)['warnings']] == heads
    chosen = {'ipvlan_options': {'ippools': {'ipv6': ['mine']}}}
    assert [w.split(':')[0] for w in plan(gap, chosen)['warnings']] == ['interface eth1 has IPv4 pools on 2 of 3 nodes']
    assert plan(gap)['warnings'][0] == ('interface eth1 has IPv4 pools on 2 of 3 nodes: on worker-2 a pod that attaches '
                                        'kube-system/ipvlan-eth1 fails IPAM, because Spiderpool allocates every family its multus '
                                        'config lists; give those ENIs IPv4 addresses or plan fewer families (spiderpool_networks_families)')
    # A node without any pool of the interface does not carry it: nothing to say.
    assert plan(gap, {'families': [4]})['warnings'] == []
    # Long node lists are cut.
    many = dual_stack_hosts(*['node-%d' % i for i in range(9)])
    for facts in many[1:]:
        facts['alicloud_enis'][1]['ipv6_ips'] = []
    assert 'on node-1, node-2, node-3, node-4, node-5 and 3 more a pod' in plan(many)['warnings'][0]


def test_multus_config_does_not_change_when_a_node_joins_or_leaves():
    before = plan(dual_stack_hosts('master', 'worker'))
    joined = plan(dual_stack_hosts('master', 'worker', 'worker-2'))
    left = plan(dual_stack_hosts('master'))
    assert len(joined['ippools']) == 9 and len(left['ippools']) == 3
    assert joined['multus_configs'] == before['multus_configs'] == left['multus_configs']


def test_multus_wildcard_follows_the_names_normalisation():
    # Upper case and characters a DNS name cannot hold are normalised in the pattern as in the names.
    hosts = guide_hosts()
    for facts in hosts:
        facts['spiderpool_networks_interface_map'] = {facts['alicloud_enis'][1]['id']: 'Eth1.100'}
    result = plan(hosts, {'pool_name_template': 'Pool_{node}__{interface}.V{family}'})
    assert sorted(pools_by_name(result)) == ['pool-master-eth0-v4', 'pool-master-eth1-100-v4', 'pool-worker-eth0-v4', 'pool-worker-eth1-100-v4']
    assert multus_ippools(result) == {'eth0': {'ipv4': ['pool-*-eth0-v4']}, 'Eth1.100': {'ipv4': ['pool-*-eth1-100-v4']}}


def test_multus_ippools_fall_back_to_sorted_names_when_names_do_not_fit():
    # A fixed prefix and a long node name: that pool's name is cut to 63 characters with a hash, so
    # 'underlay-*-eth0-v4' misses it; the interface's names are listed instead, in order.
    hosts = dual_stack_hosts('worker', 'master')
    hosts[0]['spiderpool_networks_node_name'] = 'worker-' + 'x' * 60
    result = plan(hosts, {'pool_name_template': 'underlay-{node}-{interface}-v{family}'})
    names = sorted(pools_by_name(result))
    long_v4 = next(n for n in names if n.startswith('underlay-worker-') and pools_by_name(result)[n]['spec']['ipVersion'] == 4
                   and pools_by_name(result)[n]['spec']['multusName'] == ['kube-system/ipvlan-eth0'])
    assert len(long_v4) == 63 and not long_v4.endswith('-eth0-v4')
    ippools = multus_ippools(result)
    assert ippools['eth0'] == {'ipv4': sorted(['underlay-master-eth0-v4', long_v4])}
    assert ippools['eth1']['ipv4'][0] == 'underlay-master-eth1-v4' and len(ippools['eth1']['ipv4']) == 2
    assert ippools['eth1']['ipv6'][0] == 'underlay-master-eth1-v6' and len(ippools['eth1']['ipv6']) == 2
    # Only the families whose names miss fall back: a short node name keeps the wildcard.
    assert multus_ippools(plan(dual_stack_hosts('worker', 'master'), {'pool_name_template': 'underlay-{node}-{interface}-v{family}'})) == {
        'eth0': {'ipv4': ['underlay-*-eth0-v4']}, 'eth1': {'ipv4': ['underlay-*-eth1-v4'], 'ipv6': ['underlay-*-eth1-v6']}}
    # Explicit names change with the nodes (the price of the fallback).
    hosts.append(dual_stack_hosts('a', 'b', 'c')[2])
    assert multus_ippools(plan(hosts, {'pool_name_template': 'underlay-{node}-{interface}-v{family}'}))['eth0']['ipv4'] == sorted(
        ['underlay-master-eth0-v4', 'underlay-c-eth0-v4', long_v4])


def test_multus_ippools_never_use_a_wildcard_that_matches_another_interface():
    # Without {interface} in the template the wildcard '*-*-v4' would select eth0's and eth1's pools alike;
    # '*-*-v6' selects only eth1's today, but would also take the IPv6 pools eth0 gets later.
    result = plan(dual_stack_hosts('master', 'worker'), {'pool_name_template': '{node}-{eni}-v{family}'})
    assert multus_ippools(result) == {
        'eth0': {'ipv4': ['master-eni-master0-v4', 'worker-eni-worker0-v4']},
        'eth1': {'ipv4': ['master-eni-master1-v4', 'worker-eni-worker1-v4'], 'ipv6': ['master-eni-master1-v6', 'worker-eni-worker1-v6']}}
    # One interface's name ends in another's: '*th0-v4' would also match eth0's 'n1eth0-v4'.
    hosts = dual_stack_hosts('n1')
    hosts[0]['spiderpool_networks_interface_map'] = {'eni-n10': 'th0', 'eni-n11': 'eth0'}
    assert multus_ippools(plan(hosts, {'pool_name_template': '{node}{interface}-v{family}'})) == {
        'th0': {'ipv4': ['n1th0-v4']}, 'eth0': {'ipv4': ['*eth0-v4'], 'ipv6': ['*eth0-v6']}}
    # A template without a node, ENI or instance field has no wildcard at all (one node only).
    assert multus_ippools(plan(dual_stack_hosts('master'), {'pool_name_template': '{interface}-v{family}'})) == {
        'eth0': {'ipv4': ['eth0-v4']}, 'eth1': {'ipv4': ['eth1-v4'], 'ipv6': ['eth1-v6']}}


def test_multus_ippools_given_in_ipvlan_options_win():
    result = plan(dual_stack_hosts('master'), {'interface_options': {'eth1': {'ipvlan_options': {'ippools': {'ipv6': ['my-v6']}}}}})
    assert multus_ippools(result) == {'eth0': {'ipv4': ['*-eth0-v4']}, 'eth1': {'ipv4': ['*-eth1-v4'], 'ipv6': ['my-v6']}}
    assert _error(dual_stack_hosts('master'), {'ipvlan_options': {'ippools': ['x']}}) == (
        "ipvlan_options.ippools for interface eth0 must be a mapping {ipv4: [...], ipv6: [...]}, got ['x']")
