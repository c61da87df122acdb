# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ecs
short_description: Alibaba Cloud ECS instances, with their ENIs and IPs, as an inventory
version_added: 0.1.0
description:
  - Lists the ECS instances of one or more Alibaba Cloud regions and adds each one as a host carrying the
    normalised host facts of this collection (instance, region, zone, type, provider ID, VPC, hostname, tags,
    ENI quota and every ENI with MAC, vSwitch CIDR and gateway, primary, secondary and IPv6 addresses).
  - Uses a YAML configuration file whose name ends with C(alicloud_ecs.yml) or C(alicloud_ecs.yaml).
  - Regions are listed in parallel; inside a region the ENI and vSwitch listings run alongside the instance
    listing, every listing at the API's largest page size. ENIs are listed per region in bulk, never per instance.
  - The instance and ENI listings read their first page, then all the others at once (at most 8 requests in flight
    per listing), so they take two round trips whatever the fleet size. A listing whose pages disagree because
    instances were created or released meanwhile is read again by C(NextToken); no instance appears twice.
    Without filters (or with C(VpcId) alone), an instance whose primary ENI is listed but which the pages missed
    is asked for by ID.
  - Each host is added to the groups C(alicloud_region_<region>) and C(alicloud_zone_<zone>) (dashes become
    underscores); O(compose), O(groups) and O(keyed_groups) add more.
  - O(regions) (element by element), O(filters), O(include_filters), O(exclude_filters) and the credential and endpoint
    options may be Jinja templates, for example an C(ansible.builtin.env) lookup (see the examples); extra vars are
    available to them.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
requirements:
  - alibabacloud-ecs20140526
  - alibabacloud-vpc20160428
  - alibabacloud-credentials
  - alibabacloud-tea-openapi
extends_documentation_fragment:
  - underlay.alicloud.auth.plugins
  - constructed
  - inventory_cache
notes:
  - A cache hit (O(cache=true) and a fresh entry) makes no API call and does not load the Alibaba Cloud SDK.
    The cache holds the host facts, so O(hostnames), O(compose), O(groups) and O(keyed_groups) can change without a
    refresh; a change of O(regions), the filters, the endpoints or the account selects a different cache entry.
  - The host facts are the same as those returned by M(underlay.alicloud.ecs_instance_info).
  - O(compose), O(groups) and O(keyed_groups) are evaluated once per distinct value of the variables they read and the
    outcome is reused for hosts with the same values; expressions that call C(lookup), C(query), C(now), C(random) or
    C(shuffle) are evaluated for every host.
  - An option this plugin does not know (for example C(filter) for O(filters)) fails the inventory with a message
    naming it and the nearest valid option.
  - Ansible tries every enabled inventory plugin on a source that failed; to see only this plugin's error, enable
    only the plugins your sources need (see the C(enable_plugins) setting), and set C(any_unparsed_is_failed) so that
    a broken source fails the run instead of leaving it without hosts.
  - Host variables set by this plugin are the C(alicloud_*) facts (renamed by O(hostvars_prefix) and
    O(hostvars_suffix)) and C(ansible_host), the primary private IPv4 address of the primary ENI.
    O(compose) runs after them, so it can override C(ansible_host).
options:
  plugin:
    description: Marks the file as a configuration of this plugin.
    required: true
    type: str
    choices: [underlay.alicloud.ecs]
  regions:
    description:
      - Regions to list instances in.
      - Empty (the default) lists every region that DescribeRegions returns.
    type: list
    elements: str
    default: []
  filters:
    description:
      - DescribeInstances request parameters by their API names, for example C(VpcId), C(VSwitchId), C(ZoneId),
        C(Status), C(InstanceName) (C(*) wildcard), C(InstanceIds) or C(Tag) (a list of C(Key)/C(Value) mappings).
      - The filters are one query per region; O(include_filters) adds more queries.
      - Keys are checked before any API call against the request parameters of DescribeInstances (those of
        C(DescribeInstancesRequest) in the SDK C(alibabacloud-ecs20140526)) except C(RegionId) and paging, and the
        entries of C(Tag) and C(Filter) may hold C(Key) and C(Value) only; the same holds for O(include_filters) and
        O(exclude_filters). An unknown key fails the inventory with a message naming it and the nearest valid one,
        because the API would ignore it and return every instance of the region.
    type: dict
    default: {}
  include_filters:
    description:
      - A list of filter mappings like O(filters); an instance that matches O(filters) or at least one of these is included.
      - Every entry is one more query per region, so keep the list short.
    type: list
    elements: dict
    default: []
  exclude_filters:
    description:
      - A list of filter mappings like O(filters); an instance that matches any of them is left out,
        even when O(filters) or O(include_filters) match it.
      - Every entry is one more query per region.
    type: list
    elements: dict
    default: []
  hostnames:
    description:
      - The inventory hostname of an instance, as an ordered preference list; the first entry that gives a
        non-empty value wins.
      - Each entry is one of C(hostname) (the ECS HostName), C(instance_name), C(instance_id), C(private_ip) (the
        primary private IPv4 address), C(tag:<key>) (the value of that tag), or a Jinja expression such as
        C("{{ alicloud_tags.env }}-{{ alicloud_instance_id }}") that sees the host facts by their unprefixed names.
      - An entry may also be a mapping with C(name), C(prefix) and C(separator) (default C(_)), where C(name) and
        C(prefix) are entries as above; the hostname is then prefix, separator and name joined.
      - An instance for which no entry gives a value is left out of the inventory.
      - When two instances would get the same name, the later one (ordered by region and instance ID) is named by its
        instance ID; one warning lists those instances.
    type: list
    elements: raw
    default: [hostname, instance_id]
  hostvars_prefix:
    description: Prefix for the names of the C(alicloud_*) host variables.
    type: str
    default: ''
  hostvars_suffix:
    description: Suffix for the names of the C(alicloud_*) host variables.
    type: str
    default: ''
  strict_permissions:
    description:
      - When V(true), a permission error in a region (for example C(Forbidden.RAM)) fails the inventory.
      - When V(false), that region is skipped with a warning and the other regions are listed.
    type: bool
    default: true
"""

EXAMPLES = r"""
# lab.alicloud_ecs.yml: the running nodes of one cluster, endpoints and keys from the environment
plugin: underlay.alicloud.ecs
regions: [cn-hangzhou]
filters:
  Status: Running
  Tag:
    - {Key: cluster, Value: lab}
groups:
  kube_control_plane: alicloud_tags.role | default('') == 'master'
  kube_node: alicloud_tags.role | default('') == 'worker'
  k8s_cluster: alicloud_tags.role | default('') in ['master', 'worker']

---
# prod.alicloud_ecs.yml: two regions, several queries, tag-based names and groups
plugin: underlay.alicloud.ecs
regions: [cn-hangzhou, cn-shanghai]
include_filters:
  - {VpcId: vpc-bp1prod, Status: Running}
  - {Tag: [{Key: team, Value: network}]}
exclude_filters:
  - {Tag: [{Key: lifecycle, Value: retiring}]}
hostnames:
  - tag:Name
  - name: instance_id
    prefix: tag:cluster
    separator: '-'
keyed_groups:
  - key: alicloud_tags.cluster
    prefix: cluster
  - key: alicloud_instance_type
    prefix: type
compose:
  ansible_user: "'ecs-user'"

---
# Credentials through a lookup, variables with a prefix, and a one-hour cache
plugin: underlay.alicloud.ecs
access_key_id: "{{ lookup('ansible.builtin.env', 'PROD_ALIBABA_KEY_ID') }}"
access_key_secret: "{{ lookup('ansible.builtin.env', 'PROD_ALIBABA_KEY_SECRET') }}"
regions: [cn-beijing]
hostvars_prefix: ecs_
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/underlay-alicloud-inventory
cache_timeout: 3600
"""

import copy
import gc
import hashlib
import json

from jinja2 import Environment, TemplateSyntaxError, nodes as jinja_nodes
from jinja2.meta import find_undeclared_variables

from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleParserError, AnsibleUndefinedVariable
from ansible.module_utils.parsing.convert_bool import BOOLEANS
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable, to_safe_group_name

from ansible_collections.underlay.alicloud.plugins.module_utils.client import HAS_ALIBABA_SDK, SDK_REQUIREMENT, AlicloudClients
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import primary_private_ip
from ansible_collections.underlay.alicloud.plugins.module_utils.filters import check_filters, unknown
from ansible_collections.underlay.alicloud.plugins.module_utils.gather import gather_hosts

CONFIG_SUFFIXES = ('alicloud_ecs.yml', 'alicloud_ecs.yaml')

# Options shared with the modules (doc fragment underlay.alicloud.auth.plugins), by the names AlicloudClients expects.
CLIENT_OPTIONS = ('region', 'access_key_id', 'access_key_secret', 'security_token', 'role_arn', 'role_session_name',
                  'profile', 'ecs_endpoint', 'vpc_endpoint', 'timeout', 'max_retries')
# The ones that select which data comes back; never the secret or the token, as the key lands on disk.
CACHE_KEY_OPTIONS = ('region', 'access_key_id', 'role_arn', 'profile', 'ecs_endpoint', 'vpc_endpoint')
SECRET_OPTIONS = ('access_key_secret', 'security_token')
QUERY_OPTIONS = ('regions', 'filters', 'include_filters', 'exclude_filters')

HOSTNAME_FIELDS = {
    'hostname': 'alicloud_hostname',
    'instance_name': 'alicloud_instance_name',
    'instance_id': 'alicloud_instance_id',
}
# What ansible-core's keyed groups read (it ignores any other key: a typo would group nothing).
KEYED_GROUP_KEYS = ('key', 'prefix', 'separator', 'parent_group', 'default_value', 'trailing_separator')
# Lookups, time and randomness can give different results for equal variables: never memoised.
VOLATILE_NAMES = frozenset(('lookup', 'query', 'q', 'now', 'random', 'shuffle'))
HOSTNAME_CHOICES = 'hostname, instance_name, instance_id, private_ip, tag:<key> or a Jinja expression'


def _is_boolean(value):
    """A value ansible-core reads as a bool for what it says (it reads any other word as false)."""
    if isinstance(value, str):
        value = value.lower()
    return isinstance(value, (str, int, float)) and value in BOOLEANS


def expression_refs(expressions):
    """Sorted names of the variables that constructed expressions read; None when the outcome could differ
    between hosts with equal values of those variables (volatile calls) or the expressions do not parse."""
    environment = Environment()
    names = set()
    for expression in expressions:
        if expression is None or isinstance(expression, bool):
            continue
        if not isinstance(expression, str):
            return None
        source = expression if ('{{' in expression or '{%' in expression) else '{{ (%s) }}' % expression
        try:
            tree = environment.parse(source)
        except TemplateSyntaxError:
            return None
        for node in tree.find_all((jinja_nodes.Name, jinja_nodes.Filter, jinja_nodes.Test)):
            if node.name.rsplit('.', 1)[-1] in VOLATILE_NAMES:
                return None
        names.update(find_undeclared_variables(tree))
    return sorted(names)


class _GroupRecorder:
    """Stands in for the inventory while ansible-core's group helpers run, noting each group they put
    the host in (including groups it was already in), so the same memberships can be replayed."""

    def __init__(self, inventory, host):
        self.inventory = inventory
        self.host = host
        self.groups = []

    def __getattr__(self, name):
        return getattr(self.inventory, name)

    def add_child(self, group, child):
        if child == self.host:
            self.groups.append(group)
        return self.inventory.add_child(group, child)

    def add_host(self, host, group=None, port=None):
        if host == self.host and group:
            self.groups.append(group)
        return self.inventory.add_host(host, group=group, port=port)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'underlay.alicloud.ecs'

    def verify_file(self, path):
        return super().verify_file(path) and to_text(path).endswith(CONFIG_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path)
        config = self._read_config_data(path)
        # Ansible ignores unknown options and keyed_groups keys, and the API unknown filters: a typo would
        # select every instance.
        for name in config:
            if name not in self._options:
                raise AnsibleParserError('underlay.alicloud.ecs inventory: %s' % unknown('option', name, self._options))
        for index, keyed in enumerate(config.get('keyed_groups') or []):
            for key in (keyed if isinstance(keyed, dict) else {}):
                if key not in KEYED_GROUP_KEYS:
                    raise AnsibleParserError('underlay.alicloud.ecs inventory: keyed_groups[%d]: %s' % (index, unknown('key', key, KEYED_GROUP_KEYS)))
        # ...and reads any word it does not know as false for a bool option (strict_permissions: sometimes).
        definitions = C.config.get_configuration_definitions('inventory', self._load_name)
        for name, value in config.items():
            if (definitions.get(name) or {}).get('type') in ('bool', 'boolean') and not _is_boolean(value):
                raise AnsibleParserError('underlay.alicloud.ecs inventory: option %s must be true or false, got %r' % (name, value))
        hostnames = [self._hostname_entry(entry) for entry in self.get_option('hostnames')]
        settings = self._templated(CLIENT_OPTIONS)
        query = self._templated(QUERY_OPTIONS)
        self._check_queries(query)

        cache_key = self._cache_key(path, settings, query)
        use_cache = self.get_option('cache')
        # The host facts are hundreds of thousands of small acyclic containers that live as long as the inventory.
        # The cyclic garbage collector would walk all of them again at each collection while they are built (half
        # the CPU of listing 5,000 hosts) and after; it pauses meanwhile and then leaves them out (gc.freeze).
        collecting = gc.isenabled()
        gc.disable()
        try:
            hosts = None
            if use_cache and cache:
                cached = self._cache.get(cache_key)
                # One JSON document, not a structure: cache plugins decode a structure object by object with
                # ansible-core's tagging decoder, several times slower than json.loads for thousands of hosts.
                hosts = json.loads(cached) if isinstance(cached, str) else None
            if hosts is None:
                hosts = self._fetch(settings, query)
                if use_cache:
                    self._cache[cache_key] = json.dumps(hosts, separators=(',', ':'))
            self._populate(hosts, hostnames)
        finally:
            gc.freeze()
            if collecting:
                gc.enable()

    # --- options ---------------------------------------------------------------------------------------------

    def _templated(self, names):
        """Option values by name, with Jinja templates (from the config file only, which is trusted) rendered."""
        self.templar.available_variables = self._vars or {}
        values = {}
        for name in names:
            if name not in self._options:
                continue
            value = self.get_option(name)
            try:
                values[name] = self.templar.template(value)
            except Exception as exc:
                # The error text could quote a rendered secret: for those options name only the error type.
                detail = type(exc).__name__ if name in SECRET_OPTIONS else to_text(exc)
                raise AnsibleParserError('Could not template option %s: %s' % (name, detail)) from None
        return values

    @staticmethod
    def _check_queries(query):
        """Every filter mapping, after templating, may hold DescribeInstances request parameters only."""
        queries = [('filters', query['filters'])]
        for option in ('include_filters', 'exclude_filters'):
            queries.extend(('%s[%d]' % (option, index), filters) for index, filters in enumerate(query[option]))
        try:
            for where, filters in queries:
                check_filters('DescribeInstances', filters, where)
        except ValueError as exc:
            raise AnsibleParserError('underlay.alicloud.ecs inventory: %s' % exc) from None

    def _cache_key(self, path, settings, query):
        scope = dict(query, **{name: settings.get(name) for name in CACHE_KEY_OPTIONS})
        digest = hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode('utf-8')).hexdigest()[:12]
        return '%s_%s' % (self.get_cache_key(path), digest)

    def _hostname_entry(self, entry):
        """Validate one hostnames entry up front, so a typo fails the run instead of silently dropping hosts."""
        if isinstance(entry, dict):
            unknown = set(entry) - {'name', 'prefix', 'separator'}
            if 'name' not in entry or unknown:
                raise AnsibleParserError('hostnames entry %r is invalid: a mapping needs name and may have prefix and separator' % (entry,))
            for key in ('name', 'prefix'):
                if key in entry:
                    self._hostname_entry(entry[key])
            return entry
        if not isinstance(entry, str) or not (entry in HOSTNAME_FIELDS or entry == 'private_ip' or
                                              (entry.startswith('tag:') and len(entry) > 4) or
                                              self.templar.is_possibly_template(entry)):
            raise AnsibleParserError('hostnames entry %r is invalid: expected %s' % (entry, HOSTNAME_CHOICES))
        return entry

    # --- data ------------------------------------------------------------------------------------------------

    def _fetch(self, settings, query):
        """All host facts for the configured regions and filters (API calls; the only part a cache hit skips)."""
        if not HAS_ALIBABA_SDK:
            raise AnsibleError('The underlay.alicloud.ecs inventory requires %s' % SDK_REQUIREMENT)
        include = ([query['filters']] if query['filters'] else []) + list(query['include_filters'])
        try:
            # ValueError: bad settings (endpoint, region, timeout); its text names the bad value.
            return gather_hosts(AlicloudClients(settings), query['regions'], filters_list=include or [{}],
                                exclude_filters_list=query['exclude_filters'],
                                on_region_error=None if self.get_option('strict_permissions') else self._skip_region)
        except (AlicloudApiError, ValueError) as exc:
            raise AnsibleError('underlay.alicloud.ecs inventory: %s' % exc) from None

    def _skip_region(self, region, error):
        self.display.warning('underlay.alicloud.ecs inventory: skipping region %s: %s' % (region, error))

    # --- inventory -------------------------------------------------------------------------------------------

    def _populate(self, hosts, hostnames):
        strict = self.get_option('strict')
        compose, groups, keyed_groups = self.get_option('compose'), self.get_option('groups'), self.get_option('keyed_groups')
        prefix = self.get_option('hostvars_prefix') or ''
        suffix = self.get_option('hostvars_suffix') or ''
        owners = {}
        renamed = []
        default_groups = {}
        expressions = list(compose.values()) + list(groups.values())
        for keyed in keyed_groups:
            expressions.extend((keyed.get('key'), keyed.get('parent_group')) if isinstance(keyed, dict) else (None,))
        constructed = {'compose': compose, 'groups': groups, 'keyed_groups': keyed_groups,
                       'refs': expression_refs(expressions), 'memo': {}}
        for facts in sorted(hosts, key=lambda host: (host['alicloud_region'], host['alicloud_instance_id'])):
            instance_id = facts['alicloud_instance_id']
            name = self._hostname(facts, hostnames)
            if name is None:
                self.display.vvv('underlay.alicloud.ecs: no hostname for %s, leaving it out' % instance_id)
                continue
            if owners.setdefault(name, instance_id) != instance_id:
                renamed.append('%s (%s, taken by %s)' % (instance_id, name, owners[name]))
                name = instance_id
                owners[name] = instance_id

            hostvars = {'%s%s%s' % (prefix, key, suffix): value for key, value in facts.items()}
            private_ip = primary_private_ip(facts)
            if private_ip:
                hostvars['ansible_host'] = private_ip
            self.inventory.add_host(name)
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
            placement = (facts['alicloud_region'], facts['alicloud_zone'])
            if placement not in default_groups:
                default_groups[placement] = [self.inventory.add_group(to_safe_group_name(group)) for group in
                                             ('alicloud_region_%s' % placement[0], 'alicloud_zone_%s' % placement[1])]
            for group in default_groups[placement]:
                self.inventory.add_child(group, name)

            if compose or groups or keyed_groups:
                self._construct(name, hostvars, constructed, strict)
        if renamed:
            # One warning, not one per host: a fleet with per-region name reuse would flood the output.
            self.display.warning('underlay.alicloud.ecs: %d instance(s) named by instance ID because their hostname was taken: %s%s'
                                 % (len(renamed), ', '.join(renamed[:5]), ', ...' if len(renamed) > 5 else ''))

    def _construct(self, name, hostvars, constructed, strict):
        """compose, groups and keyed_groups for one host, through ansible-core's helpers.

        ansible-core compiles every expression anew for every host (about 0.7 ms of CPU each), which made these options
        the largest cost of a cached fleet inventory. Their outcome depends only on the variables the
        expressions read, so it is computed once per distinct set of those values and replayed for the other hosts.
        """
        host = self.inventory.get_host(name)
        key = None
        if constructed['refs'] is not None:
            variables = host.get_vars()
            key = json.dumps([[ref in variables, variables.get(ref)] for ref in constructed['refs']], sort_keys=True, default=str)
        outcome = constructed['memo'].get(key) if key is not None else None
        if outcome is not None:
            for varname, value in outcome[0].items():
                self.inventory.set_variable(name, varname, copy.deepcopy(value))
            for group in outcome[1]:
                self.inventory.add_child(group, name)
            return

        before_vars = dict(host.vars)
        self._set_composite_vars(constructed['compose'], hostvars, name, strict=strict)
        # Groups see the composed variables too; merge them once, not once per helper.
        variables = host.get_vars()
        recorder = _GroupRecorder(self.inventory, name)
        self.inventory = recorder
        try:
            self._add_host_to_composed_groups(constructed['groups'], variables, name, strict=strict, fetch_hostvars=False)
            self._add_host_to_keyed_groups(constructed['keyed_groups'], variables, name, strict=strict, fetch_hostvars=False)
        finally:
            self.inventory = recorder.inventory
        if key is not None:
            # A composed variable is one that compose set: a new object, even when equal to the old value.
            composed = {varname: host.vars[varname] for varname in constructed['compose']
                        if varname in host.vars and host.vars[varname] is not before_vars.get(varname)}
            constructed['memo'][key] = (composed, recorder.groups)

    def _hostname(self, facts, hostnames):
        for entry in hostnames:
            if isinstance(entry, dict):
                name = self._hostname_value(facts, entry['name'])
                if name and entry.get('prefix'):
                    head = self._hostname_value(facts, entry['prefix'])
                    name = '%s%s%s' % (head, entry.get('separator', '_'), name) if head else None
            else:
                name = self._hostname_value(facts, entry)
            if name:
                return name
        return None

    def _hostname_value(self, facts, entry):
        if entry in HOSTNAME_FIELDS:
            value = facts.get(HOSTNAME_FIELDS[entry])
        elif entry == 'private_ip':
            value = primary_private_ip(facts)
        elif entry.startswith('tag:'):
            value = (facts.get('alicloud_tags') or {}).get(entry[4:])
        else:
            self.templar.available_variables = facts
            try:
                value = self.templar.template(entry)
            except AnsibleUndefinedVariable:
                value = None
        return to_text(value).strip() if value not in (None, '') else None
