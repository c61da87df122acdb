# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-scale collection of host facts, shared by ``ecs_instance_info`` and the ``ecs`` inventory.

Wall time is bounded by the longest chain of sequential pages, so everything else overlaps it:
regions run in parallel; within a region the bulk ENI listing (500 per page) and the vSwitch
listing run while the instances are listed (100 per page), and instance types are requested as
soon as a page shows a type not seen before (each type once). The instance and ENI listings fan
out over PageNumber (``ecs.fan_out_pages``): two round trips each instead of one per page.
Worker errors are re-raised in the calling thread.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.underlay.alicloud.plugins.module_utils import ecs
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import is_permission_error
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import eni_quota, host_facts

REGION_WORKERS = 8
# Per region: instance queries, the ENI listing, the vSwitch listing and instance-type batches.
WORKERS_PER_REGION = 6


def _common_value(filters_list, key):
    """The value of ``key`` when every query sets it to the same value, else None."""
    values = set()
    for filters in filters_list:
        value = filters.get(key)
        if not isinstance(value, str) or not value:
            return None
        values.add(value)
    return values.pop() if len(values) == 1 else None


def eni_owner(raw_eni):
    """Instance id an ENI is attached to (None for unattached or service-managed ENIs)."""
    return raw_eni.get('InstanceId') or (raw_eni.get('Attachment') or {}).get('InstanceId') or None


def _instance_eni_ids(raw_instances):
    ids = []
    for instance in raw_instances:
        for eni in ((instance.get('NetworkInterfaces') or {}).get('NetworkInterface') or []):
            if eni.get('NetworkInterfaceId'):
                ids.append(eni['NetworkInterfaceId'])
    return ids


class _TypeFetcher:
    """Requests instance types as they appear in instance pages, each type exactly once."""

    def __init__(self, clients, region, pool):
        self.clients = clients
        self.region = region
        self.pool = pool
        self.lock = threading.Lock()
        self.requested = set()
        self.futures = []

    def on_page(self, page):
        new = set(i.get('InstanceType') for i in page if i.get('InstanceType'))
        with self.lock:
            new -= self.requested
            if not new:
                return
            self.requested |= new
            self.futures.append(self.pool.submit(ecs.describe_instance_types, self.clients, sorted(new), self.region))

    def quotas(self):
        quotas = {}
        for future in list(self.futures):
            for raw_type in future.result():
                quotas[raw_type.get('InstanceTypeId')] = eni_quota(raw_type)
        return quotas


def gather_region(clients, region, filters_list=None, exclude_filters_list=None):
    """Host-facts dicts for the instances of one region matching any of ``filters_list``.

    Each entry of ``filters_list`` is one DescribeInstances query (API parameter names); hosts
    matching any entry of ``exclude_filters_list`` are dropped. Sorted by instance id.
    """
    filters_list = list(filters_list or [{}])
    exclude_filters_list = list(exclude_filters_list or [])
    vpc_id = _common_value(filters_list, 'VpcId')
    by_instance_ids = all(f.get('InstanceIds') for f in filters_list)
    scope = {'VpcId': vpc_id} if vpc_id else {}

    with ThreadPoolExecutor(WORKERS_PER_REGION, thread_name_prefix='alicloud-%s' % region) as pool:
        types = _TypeFetcher(clients, region, pool)
        include = [pool.submit(ecs.describe_instances_fanned, clients, region, f, types.on_page) for f in filters_list]
        exclude = [pool.submit(ecs.describe_instances_fanned, clients, region, f) for f in exclude_filters_list]
        vswitches = pool.submit(ecs.describe_vswitches, clients, region, scope)
        # Narrow queries by instance id fetch just those instances' ENIs; anything else lists
        # the region's (or VPC's) ENIs in bulk, overlapping the instance pages.
        enis = None if by_instance_ids else pool.submit(ecs.describe_network_interfaces_fanned, clients, region, scope)

        instances = {}
        for future in include:
            for raw in future.result():
                instances[raw['InstanceId']] = raw
        if enis is None:
            eni_ids = _instance_eni_ids(instances.values())
            raw_enis = ecs.describe_network_interfaces(clients, region, {'NetworkInterfaceId': eni_ids}) if eni_ids else []
        else:
            raw_enis = enis.result()
            if all(f == scope for f in filters_list):
                # Every instance of the scope is wanted, so every primary ENI names one: an instance that pages
                # shifted by a release and a creation hid from the instance listing is asked for by ID.
                unseen = set(eni_owner(e) for e in raw_enis if e.get('Type') == 'Primary') - set(instances) - {None}
                for raw in ecs.describe_instances(clients, region, {'InstanceIds': sorted(unseen)}, types.on_page) if unseen else []:
                    instances[raw['InstanceId']] = raw
        for future in exclude:
            for raw in future.result():
                instances.pop(raw['InstanceId'], None)
        vswitches_by_id = dict((v['VSwitchId'], v) for v in vswitches.result())
        quotas = types.quotas()

    enis_by_instance = {}
    for raw_eni in raw_enis:
        owner = eni_owner(raw_eni)
        if owner in instances:
            enis_by_instance.setdefault(owner, []).append(raw_eni)
    return [host_facts(instances[i], enis_by_instance.get(i, []), vswitches_by_id, quotas.get(instances[i].get('InstanceType')))
            for i in sorted(instances)]


def gather_hosts(clients, regions=None, filters_list=None, exclude_filters_list=None, max_workers=REGION_WORKERS,
                 on_region_error=None):
    """Host-facts dicts for all ``regions`` (empty: every region DescribeRegions lists), in parallel.

    Hosts come region by region in the order of ``regions``. A region failing with a permission
    error is passed to ``on_region_error(region, error)`` and skipped when that callback is given
    (non-strict mode); every other error, or any error without a callback, is raised here.
    """
    regions = list(regions or [r['RegionId'] for r in ecs.describe_regions(clients)])
    if not regions:
        return []
    with ThreadPoolExecutor(max(1, min(max_workers, len(regions))), thread_name_prefix='alicloud-regions') as pool:
        futures = [(region, pool.submit(gather_region, clients, region, filters_list, exclude_filters_list))
                   for region in regions]
        hosts = []
        for region, future in futures:
            try:
                hosts.extend(future.result())
            except Exception as err:  # pylint: disable=broad-except
                if on_region_error is None or not is_permission_error(err):
                    raise
                on_region_error(region, err)
    return hosts
