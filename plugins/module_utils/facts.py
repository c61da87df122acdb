# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Normalisation of raw API dicts into the host-facts contract (DESIGN.md section 4). Pure."""

from __future__ import annotations

from ansible_collections.underlay.alicloud.plugins.module_utils.ipmath import (
    canonical_ip, ip_sort_key, usable_count, vswitch_gateway)


def _items(raw, container, item):
    return ((raw or {}).get(container) or {}).get(item) or []


def tags_dict(raw_tags):
    """``Tags.Tag[]`` (ECS ``TagKey/TagValue`` or VPC ``Key/Value``) → ``{key: value}``."""
    tags = {}
    for tag in _items({'Tags': raw_tags}, 'Tags', 'Tag'):
        key = tag.get('TagKey', tag.get('Key'))
        if key is not None:
            tags[key] = tag.get('TagValue', tag.get('Value', ''))
    return tags


def _optional_int(value):
    if value is None or value == '':
        return None
    return int(value)


def _ipv6_cidr(raw_vswitch):
    return (raw_vswitch or {}).get('Ipv6CidrBlock') or None


def normalise_eni(raw_eni, vswitches_by_id):
    """DescribeNetworkInterfaces item → the ENI record of the contract.

    ``vswitches_by_id`` maps vSwitch ids to DescribeVSwitches items (for CIDR, gateway and IPv6
    CIDR); an unknown vSwitch leaves those fields null.
    """
    vswitch_id = raw_eni.get('VSwitchId')
    vswitch = vswitches_by_id.get(vswitch_id) if vswitch_id else None
    cidr = (vswitch or {}).get('CidrBlock') or None
    primary_ip = raw_eni.get('PrivateIpAddress') or None
    secondary = []
    for entry in _items(raw_eni, 'PrivateIpSets', 'PrivateIpSet'):
        address = entry.get('PrivateIpAddress')
        if not address:
            continue
        if entry.get('Primary'):
            primary_ip = primary_ip or address
        elif address != primary_ip:
            secondary.append(canonical_ip(address))
    ipv6 = [canonical_ip(e['Ipv6Address']) for e in _items(raw_eni, 'Ipv6Sets', 'Ipv6Set') if e.get('Ipv6Address')]
    return {
        'id': raw_eni.get('NetworkInterfaceId'),
        'type': raw_eni.get('Type'),
        'mac': (raw_eni.get('MacAddress') or '').lower() or None,
        'device_index': _optional_int((raw_eni.get('Attachment') or {}).get('DeviceIndex')),
        'vswitch_id': vswitch_id,
        'cidr': cidr,
        'gateway': vswitch_gateway(cidr) if cidr else None,
        'primary_ip': canonical_ip(primary_ip) if primary_ip else None,
        'secondary_ips': sorted(set(secondary), key=ip_sort_key),
        'ipv6_cidr': _ipv6_cidr(vswitch),
        'ipv6_ips': sorted(set(ipv6), key=ip_sort_key),
    }


def eni_details(raw_eni, vswitches_by_id):
    """ENI record plus identity and placement (what ``ecs_eni_info`` returns)."""
    record = normalise_eni(raw_eni, vswitches_by_id)
    record.update({
        'instance_id': raw_eni.get('InstanceId') or (raw_eni.get('Attachment') or {}).get('InstanceId') or None,
        'status': raw_eni.get('Status'),
        'name': raw_eni.get('NetworkInterfaceName') or None,
        'description': raw_eni.get('Description') or None,
        'vpc_id': raw_eni.get('VpcId'),
        'zone_id': raw_eni.get('ZoneId'),
        'security_group_ids': list(_items(raw_eni, 'SecurityGroupIds', 'SecurityGroupId')),
        'tags': tags_dict(raw_eni.get('Tags')),
    })
    return record


def eni_order_key(record):
    """Primary ENI first, then by device index (unknown last), then by id for stability."""
    index = record.get('device_index')
    return (record.get('type') != 'Primary', index is None, index or 0, record.get('id') or '')


def eni_quota(raw_instance_type):
    """DescribeInstanceTypes item → ``{enis, ipv4_per_eni, ipv6_per_eni}`` (None when unknown).

    ``ipv4_per_eni`` is EniPrivateIpAddressQuantity as-is: it counts the ENI's primary address.
    """
    if not raw_instance_type:
        return None
    return {
        'enis': _optional_int(raw_instance_type.get('EniQuantity')),
        'ipv4_per_eni': _optional_int(raw_instance_type.get('EniPrivateIpAddressQuantity')),
        'ipv6_per_eni': _optional_int(raw_instance_type.get('EniIpv6AddressQuantity')),
    }


def host_facts(raw_instance, raw_enis, vswitches_by_id, quota):
    """DescribeInstances item + its DescribeNetworkInterfaces items → the host-facts dict.

    The contract keys come first; ``alicloud_instance_name``, ``alicloud_status``,
    ``alicloud_vswitch_id`` and ``alicloud_private_ip`` are additions used for host naming.
    """
    region = raw_instance.get('RegionId')
    instance_id = raw_instance.get('InstanceId')
    vpc = raw_instance.get('VpcAttributes') or {}
    enis = sorted((normalise_eni(e, vswitches_by_id) for e in raw_enis), key=eni_order_key)
    facts = {
        'alicloud_instance_id': instance_id,
        'alicloud_region': region,
        'alicloud_zone': raw_instance.get('ZoneId'),
        'alicloud_instance_type': raw_instance.get('InstanceType'),
        'alicloud_provider_id': '%s.%s' % (region, instance_id),
        'alicloud_vpc_id': vpc.get('VpcId') or None,
        'alicloud_hostname': raw_instance.get('HostName') or None,
        'alicloud_tags': tags_dict(raw_instance.get('Tags')),
        'alicloud_eni_quota': quota,
        'alicloud_enis': enis,
        'alicloud_instance_name': raw_instance.get('InstanceName') or None,
        'alicloud_status': raw_instance.get('Status'),
        'alicloud_vswitch_id': vpc.get('VSwitchId') or None,
    }
    facts['alicloud_private_ip'] = primary_private_ip(facts) or _first(vpc, 'PrivateIpAddress', 'IpAddress')
    return facts


def _first(raw, container, item):
    values = _items(raw, container, item)
    return values[0] if values else None


def primary_private_ip(host):
    """Primary IPv4 address of the host's primary ENI, or None."""
    for eni in host.get('alicloud_enis') or []:
        if eni.get('type') == 'Primary':
            return eni.get('primary_ip')
    return None


def vswitch_record(raw_vswitch):
    """VPC DescribeVSwitches item → what ``vswitch_info`` returns."""
    cidr = raw_vswitch.get('CidrBlock') or None
    return {
        'id': raw_vswitch.get('VSwitchId'),
        'name': raw_vswitch.get('VSwitchName') or None,
        'vpc_id': raw_vswitch.get('VpcId'),
        'zone_id': raw_vswitch.get('ZoneId'),
        'cidr': cidr,
        'gateway': vswitch_gateway(cidr) if cidr else None,
        'ipv6_cidr': _ipv6_cidr(raw_vswitch),
        'available_ip_count': _optional_int(raw_vswitch.get('AvailableIpAddressCount')),
        'usable_ip_count': usable_count(cidr) if cidr else None,
        'status': raw_vswitch.get('Status'),
        'is_default': bool(raw_vswitch.get('IsDefault')),
        'tags': tags_dict(raw_vswitch.get('Tags')),
    }
