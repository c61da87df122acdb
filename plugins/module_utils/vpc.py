# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One function per VPC (2016-04-28) egress API call: NAT gateways, EIPs, SNAT entries, IPv6.

Same conventions as ``ecs.py``: every request goes through ``ecs.request`` (one page, retried
with ``clients.retry``), listings walk every page, results are the PascalCase wire dicts.
Action and parameter names, page-size limits and response containers are those of the
``alibabacloud-vpc20160428`` SDK models (``DescribeNatGatewaysRequest``, ...); see
docs/alicloud-egress.md for the list of calls and their sources.
"""

from __future__ import annotations

import time

from ansible_collections.underlay.alicloud.plugins.module_utils.ecs import _normalise_tags, page_numbers, request

# PageSize maxima from the SDK request models' field documentation.
NAT_GATEWAYS_PAGE = 50      # DescribeNatGateways: "Maximum value: 50"
EIPS_PAGE = 100             # DescribeEipAddresses: "Maximum value: 100"
SNAT_ENTRIES_PAGE = 50      # DescribeSnatTableEntries: "Maximum value: 50"
IPV6_ADDRESSES_PAGE = 50    # DescribeIpv6Addresses: "Maximum value: 50"
IPV6_GATEWAYS_PAGE = 50     # DescribeIpv6Gateways: the model gives no maximum; 50 like its siblings
VPCS_PAGE = 50              # DescribeVpcs: "Maximum value: 50"
TAG_RESOURCES_BATCH = 50    # TagResources: "up to 50 resource IDs"


def _page_numbers(clients, region, action, query, container, item, page_size):
    return page_numbers(clients, region, 'vpc', action, query, container, item, page_size)


def describe_vpcs(clients, region, filters=None):
    """DescribeVpcs (PageSize 50) → ``Vpcs.Vpc[]`` (CidrBlock, SecondaryCidrBlocks, Ipv6CidrBlock, ...)."""
    return _page_numbers(clients, region, 'DescribeVpcs', filters, 'Vpcs', 'Vpc', VPCS_PAGE)


# -- NAT gateways ----------------------------------------------------------------------------

def describe_nat_gateways(clients, region, filters=None):
    """DescribeNatGateways (PageSize 50) → ``NatGateways.NatGateway[]``."""
    return _page_numbers(clients, region, 'DescribeNatGateways', filters, 'NatGateways', 'NatGateway', NAT_GATEWAYS_PAGE)


def create_nat_gateway(clients, region, params, client_token=None):
    """CreateNatGateway with API-named ``params`` (VpcId, VSwitchId, NatType, ...) → response dict.

    Asynchronous: the gateway is ``Creating`` until DescribeNatGateways shows ``Available``.
    """
    query = dict(params)
    if 'Tag' in query:
        query['Tag'] = _normalise_tags(query['Tag'])
    query.update(RegionId=region, ClientToken=client_token)
    return request(clients, 'vpc', region, 'CreateNatGateway', query)


def delete_nat_gateway(clients, region, nat_gateway_id, force=False):
    """DeleteNatGateway; ``force`` also removes its SNAT/DNAT entries and unbinds its EIPs."""
    return request(clients, 'vpc', region, 'DeleteNatGateway',
                   {'RegionId': region, 'NatGatewayId': nat_gateway_id, 'Force': bool(force)})


# -- EIPs ------------------------------------------------------------------------------------

def describe_eip_addresses(clients, region, filters=None):
    """DescribeEipAddresses (PageSize 100) → ``EipAddresses.EipAddress[]``."""
    return _page_numbers(clients, region, 'DescribeEipAddresses', filters, 'EipAddresses', 'EipAddress', EIPS_PAGE)


def allocate_eip_address(clients, region, params, client_token=None):
    """AllocateEipAddress (Bandwidth, InternetChargeType, Name, Tag, ...) → ``{AllocationId, EipAddress}``."""
    query = dict(params)
    if 'Tag' in query:
        query['Tag'] = _normalise_tags(query['Tag'])
    query.update(RegionId=region, ClientToken=client_token)
    return request(clients, 'vpc', region, 'AllocateEipAddress', query)


def associate_eip_address(clients, region, allocation_id, instance_id, instance_type='Nat', client_token=None):
    """AssociateEipAddress of an EIP with a NAT gateway (InstanceType ``Nat``) or another instance."""
    return request(clients, 'vpc', region, 'AssociateEipAddress',
                   {'RegionId': region, 'AllocationId': allocation_id, 'InstanceId': instance_id,
                    'InstanceType': instance_type, 'ClientToken': client_token})


def unassociate_eip_address(clients, region, allocation_id, instance_id, instance_type='Nat'):
    """UnassociateEipAddress → response dict."""
    return request(clients, 'vpc', region, 'UnassociateEipAddress',
                   {'RegionId': region, 'AllocationId': allocation_id, 'InstanceId': instance_id,
                    'InstanceType': instance_type})


def release_eip_address(clients, region, allocation_id):
    """ReleaseEipAddress (the EIP must be ``Available``, i.e. not associated)."""
    return request(clients, 'vpc', region, 'ReleaseEipAddress', {'RegionId': region, 'AllocationId': allocation_id})


# -- SNAT entries ----------------------------------------------------------------------------

def describe_snat_table_entries(clients, region, snat_table_id, filters=None):
    """DescribeSnatTableEntries of one SNAT table (PageSize 50) → ``SnatTableEntries.SnatTableEntry[]``."""
    query = dict(filters or {}, SnatTableId=snat_table_id)
    return _page_numbers(clients, region, 'DescribeSnatTableEntries', query, 'SnatTableEntries', 'SnatTableEntry',
                         SNAT_ENTRIES_PAGE)


def create_snat_entry(clients, region, params, client_token=None):
    """CreateSnatEntry (SnatTableId, SourceVSwitchId or SourceCIDR, SnatIp, SnatEntryName) → ``{SnatEntryId}``.

    Asynchronous: the entry is ``Pending`` until it becomes ``Available``.
    """
    query = dict(params)
    query.update(RegionId=region, ClientToken=client_token)
    return request(clients, 'vpc', region, 'CreateSnatEntry', query)


def modify_snat_entry(clients, region, snat_table_id, snat_entry_id, snat_ips):
    """ModifySnatEntry: new SnatIp list (comma-separated on the wire) → response dict."""
    return request(clients, 'vpc', region, 'ModifySnatEntry',
                   {'RegionId': region, 'SnatTableId': snat_table_id, 'SnatEntryId': snat_entry_id,
                    'SnatIp': ','.join(snat_ips)})


def delete_snat_entry(clients, region, snat_table_id, snat_entry_id):
    """DeleteSnatEntry → response dict (the entry is ``Deleting``, then gone)."""
    return request(clients, 'vpc', region, 'DeleteSnatEntry',
                   {'RegionId': region, 'SnatTableId': snat_table_id, 'SnatEntryId': snat_entry_id})


# -- IPv6 gateway and Internet bandwidth ----------------------------------------------------

def describe_ipv6_gateways(clients, region, filters=None):
    """DescribeIpv6Gateways → ``Ipv6Gateways.Ipv6Gateway[]``."""
    return _page_numbers(clients, region, 'DescribeIpv6Gateways', filters, 'Ipv6Gateways', 'Ipv6Gateway', IPV6_GATEWAYS_PAGE)


def describe_ipv6_addresses(clients, region, filters=None):
    """DescribeIpv6Addresses (PageSize 50) → ``Ipv6Addresses.Ipv6Address[]`` (with ``Ipv6InternetBandwidth``)."""
    return _page_numbers(clients, region, 'DescribeIpv6Addresses', filters, 'Ipv6Addresses', 'Ipv6Address',
                         IPV6_ADDRESSES_PAGE)


def allocate_ipv6_internet_bandwidth(clients, region, ipv6_gateway_id, ipv6_address_id, bandwidth,
                                     internet_charge_type=None, client_token=None):
    """AllocateIpv6InternetBandwidth → ``{InternetBandwidthId, Ipv6AddressId}``."""
    return request(clients, 'vpc', region, 'AllocateIpv6InternetBandwidth',
                   {'RegionId': region, 'Ipv6GatewayId': ipv6_gateway_id, 'Ipv6AddressId': ipv6_address_id,
                    'Bandwidth': int(bandwidth), 'InternetChargeType': internet_charge_type,
                    'ClientToken': client_token})


def modify_ipv6_internet_bandwidth(clients, region, bandwidth_id, ipv6_address_id, bandwidth):
    """ModifyIpv6InternetBandwidth (new size in Mbit/s) → response dict."""
    return request(clients, 'vpc', region, 'ModifyIpv6InternetBandwidth',
                   {'RegionId': region, 'Ipv6InternetBandwidthId': bandwidth_id, 'Ipv6AddressId': ipv6_address_id,
                    'Bandwidth': int(bandwidth)})


def delete_ipv6_internet_bandwidth(clients, region, bandwidth_id, ipv6_address_id):
    """DeleteIpv6InternetBandwidth → response dict."""
    return request(clients, 'vpc', region, 'DeleteIpv6InternetBandwidth',
                   {'RegionId': region, 'Ipv6InternetBandwidthId': bandwidth_id, 'Ipv6AddressId': ipv6_address_id})


# -- tags ------------------------------------------------------------------------------------

def tag_resources(clients, region, resource_type, resource_ids, tags):
    """TagResources (ResourceType such as IPV6ADDRESS, EIP, NATGATEWAY; ≤50 ids per call)."""
    ids = list(resource_ids)
    for start in range(0, len(ids), TAG_RESOURCES_BATCH):
        request(clients, 'vpc', region, 'TagResources',
                {'RegionId': region, 'ResourceType': resource_type, 'ResourceId': ids[start:start + TAG_RESOURCES_BATCH],
                 'Tag': _normalise_tags(tags)})


def untag_resources(clients, region, resource_type, resource_ids, tag_keys):
    """UnTagResources of the given tag keys (≤50 ids per call)."""
    ids = list(resource_ids)
    for start in range(0, len(ids), TAG_RESOURCES_BATCH):
        request(clients, 'vpc', region, 'UnTagResources',
                {'RegionId': region, 'ResourceType': resource_type, 'ResourceId': ids[start:start + TAG_RESOURCES_BATCH],
                 'TagKey': list(tag_keys)})


def wait_until(fetch, ready, timeout, what, sleep=None, clock=None):
    """Poll ``fetch()`` until ``ready(value)``; raise ValueError naming ``what`` after ``timeout`` s."""
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    deadline = clock() + timeout
    delay = 0.5
    while True:
        value = fetch()
        if ready(value):
            return value
        if clock() >= deadline:
            raise ValueError('%s: not done after %ss' % (what, timeout))
        sleep(delay)
        delay = min(delay * 2, 5.0)
