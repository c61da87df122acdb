"""Emulator mutations through the real SDK: address assignment rules, ENI lifecycle, idempotency."""
import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_vpc20160428 import models as vpc_models

from ansible_collections.underlay.alicloud.tests.emulator.ecs_emulator import EcsEmulator

REGION = 'cn-hangzhou'


def eni(client, eni_id):
    body = client.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(region_id=REGION, network_interface_id=[eni_id])).body
    found = body.to_map()['NetworkInterfaceSets']['NetworkInterfaceSet']
    return found[0] if found else None


def ipv4(client, eni_id):
    return [s['PrivateIpAddress'] for s in eni(client, eni_id)['PrivateIpSets']['PrivateIpSet'] if not s['Primary']]


def ipv6(client, eni_id):
    return [s['Ipv6Address'] for s in eni(client, eni_id)['Ipv6Sets']['Ipv6Set']]


def available(sdk, emu, vsw_id):
    body = sdk.vpc(emu).describe_vswitches(vpc_models.DescribeVSwitchesRequest(region_id=REGION, v_switch_id=vsw_id)).body
    return body.v_switches.v_switch[0].available_ip_address_count


def assign(client, eni_id, **kwargs):
    return client.assign_private_ip_addresses(ecs_models.AssignPrivateIpAddressesRequest(region_id=REGION, network_interface_id=eni_id, **kwargs))


def assign6(client, eni_id, **kwargs):
    return client.assign_ipv_6addresses(ecs_models.AssignIpv6AddressesRequest(region_id=REGION, network_interface_id=eni_id, **kwargs))


def test_assign_by_count_picks_lowest_free_and_counts_the_quota(fresh_lab, sdk):
    client = sdk.ecs(fresh_lab)
    before = available(sdk, fresh_lab, 'vsw-bp1a')
    body = assign(client, 'eni-bp1x0', secondary_private_ip_address_count=2).body
    assert body.to_map()['AssignedPrivateIpAddressesSet'] == {
        'NetworkInterfaceId': 'eni-bp1x0', 'PrivateIpSet': {'PrivateIpAddress': ['172.31.192.1', '172.31.192.2']},
        'Ipv4PrefixSet': {'Ipv4Prefixes': []}}
    assert ipv4(client, 'eni-bp1x0') == ['172.31.192.1', '172.31.192.2', '172.31.199.196', '172.31.199.197']
    assert available(sdk, fresh_lab, 'vsw-bp1a') == before - 2
    # 5 of 6 IPv4 (primary included) are used: one more fits, two do not.
    err = sdk.error(assign, client, 'eni-bp1x0', secondary_private_ip_address_count=2)
    assert (err.code, err.status_code) == ('InvalidOperation.Ipv4CountExceeded', 403)
    assign(client, 'eni-bp1x0', private_ip_address=['172.31.199.199'])
    err = sdk.error(assign, client, 'eni-bp1m0', private_ip_address=['172.31.199.250'])
    assert (err.code, err.status_code) == ('InvalidOperation.Ipv4CountExceeded', 403)


@pytest.mark.parametrize('address, code', [
    ('172.31.199.185', 'InvalidIp.IpAssigned'),          # master's secondary
    ('172.31.199.183', 'InvalidIp.IpAssigned'),          # master's primary
    ('172.31.192.0', 'InvalidVSwitchId.IpInvalid'),      # network address
    ('172.31.207.253', 'InvalidVSwitchId.IpInvalid'),    # gateway (one of the last three)
    ('172.31.207.255', 'InvalidVSwitchId.IpInvalid'),
    ('10.0.0.5', 'InvalidVSwitchId.IpInvalid'),          # outside the CIDR
    ('172.31.199.300', 'InvalidIp.Address'),
])
def test_assign_explicit_address_rules(fresh_lab, sdk, address, code):
    client = sdk.ecs(fresh_lab)
    err = sdk.error(assign, client, 'eni-bp1x0', private_ip_address=[address])
    assert (err.code, err.status_code) == (code, 403)
    assert address in err.data['Message']
    assert ipv4(client, 'eni-bp1x0') == ['172.31.199.196', '172.31.199.197']


def test_assign_parameter_rules(fresh_lab, sdk):
    client = sdk.ecs(fresh_lab)
    err = sdk.error(assign, client, 'eni-bp1x0')
    assert (err.code, err.status_code) == ('MissingParameter', 400)
    err = sdk.error(assign, client, 'eni-bp1x0', private_ip_address=['172.31.199.240'], secondary_private_ip_address_count=1)
    assert (err.code, err.status_code) == ('InvalidParameter', 400)
    err = sdk.error(assign, client, 'eni-bp1x0', private_ip_address=['172.31.199.240', '172.31.199.240'])
    assert (err.code, err.status_code) == ('InvalidIp.IpRepeated', 403)
    err = sdk.error(assign, client, 'eni-bp1nothere', secondary_private_ip_address_count=1)
    assert (err.code, err.status_code) == ('InvalidEniId.NotFound', 404)
    assert ipv4(client, 'eni-bp1x0') == ['172.31.199.196', '172.31.199.197']


def test_unassign_rules(fresh_lab, sdk):
    client = sdk.ecs(fresh_lab)

    def unassign(eni_id, ips):
        return client.unassign_private_ip_addresses(ecs_models.UnassignPrivateIpAddressesRequest(
            region_id=REGION, network_interface_id=eni_id, private_ip_address=ips))
    for address in ('172.31.199.185', '172.31.199.195'):        # another ENI's secondary; this ENI's primary
        err = sdk.error(unassign, 'eni-bp1x0', [address])
        assert (err.code, err.status_code) == ('InvalidIp.IpUnassigned', 403)
    before = available(sdk, fresh_lab, 'vsw-bp1a')
    unassign('eni-bp1x0', ['172.31.199.197'])
    assert ipv4(client, 'eni-bp1x0') == ['172.31.199.196']
    assert available(sdk, fresh_lab, 'vsw-bp1a') == before + 1


def test_vswitch_exhaustion_and_instance_state(sdk):
    with EcsEmulator(sdk.worlds + '/edge-cases.yml') as emu:
        client = sdk.ecs(emu, key='LTAIedgekey', secret='edgesecret')
        err = sdk.error(assign, client, 'eni-bp1tiny0', secondary_private_ip_address_count=3)
        assert (err.code, err.status_code) == ('InvalidVSwitchId.IpNotEnough', 403)
        assert assign(client, 'eni-bp1tiny0', secondary_private_ip_address_count=2).body.assigned_private_ip_addresses_set \
            .private_ip_set.private_ip_address == ['192.168.10.3', '192.168.10.4']
        err = sdk.error(assign, client, 'eni-bp1start0', secondary_private_ip_address_count=1)
        assert (err.code, err.status_code) == ('InvalidOperation.InvalidEcsState', 400)
        err = sdk.error(assign, client, 'eni-bp1burst0', secondary_private_ip_address_count=1)
        assert (err.code, err.status_code) == ('InvalidOperation.Ipv4CountExceeded', 403)


def test_ipv6_rules(fresh_lab, sdk):
    client = sdk.ecs(fresh_lab)
    err = sdk.error(assign6, client, 'eni-bp1x0', ipv_6address_count=1)
    assert (err.code, err.status_code) == ('InvalidVSwitch.Ipv6NotTurnOn', 403)
    body = assign6(client, 'eni-bp1x1', ipv_6address_count=2).body.to_map()
    assert body['Ipv6Sets'] == {'Ipv6Address': ['2408:4005:3a1:a400::1', '2408:4005:3a1:a400::2']}
    assert ipv6(client, 'eni-bp1x1') == ['2408:4005:3a1:a400::1', '2408:4005:3a1:a400::2']
    err = sdk.error(assign6, client, 'eni-bp1m1', ipv_6address_count=5)        # 2 + 5 > 6
    assert (err.code, err.status_code) == ('InvalidOperation.Ipv6CountExceeded', 403)
    for address, code in (('2408:4005:3a1:a400:ffff:ffff:ffff:fff7', 'InvalidVSwitchId.IpInvalid'),   # last nine reserved
                          ('2408:4005:3a1:a400::', 'InvalidVSwitchId.IpInvalid'),
                          ('2408:4005:3a1:a401::5', 'InvalidVSwitchId.IpInvalid'),
                          ('2408:4005:3a1:a400::156', 'InvalidIp.IpAssigned'), ('not-an-ip', 'InvalidIp.Address')):
        err = sdk.error(assign6, client, 'eni-bp1x1', ipv_6address=[address])
        assert (err.code, err.status_code) == (code, 403), address
    assign6(client, 'eni-bp1x1', ipv_6address=['2408:4005:3a1:a400:ffff:ffff:ffff:fff6'])
    err = sdk.error(assign6, client, 'eni-bp1x1', ipv_6address_count=11)
    assert err.code == 'InvalidParameter'

    def unassign6(ips):
        return client.unassign_ipv_6addresses(ecs_models.UnassignIpv6AddressesRequest(region_id=REGION, network_interface_id='eni-bp1x1', ipv_6address=ips))
    err = sdk.error(unassign6, ['2408:4005:3a1:a400::156'])
    assert (err.code, err.status_code) == ('InvalidIp.IpUnassigned', 403)
    unassign6(['2408:4005:3a1:a400:0::1'])
    assert ipv6(client, 'eni-bp1x1') == ['2408:4005:3a1:a400::2', '2408:4005:3a1:a400:ffff:ffff:ffff:fff6']


def test_client_token_replay_and_mismatch(fresh_lab, sdk):
    client = sdk.ecs(fresh_lab)
    first = assign(client, 'eni-bp1x0', secondary_private_ip_address_count=1, client_token='grow-x0-1').body
    again = assign(client, 'eni-bp1x0', secondary_private_ip_address_count=1, client_token='grow-x0-1').body
    assert first.assigned_private_ip_addresses_set.private_ip_set.private_ip_address == ['172.31.192.1']
    assert again.assigned_private_ip_addresses_set.private_ip_set.private_ip_address == ['172.31.192.1']
    assert first.request_id != again.request_id
    assert ipv4(client, 'eni-bp1x0') == ['172.31.192.1', '172.31.199.196', '172.31.199.197']
    err = sdk.error(assign, client, 'eni-bp1x0', secondary_private_ip_address_count=2, client_token='grow-x0-1')
    assert (err.code, err.status_code) == ('IdempotentParameterMismatch', 400)
    first = assign6(client, 'eni-bp1x1', ipv_6address_count=1, client_token='v6-x1').body.to_map()['Ipv6Sets']
    assert assign6(client, 'eni-bp1x1', ipv_6address_count=1, client_token='v6-x1').body.to_map()['Ipv6Sets'] == first
    assert len(ipv6(client, 'eni-bp1x1')) == 1


def create(client, **kwargs):
    kwargs.setdefault('security_group_id', 'sg-bp1lab')
    return client.create_network_interface(ecs_models.CreateNetworkInterfaceRequest(region_id=REGION, **kwargs)).body


def test_eni_lifecycle(fresh_lab, sdk):
    client = sdk.ecs(fresh_lab)
    tag = [ecs_models.CreateNetworkInterfaceRequestTag(key='cluster', value='lab')]
    body = create(client, v_switch_id='vsw-bp1b', network_interface_name='pods-3', secondary_private_ip_address_count=2,
                  ipv_6address_count=1, tag=tag, client_token='create-pods-3')
    new_id = body.network_interface_id
    wire = body.to_map()
    assert (wire['Status'], wire['Type'], wire['VSwitchId'], wire['PrivateIpAddress']) == ('Available', 'Secondary', 'vsw-bp1b', '192.168.0.1')
    assert [s['PrivateIpAddress'] for s in wire['PrivateIpSets']['PrivateIpSet']] == ['192.168.0.1', '192.168.0.2', '192.168.0.3']
    assert wire['Ipv6Sets']['Ipv6Set'][0]['Ipv6Address'] == '2408:4005:3a1:a400::1'
    assert create(client, v_switch_id='vsw-bp1b', network_interface_name='pods-3', secondary_private_ip_address_count=2,
                  ipv_6address_count=1, tag=tag, client_token='create-pods-3').network_interface_id == new_id
    assert len(client.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id=REGION, network_interface_name='pods-3')).body.network_interface_sets.network_interface_set) == 1

    def attach(eni_id, instance_id):
        return client.attach_network_interface(ecs_models.AttachNetworkInterfaceRequest(region_id=REGION, network_interface_id=eni_id, instance_id=instance_id))

    def detach(eni_id, instance_id):
        return client.detach_network_interface(ecs_models.DetachNetworkInterfaceRequest(region_id=REGION, network_interface_id=eni_id, instance_id=instance_id))

    def delete(eni_id):
        return client.delete_network_interface(ecs_models.DeleteNetworkInterfaceRequest(region_id=REGION, network_interface_id=eni_id))

    err = sdk.error(attach, new_id, 'i-bp1prodweb')
    assert (err.code, err.status_code) == ('InvalidOperation.AvailabilityZoneMismatch', 403)
    err = sdk.error(attach, new_id, 'i-bp1nothere')
    assert (err.code, err.status_code) == ('InvalidInstanceId.NotFound', 404)
    attach(new_id, 'i-bp1worker2')
    assert (eni(client, new_id)['Status'], eni(client, new_id)['Status']) == ('Attaching', 'InUse')   # settles after one describe
    assert eni(client, new_id)['Attachment'] == {'InstanceId': 'i-bp1worker2', 'DeviceIndex': 2, 'NetworkCardIndex': 0}
    err = sdk.error(attach, 'eni-bp1spare', 'i-bp1worker2')                  # ecs.g7.large: 3 ENIs
    assert (err.code, err.status_code) == ('EniPerInstanceLimitExceeded', 403)
    err = sdk.error(attach, new_id, 'i-bp1worker')
    assert (err.code, err.status_code) == ('InvalidOperation.InvalidEniState', 400)
    err = sdk.error(delete, new_id)
    assert (err.code, err.status_code) == ('InvalidOperation.InvalidEniState', 400)
    err = sdk.error(detach, 'eni-bp1x0', 'i-bp1worker2')
    assert (err.code, err.status_code) == ('InvalidOperation.DetachPrimaryEniNotAllowed', 400)
    detach(new_id, 'i-bp1worker2')
    assert (eni(client, new_id)['Status'], eni(client, new_id)['Status']) == ('Detaching', 'Available')
    assert 'Attachment' not in eni(client, new_id) and eni(client, new_id)['InstanceId'] == ''
    attach('eni-bp1spare', 'i-bp1stopped')                                   # Stopped instances take ENIs
    before = available(sdk, fresh_lab, 'vsw-bp1b')
    delete(new_id)
    assert eni(client, new_id) is None and available(sdk, fresh_lab, 'vsw-bp1b') == before + 3
    err = sdk.error(delete, new_id)
    assert (err.code, err.status_code) == ('InvalidEniId.NotFound', 404)
    state = fresh_lab.state()['regions'][REGION]
    assert [e['id'] for e in state['enis']] == []
    assert [e['id'] for i in state['instances'] if i['id'] == 'i-bp1stopped' for e in i['enis']] == ['eni-bp1s0', 'eni-bp1spare']


def test_create_rules(fresh_lab, sdk):
    client = sdk.ecs(fresh_lab)
    err = sdk.error(create, client, v_switch_id='vsw-bp1gone')
    assert (err.code, err.status_code) == ('InvalidVSwitchId.NotFound', 404)
    err = sdk.error(create, client, v_switch_id='vsw-bp1a', ipv_6address_count=1)
    assert (err.code, err.status_code) == ('InvalidVSwitch.Ipv6NotTurnOn', 403)
    err = sdk.error(create, client, v_switch_id='vsw-bp1a', primary_ip_address='172.31.199.183')
    assert (err.code, err.status_code) == ('InvalidIp.IpAssigned', 403)
    err = sdk.error(client.create_network_interface, ecs_models.CreateNetworkInterfaceRequest(region_id=REGION, v_switch_id='vsw-bp1a'))
    assert (err.code, err.status_code, 'SecurityGroupId' in err.data['Message']) == ('MissingParameter', 400, True)
    err = sdk.error(create, client, v_switch_id='vsw-bp1a', private_ip_address=['172.31.192.9'], ipv_6address=['2408:4005:3a1:a400::9'])
    assert err.code == 'InvalidVSwitch.Ipv6NotTurnOn'
    body = create(client, v_switch_id='vsw-bp1a', primary_ip_address='172.31.192.10', private_ip_address=['172.31.192.11'])
    assert [s.private_ip_address for s in body.private_ip_sets.private_ip_set] == ['172.31.192.10', '172.31.192.11']
    assert len(fresh_lab.state()['regions'][REGION]['enis']) == 2
