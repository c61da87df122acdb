# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One function per ECS/VPC API call: fully paginated, retried, returning wire-format dicts.

Every request goes through :func:`request`, which retries one page (never a whole listing) with
``clients.retry``. Results are the PascalCase dicts the API sends (``Instances.Instance[]`` items,
``NetworkInterfaceSets.NetworkInterfaceSet[]`` items, ...), so tests can use recorded JSON.
Filters use the API's own parameter names; list values are flattened (``Tag.1.Key``) by the
client, except the DescribeInstances parameters that the API wants as JSON array strings.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError
from ansible_collections.underlay.alicloud.plugins.module_utils.retry import retried

INSTANCES_PAGE = 100        # DescribeInstances MaxResults maximum
ENIS_PAGE = 500             # DescribeNetworkInterfaces MaxResults maximum
VSWITCHES_PAGE = 50         # VPC DescribeVSwitches PageSize maximum
INSTANCE_TYPES_PAGE = 100   # DescribeInstanceTypes effective MaxResults maximum
INSTANCE_TYPES_BATCH = 10   # DescribeInstanceTypes InstanceTypes.N maximum
ID_BATCH = 100              # InstanceIds / NetworkInterfaceId.N maximum per request
SECURITY_GROUPS_PAGE = 50   # DescribeSecurityGroups PageSize maximum; ids are asked in batches of this size
PAGE_WORKERS = 8            # pages of one fanned-out listing in flight at once

# DescribeInstances takes these as JSON array strings, not as flattened .N lists.
_JSON_LIST_PARAMS = ('InstanceIds', 'PrivateIpAddresses', 'PublicIpAddresses', 'EipAddresses')


@retried
def request(clients, service, region, action, query=None):
    """One API request (one page), retried on throttling, 5xx and connection errors."""
    return clients.call(service, region, action, query)


def _items(body, container, item):
    return ((body or {}).get(container) or {}).get(item) or []


def _token_pages(clients, region, action, query, container, item, page_size, on_page=None):
    """All items of a NextToken-paged ECS listing; ``on_page(items)`` sees each page as it arrives."""
    query = dict(query, MaxResults=page_size)
    results = []
    seen = set()
    while True:
        body = request(clients, 'ecs', region, action, query)
        page = _items(body, container, item)
        results.extend(page)
        if on_page is not None:
            on_page(page)
        token = body.get('NextToken')
        if not token:
            return results
        if token in seen:
            raise AlicloudApiError(action, 'InvalidResponse', 'the API returned the same NextToken twice (%s)' % token)
        seen.add(token)
        query['NextToken'] = token


def _normalise_tags(value):
    """Accept ``{key: value}`` as well as the API's ``[{Key, Value}]`` form for ``Tag``."""
    if isinstance(value, dict):
        return [{'Key': k, 'Value': v} for k, v in value.items()]
    return value


def _batched(values, size):
    values = list(values)
    return [values[i:i + size] for i in range(0, len(values), size)]


def _id_batches(filters, key, size=ID_BATCH):
    """Split a filter dict with more than ``size`` ids under ``key`` into several queries."""
    ids = filters.get(key)
    if not isinstance(ids, (list, tuple)) or len(ids) <= size:
        return [filters]
    return [dict(filters, **{key: batch}) for batch in _batched(ids, size)]


def describe_regions(clients):
    """DescribeRegions → ``Regions.Region[]`` (asked through the configured or a default region)."""
    body = request(clients, 'ecs', clients.region or 'cn-hangzhou', 'DescribeRegions', {'AcceptLanguage': 'en-US'})
    return _items(body, 'Regions', 'Region')


def _instance_queries(region, filters):
    """DescribeInstances queries for ``filters``: one per batch of InstanceIds, list parameters as JSON strings."""
    filters = dict(filters or {})
    if 'Tag' in filters:
        filters['Tag'] = _normalise_tags(filters['Tag'])
    queries = []
    for query in _id_batches(filters, 'InstanceIds'):
        for key in _JSON_LIST_PARAMS:
            if isinstance(query.get(key), (list, tuple)):
                query = dict(query, **{key: json.dumps(list(query[key]))})
        query['RegionId'] = region
        queries.append(query)
    return queries


def describe_instances(clients, region, filters=None, on_page=None):
    """DescribeInstances (MaxResults 100 + NextToken) → ``Instances.Instance[]``."""
    results = []
    for query in _instance_queries(region, filters):
        results.extend(_token_pages(clients, region, 'DescribeInstances', query, 'Instances', 'Instance',
                                    INSTANCES_PAGE, on_page))
    return results


def describe_instances_fanned(clients, region, filters=None, on_page=None, workers=PAGE_WORKERS):
    """DescribeInstances in two round trips (see :func:`fan_out_pages`) → ``Instances.Instance[]``, one per InstanceId.

    Queries by InstanceIds are one page per batch already and take the NextToken path, as does a
    listing whose pages disagree (instances created or released while they were read).
    """
    query = _instance_queries(region, filters)[0]
    if 'InstanceIds' not in query:
        results = fan_out_pages(clients, region, 'ecs', 'DescribeInstances', query, 'Instances', 'Instance',
                                'InstanceId', INSTANCES_PAGE, on_page, workers)
        if results is not None:
            return results
    return describe_instances(clients, region, filters, on_page)


def describe_network_interfaces(clients, region, filters=None, on_page=None):
    """DescribeNetworkInterfaces (MaxResults 500 + NextToken) → ``NetworkInterfaceSets.NetworkInterfaceSet[]``."""
    filters = dict(filters or {})
    if 'Tag' in filters:
        filters['Tag'] = _normalise_tags(filters['Tag'])
    results = []
    for query in _id_batches(filters, 'NetworkInterfaceId'):
        query['RegionId'] = region
        results.extend(_token_pages(clients, region, 'DescribeNetworkInterfaces', query, 'NetworkInterfaceSets',
                                    'NetworkInterfaceSet', ENIS_PAGE, on_page))
    return results


def describe_network_interfaces_fanned(clients, region, filters=None, workers=PAGE_WORKERS):
    """DescribeNetworkInterfaces in two round trips (PageSize 500, see :func:`fan_out_pages`) → one item per ENI.

    Lists by NextToken instead when the filters name ENIs, or when the pages disagree or the API
    serves fewer than 500 per page (older API versions cap PageSize at 100: a fan-out would then
    cost five times the calls of the token listing).
    """
    filters = dict(filters or {})
    if not filters.get('NetworkInterfaceId'):
        query = dict(filters, RegionId=region)
        if 'Tag' in query:
            query['Tag'] = _normalise_tags(query['Tag'])
        results = fan_out_pages(clients, region, 'ecs', 'DescribeNetworkInterfaces', query, 'NetworkInterfaceSets',
                                'NetworkInterfaceSet', 'NetworkInterfaceId', ENIS_PAGE, workers=workers)
        if results is not None:
            return results
    return describe_network_interfaces(clients, region, filters)


def fan_out_pages(clients, region, product, action, query, container, item, key, page_size, on_page=None,
                  workers=PAGE_WORKERS):
    """Every item of a PageNumber/PageSize listing in two round trips, or None when the pages disagree.

    Page 1 gives TotalCount; the other pages are then requested together, at most ``workers`` at a
    time, each retried on its own, so the listing takes two round trips at exactly the page minimum
    of calls. ``on_page(items)`` sees each page in the thread that fetched it, as it arrives.
    Items are kept once per ``key``, in page order. Page offsets shift when items are created or
    released between pages, which shows as a TotalCount that differs between pages or fewer
    distinct items than TotalCount: the result is then None, for the caller to list again by
    NextToken. So is a first page shorter than ``page_size`` while TotalCount says more (the API
    capped the page size). When pages fail, the pages not yet sent are cancelled and the error
    of the lowest failed page number is raised.
    """
    query = dict(query, PageSize=page_size, PageNumber=1)
    first = request(clients, product, region, action, query)
    total = int(first.get('TotalCount') or 0)
    page = _items(first, container, item)
    if on_page is not None:
        on_page(page)
    if len(page) < min(page_size, total):
        return None
    pages = [(total, page)]
    count = math.ceil(total / page_size)
    if count > 1:
        pool = ThreadPoolExecutor(min(workers, count - 1), thread_name_prefix='alicloud-%s-pages' % action)
        futures = [pool.submit(_numbered_page, clients, region, product, action, dict(query, PageNumber=number),
                               container, item, on_page) for number in range(2, count + 1)]
        try:
            pages.extend(future.result() for future in futures)
        finally:
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True)
    unique = {}
    for dummy, page in pages:
        for entry in page:
            unique.setdefault(entry.get(key), entry)
    if any(page_total != total for page_total, dummy in pages) or len(unique) != total:
        return None
    return list(unique.values())


def _numbered_page(clients, region, product, action, query, container, item, on_page):
    body = request(clients, product, region, action, query)
    page = _items(body, container, item)
    if on_page is not None:
        on_page(page)
    return int(body.get('TotalCount') or 0), page


def page_numbers(clients, region, product, action, query, container, item, page_size):
    """Every item of a PageNumber/PageSize listing (walks until TotalCount or an empty page)."""
    query = dict(query or {})
    if 'Tag' in query:
        query['Tag'] = _normalise_tags(query['Tag'])
    query.update(RegionId=region, PageSize=page_size)
    results = []
    page_number = 1
    while True:
        query['PageNumber'] = page_number
        body = request(clients, product, region, action, query)
        page = _items(body, container, item)
        results.extend(page)
        # An empty page ends the walk even if TotalCount disagrees (the set changed meanwhile).
        if not page or len(results) >= int(body.get('TotalCount') or 0):
            return results
        page_number += 1


def describe_vswitches(clients, region, filters=None):
    """VPC DescribeVSwitches (PageSize 50, PageNumber until TotalCount) → ``VSwitches.VSwitch[]``."""
    return page_numbers(clients, region, 'vpc', 'DescribeVSwitches', filters, 'VSwitches', 'VSwitch', VSWITCHES_PAGE)


def describe_instance_types(clients, type_ids, region=None):
    """DescribeInstanceTypes for ``type_ids`` (InstanceTypes.N in batches of 10) → ``InstanceTypes.InstanceType[]``.

    The API takes no RegionId; ``region`` only selects the endpoint (default: the configured region).
    """
    region = region or clients.region or 'cn-hangzhou'
    results = []
    for batch in _batched(sorted(set(t for t in type_ids if t)), INSTANCE_TYPES_BATCH):
        results.extend(_token_pages(clients, region, 'DescribeInstanceTypes', {'InstanceTypes': batch},
                                    'InstanceTypes', 'InstanceType', INSTANCE_TYPES_PAGE))
    return results


def describe_security_groups(clients, region, group_ids):
    """DescribeSecurityGroups for ``group_ids`` (a SecurityGroupIds JSON array per page) → ``SecurityGroups.SecurityGroup[]``."""
    results = []
    for batch in _batched(sorted(set(group_ids)), SECURITY_GROUPS_PAGE):
        query = {'RegionId': region, 'SecurityGroupIds': json.dumps(batch), 'PageSize': SECURITY_GROUPS_PAGE}
        results.extend(_items(request(clients, 'ecs', region, 'DescribeSecurityGroups', query), 'SecurityGroups', 'SecurityGroup'))
    return results


def _exactly_one(action, addresses, count):
    if (addresses is None) == (count is None):
        raise ValueError('%s needs exactly one of addresses or count' % action)


def assign_private_ip_addresses(clients, region, eni_id, addresses=None, count=None, client_token=None):
    """AssignPrivateIpAddresses (explicit list or count) → response dict; idempotent with ``client_token``."""
    _exactly_one('AssignPrivateIpAddresses', addresses, count)
    query = {'RegionId': region, 'NetworkInterfaceId': eni_id, 'ClientToken': client_token,
             'PrivateIpAddress': list(addresses) if addresses is not None else None,
             'SecondaryPrivateIpAddressCount': count}
    return request(clients, 'ecs', region, 'AssignPrivateIpAddresses', query)


def unassign_private_ip_addresses(clients, region, eni_id, addresses):
    """UnassignPrivateIpAddresses → response dict."""
    query = {'RegionId': region, 'NetworkInterfaceId': eni_id, 'PrivateIpAddress': list(addresses)}
    return request(clients, 'ecs', region, 'UnassignPrivateIpAddresses', query)


def assign_ipv6_addresses(clients, region, eni_id, addresses=None, count=None, client_token=None):
    """AssignIpv6Addresses (explicit list or count) → response dict; idempotent with ``client_token``."""
    _exactly_one('AssignIpv6Addresses', addresses, count)
    query = {'RegionId': region, 'NetworkInterfaceId': eni_id, 'ClientToken': client_token,
             'Ipv6Address': list(addresses) if addresses is not None else None,
             'Ipv6AddressCount': count}
    return request(clients, 'ecs', region, 'AssignIpv6Addresses', query)


def unassign_ipv6_addresses(clients, region, eni_id, addresses):
    """UnassignIpv6Addresses → response dict."""
    query = {'RegionId': region, 'NetworkInterfaceId': eni_id, 'Ipv6Address': list(addresses)}
    return request(clients, 'ecs', region, 'UnassignIpv6Addresses', query)


def create_network_interface(clients, region, params, client_token=None):
    """CreateNetworkInterface with API-named ``params`` (VSwitchId, SecurityGroupIds, ...) → response dict."""
    query = dict(params)
    if 'Tag' in query:
        query['Tag'] = _normalise_tags(query['Tag'])
    query.update(RegionId=region, ClientToken=client_token)
    return request(clients, 'ecs', region, 'CreateNetworkInterface', query)


def attach_network_interface(clients, region, eni_id, instance_id):
    """AttachNetworkInterface (asynchronous: the ENI goes Attaching → InUse) → response dict."""
    return request(clients, 'ecs', region, 'AttachNetworkInterface',
                   {'RegionId': region, 'NetworkInterfaceId': eni_id, 'InstanceId': instance_id})


def detach_network_interface(clients, region, eni_id, instance_id):
    """DetachNetworkInterface (asynchronous: Detaching → Available) → response dict."""
    return request(clients, 'ecs', region, 'DetachNetworkInterface',
                   {'RegionId': region, 'NetworkInterfaceId': eni_id, 'InstanceId': instance_id})


def delete_network_interface(clients, region, eni_id):
    """DeleteNetworkInterface (the ENI must be Available) → response dict."""
    return request(clients, 'ecs', region, 'DeleteNetworkInterface', {'RegionId': region, 'NetworkInterfaceId': eni_id})
