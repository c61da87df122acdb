"""Spiderpool as the Kubernetes API double sees it (models Spiderpool 1.2, not this collection).

- Webhooks for SpiderIPPool (mutate: finalizer, ipVersion, cidr label, merged sorted `ips`; validate:
  IPs inside the subnet, no overlap with pools of the same subnet, immutable subnet/ipVersion, no
  removal of allocated IPs) and SpiderMultusConfig (only the block of `cniType`, issue #2700).
- The controller that renders a NetworkAttachmentDefinition for every SpiderMultusConfig.
- PoolAllocator: pod IPs from the SpiderIPPool matching the pod's multus network and node, recorded
  in the pool's status like the Spiderpool IPAM does.
"""
import copy
import functools
import ipaddress
import json
import re

from kube_kubelet import NodeCIDRAllocator
from kube_store import ApiError, Resource

GROUP = 'spiderpool.spidernet.io'
FINALIZER = 'spiderpool.spidernet.io'
CIDR_LABEL = 'ipam.spidernet.io/ippool-cidr'
POOL_WEBHOOK = 'spiderippool.spiderpool.spidernet.io'
SMC_WEBHOOK = 'spidermultusconfig.spiderpool.spidernet.io'
CNI_BLOCKS = {'macvlan': 'macvlan', 'ipvlan': 'ipvlan', 'sriov': 'sriov', 'ovs': 'ovs', 'ib-sriov': 'ibsriov',
              'ipoib': 'ipoib'}
DEFAULT_NETWORK = 'v1.multus-cni.io/default-network'
NAD_SCHEMA = {'type': 'object', 'properties': {'spec': {'type': 'object', 'properties': {
    'config': {'type': 'string'}}}}}


# ---- IP helpers ---------------------------------------------------------------------------------

def expand(entries):
    """['a-b', 'c'] -> set of ip_address; raises ValueError on bad entries."""
    found = set()
    for entry in entries or []:
        if '-' in entry:
            first, last = (ipaddress.ip_address(p.strip()) for p in entry.split('-', 1))
            if last < first:
                raise ValueError(entry)
            found.update(ipaddress.ip_address(n) for n in range(int(first), int(last) + 1))
        else:
            found.add(ipaddress.ip_address(entry.strip()))
    return found


def merge_ranges(addresses):
    """Sorted merged form the webhook writes: contiguous runs as 'a-b', isolated addresses bare."""
    ordered = sorted(addresses)
    out, start, prev = [], None, None
    for addr in ordered + [None]:
        if start is not None and (addr is None or int(addr) != int(prev) + 1):
            out.append(str(start) if start == prev else '%s-%s' % (start, prev))
            start = None
        if addr is not None and start is None:
            start = addr
        prev = addr
    return out


@functools.lru_cache(maxsize=8192)
def _span(text):
    """(version, first, last) of a CIDR as integers: cheap overlap checks across many pools."""
    net = ipaddress.ip_network(text, strict=False)
    return net.version, int(net.network_address), int(net.broadcast_address)


def pool_ips(spec):
    return expand(spec.get('ips')) - expand(spec.get('excludeIPs'))


def allocated(status):
    text = (status or {}).get('allocatedIPs')
    if not text:
        return {}
    return json.loads(text) if isinstance(text, str) else text


def denied(webhook, res, name, field, reason, message):
    detail = '%s: %s: %s' % (field, reason, message)
    return ApiError(422, 'Invalid', 'admission webhook "%s" denied the request: %s' % (webhook, detail),
                    {'name': name, 'group': res.group, 'kind': res.kind,
                     'causes': [{'reason': 'FieldValue' + reason.replace(' ', ''), 'message': '%s: %s' % (
                         reason, message), 'field': field}]})


# ---- SpiderIPPool ----------------------------------------------------------------------------------

def _mutate_pool(obj):
    meta, spec = obj['metadata'], obj.setdefault('spec', {})
    if FINALIZER not in (meta.get('finalizers') or []) and not meta.get('deletionTimestamp'):
        meta.setdefault('finalizers', []).append(FINALIZER)
    try:
        net = ipaddress.ip_network(spec.get('subnet', ''), strict=False)
    except ValueError:
        return None
    spec.setdefault('ipVersion', net.version)
    meta.setdefault('labels', {})[CIDR_LABEL] = str(net).replace('.', '-').replace(':', '-').replace('/', '-')
    for key in ('ips', 'excludeIPs'):
        if len(spec.get(key) or []) > 1:
            try:
                spec[key] = merge_ranges(expand(spec[key]))
            except ValueError:
                pass
    return net


def _validate_pool(store, res, obj, old, net):  # noqa: C901 - one rule per branch, as the webhook reads
    name, spec = obj['metadata']['name'], obj['spec']
    subnet = spec.get('subnet', '')
    if net is None:
        raise denied(POOL_WEBHOOK, res, name, 'spec.subnet', 'Invalid value', '"%s": invalid CIDR' % subnet)
    if str(net) != subnet:
        raise denied(POOL_WEBHOOK, res, name, 'spec.subnet', 'Invalid value',
                     '"%s": unformatted subnet %s, please change it to %s' % (subnet, subnet, net))
    if spec.get('ipVersion') != net.version:
        raise denied(POOL_WEBHOOK, res, name, 'spec.ipVersion', 'Invalid value',
                     '%s: does not match subnet %s' % (spec.get('ipVersion'), subnet))
    if old is not None:
        if old['metadata'].get('deletionTimestamp') and old.get('spec') != spec:
            raise denied(POOL_WEBHOOK, res, name, 'metadata.deletionTimestamp', 'Forbidden',
                         'cannot update a terminating IPPool')
        for field in ('subnet', 'ipVersion'):
            if old['spec'].get(field) != spec.get(field):
                raise denied(POOL_WEBHOOK, res, name, 'spec.%s' % field, 'Forbidden', 'is not changeable')
    try:
        ips = pool_ips(spec)
        expand(spec.get('ips'))
    except ValueError:
        raise denied(POOL_WEBHOOK, res, name, 'spec.ips', 'Invalid value', '%s: invalid IP range' % spec.get('ips'))
    outside = sorted(ip for ip in expand(spec.get('ips')) if ip not in net)
    if outside:
        raise denied(POOL_WEBHOOK, res, name, 'spec.ips', 'Invalid value',
                     '"%s": IP %s does not pertain to subnet %s' % (outside[0], outside[0], subnet))
    gateway = spec.get('gateway')
    if gateway:
        gw = ipaddress.ip_address(gateway)
        if gw not in net or gw in ips:
            raise denied(POOL_WEBHOOK, res, name, 'spec.gateway', 'Invalid value',
                         '"%s": gateway must be in subnet %s and not in spec.ips' % (gateway, subnet))
    mine = _span(subnet)
    for other in store.iter_objects('SpiderIPPool'):
        theirs = _span(other['spec']['subnet'])
        if other['metadata']['name'] == name or theirs[0] != mine[0] or theirs[2] < mine[1] or mine[2] < theirs[1]:
            continue
        if theirs != mine:
            raise denied(POOL_WEBHOOK, res, name, 'spec.subnet', 'Invalid value', '"%s": overlaps with IPPool %s '
                         'subnet %s' % (subnet, other['metadata']['name'], other['spec']['subnet']))
        if theirs == mine:
            common = sorted(expand(other['spec'].get('ips')) & expand(spec.get('ips')))
            if common:
                raise denied(POOL_WEBHOOK, res, name, 'spec.ips', 'Invalid value', '%s: overlap with IPPool %s in '
                             'IP ranges %s' % (json.dumps(spec.get('ips')), other['metadata']['name'],
                                               merge_ranges(common)))
    if old is not None:
        for ip, holder in sorted(allocated(old.get('status')).items()):
            if ipaddress.ip_address(ip) not in ips:
                raise denied(POOL_WEBHOOK, res, name, 'spec.ips', 'Forbidden',
                             "remove an IP address %s that is being used by Pod %s, total IP addresses of an IPPool "
                             "are jointly determined by 'spec.ips' and 'spec.excludeIPs'" % (ip, holder.get('pod')))


def _total(obj):
    try:
        return len(pool_ips(obj.get('spec') or {}))
    except ValueError:
        return 0


# ---- SpiderMultusConfig -------------------------------------------------------------------------------

def _validate_smc(res, obj):
    name, spec = obj['metadata']['name'], obj.setdefault('spec', {})
    cni = spec.setdefault('cniType', 'custom')
    own = CNI_BLOCKS.get(cni)
    others = [key for key in CNI_BLOCKS.values() if key != own and spec.get(key)]
    if cni != 'custom' and spec.get('customCNI'):
        others.append('customCNI')
    if others:
        raise denied(SMC_WEBHOOK, res, name, 'spec.%s' % others[0], 'Forbidden', 'the cniType %s only supports %s, '
                     'please remove other CNI configs' % (cni, own or 'customCNI'))
    if cni == 'custom':
        spec['enableCoordinator'] = False
    if cni == 'ipvlan':
        block = spec.get('ipvlan') or {}
        if not block.get('master'):
            raise denied(SMC_WEBHOOK, res, name, 'spec.ipvlan.master', 'Required value', 'master is required')
        if (block.get('ippools') or {}).get('matchMasterSubnet'):
            raise denied(SMC_WEBHOOK, res, name, 'spec.ipvlan.ippools.matchMasterSubnet', 'Forbidden',
                         'matchMasterSubnet is not supported for ipvlan')
        if len(block['master']) > 1 and not block.get('bond'):
            raise denied(SMC_WEBHOOK, res, name, 'spec.ipvlan.bond', 'Required value',
                         'bond is required when more than one master is given')


def render_nad_config(smc):
    """The CNI JSON Spiderpool's multusconfig controller writes into the NAD (FACTS §6)."""
    meta, spec = smc['metadata'], smc.get('spec') or {}
    nad_name = (meta.get('annotations') or {}).get('multus.spidernet.io/cr-name') or meta['name']
    version = (meta.get('annotations') or {}).get('multus.spidernet.io/cni-version', '0.3.1')
    cni = spec.get('cniType', 'custom')
    if cni == 'custom':
        return nad_name, spec.get('customCNI') or ''
    block = spec.get(CNI_BLOCKS.get(cni, cni)) or {}
    masters = block.get('master') or []
    master = masters[0] if len(masters) == 1 else (block.get('bond') or {}).get('name', '')
    if block.get('vlanID'):
        master = '%s.%d' % (master, block['vlanID'])
    plugin = {'type': cni, 'master': master}
    if cni == 'macvlan':
        plugin['mode'] = 'bridge'
    if block.get('mtu'):
        plugin['mtu'] = block['mtu']
    if not spec.get('disableIPAM'):
        pools = block.get('ippools') or {}
        plugin['ipam'] = {'type': 'spiderpool', 'default_ipv4_ippool': pools.get('ipv4') or [],
                          'default_ipv6_ippool': pools.get('ipv6') or []}
    plugins = [plugin] + [json.loads(c) for c in spec.get('chainCNIJsonData') or []]
    if spec.get('enableCoordinator', True):
        overrides = {k: v for k, v in (spec.get('coordinator') or {}).items() if v not in (None, '', [])}
        plugins.append(dict({'type': 'coordinator'}, **overrides))
    return nad_name, json.dumps({'cniVersion': version, 'name': nad_name, 'plugins': plugins}, sort_keys=True)


def _nad_resource(store):
    try:
        return store.by_kind('k8s.cni.cncf.io/v1', 'NetworkAttachmentDefinition')
    except ApiError:
        res = Resource('k8s.cni.cncf.io', 'v1', 'network-attachment-definitions', 'NetworkAttachmentDefinition',
                       True, ['net-attach-def'], False, ['cni'], NAD_SCHEMA, 'network-attachment-definition')
        store.register(res)
        return res


def smc_controller(store, etype, res, obj):
    """Create or update the NAD of each SpiderMultusConfig (the NAD is garbage-collected with it)."""
    if res.group != GROUP or res.kind != 'SpiderMultusConfig' or etype == 'DELETED':
        return
    nad_res = _nad_resource(store)
    name, config = render_nad_config(obj)
    namespace = obj['metadata']['namespace']
    body = {'apiVersion': 'k8s.cni.cncf.io/v1', 'kind': 'NetworkAttachmentDefinition',
            'metadata': {'name': name, 'namespace': namespace,
                         'annotations': dict(obj['metadata'].get('annotations') or {}),
                         'ownerReferences': [{'apiVersion': obj['apiVersion'], 'kind': obj['kind'],
                                              'name': obj['metadata']['name'], 'uid': obj['metadata']['uid'],
                                              'controller': True, 'blockOwnerDeletion': True}]},
            'spec': {'config': config}}
    try:
        current = store.get(nad_res, namespace, name)
    except ApiError:
        store.create(nad_res, namespace, body)
        return
    body['metadata']['resourceVersion'] = current['metadata']['resourceVersion']
    store.update(nad_res, namespace, name, body, _internal=True)


# ---- hooks ---------------------------------------------------------------------------------------------

def admission(store, op, res, obj, old):
    if res.group != GROUP or op not in ('CREATE', 'UPDATE'):
        return
    if res.kind == 'SpiderIPPool':
        if old is not None and obj.get('spec') == old.get('spec') and \
                obj['metadata'].get('finalizers') != old['metadata'].get('finalizers'):
            return  # finalizer removal by the controller is not re-validated
        net = _mutate_pool(obj)
        _validate_pool(store, res, obj, old, net)
    elif res.kind == 'SpiderMultusConfig':
        _validate_smc(res, obj)


def pool_controller(store, etype, res, obj):
    """Keep a pool's status counts current; drop the finalizer once a terminating pool holds no IP."""
    if res.group == GROUP and res.kind == 'SpiderIPPool' and etype != 'DELETED':
        status = dict(obj.get('status') or {})
        counts = {'totalIPCount': _total(obj), 'allocatedIPCount': len(allocated(status))}
        if any(status.get(k) != v for k, v in counts.items()):
            body = copy.deepcopy(obj)
            body['status'] = dict(status, **counts)
            body['metadata'].pop('resourceVersion', None)
            store.update(res, None, obj['metadata']['name'], body, subresource='status', _internal=True)
    for pool in store.iter_objects('SpiderIPPool'):
        meta = pool['metadata']
        if meta.get('deletionTimestamp') and FINALIZER in (meta.get('finalizers') or []) and \
                not allocated(pool.get('status')):
            body = copy.deepcopy(pool)
            body['metadata']['finalizers'] = [f for f in meta['finalizers'] if f != FINALIZER]
            store.update(store.by_kind(pool['apiVersion'], 'SpiderIPPool'), None, meta['name'], body, _internal=True)


def _cluster_cidrs(store):
    """Pod and service CIDRs as the Spiderpool controller finds them: kube-system/kubeadm-config, else a
    kube-controller-manager pod's flags; None when neither exists (issue #3054)."""
    for cm in store.iter_objects('ConfigMap'):
        if (cm['metadata'].get('namespace'), cm['metadata']['name']) == ('kube-system', 'kubeadm-config'):
            text = (cm.get('data') or {}).get('ClusterConfiguration', '')
            pods, svcs = re.search(r'podSubnet:\s*(\S+)', text), re.search(r'serviceSubnet:\s*(\S+)', text)
            if pods and svcs:
                return pods.group(1).split(','), svcs.group(1).split(',')
    for pod in store.iter_objects('Pod'):
        if pod['metadata'].get('namespace') == 'kube-system' and \
                (pod['metadata'].get('labels') or {}).get('component') == 'kube-controller-manager':
            flags = ' '.join(a for c in pod['spec'].get('containers') or [] for a in (c.get('command') or [])
                             + (c.get('args') or []))
            pods = re.search(r'--cluster-cidr=(\S+)', flags)
            svcs = re.search(r'--service-cluster-ip-range=(\S+)', flags)
            if pods and svcs:
                return pods.group(1).split(','), svcs.group(1).split(',')
    return None


def coordinator_controller(store, _etype, _res, _obj):
    """SpiderCoordinators without a phase, or NotReady, become Synced once the cluster CIDRs are found."""
    for scc in store.iter_objects('SpiderCoordinator'):
        if (scc.get('status') or {}).get('phase') == 'Synced':
            continue
        cidrs = _cluster_cidrs(store)
        if cidrs:
            status = {'phase': 'Synced', 'overlayPodCIDR': cidrs[0], 'serviceCIDR': cidrs[1]}
        else:
            status = {'phase': 'NotReady', 'reason': 'Neither kubeadm-config ConfigMap nor kube-controller-manager '
                                                     'Pod can be found'}
        if scc.get('status') != status:
            body = copy.deepcopy(scc)
            body['status'] = status
            body['metadata'].pop('resourceVersion', None)
            store.update(store.by_kind(scc['apiVersion'], 'SpiderCoordinator'), None, scc['metadata']['name'], body,
                         subresource='status', _internal=True)


def install_webhooks(store):
    _nad_resource(store)
    store.admission.append(admission)
    store.controllers.append(smc_controller)
    store.controllers.append(pool_controller)
    store.controllers.append(coordinator_controller)


# ---- IPAM ------------------------------------------------------------------------------------------------

class PoolAllocator:
    """Pod IPs from SpiderIPPools: pods with `v1.multus-cni.io/default-network: <ns>/<nad>` (or the
    `ipam.spidernet.io/ippool` annotation) get the lowest free IP of a pool that serves that NAD and
    the pod's node; other pods fall back to `fallback` (per-node 10.244.x.0/24 by default)."""

    def __init__(self, store, fallback=None):
        self.store = store
        self.fallback = fallback or NodeCIDRAllocator(store)

    def _candidates(self, pod, node_name):
        annotations = pod['metadata'].get('annotations') or {}
        named = None
        if annotations.get('ipam.spidernet.io/ippool'):
            named = set(json.loads(annotations['ipam.spidernet.io/ippool']).get('ipv4') or [])
        network = annotations.get(DEFAULT_NETWORK)
        if network and '/' not in network:
            network = '%s/%s' % (pod['metadata']['namespace'], network)
        if named is None and network is None:
            return None
        pools = []
        for candidate in self.store.objects_of('SpiderIPPool'):
            spec = candidate.get('spec') or {}
            if candidate['metadata'].get('deletionTimestamp') or spec.get('disable') or spec.get('ipVersion') == 6:
                continue
            if named is not None and candidate['metadata']['name'] not in named:
                continue
            if spec.get('nodeName') and node_name not in spec['nodeName']:
                continue
            if network and spec.get('multusName') and not any(
                    m == network or m.split('/')[-1] == network.split('/')[-1] for m in spec['multusName']):
                continue
            pools.append(candidate)
        return pools

    def allocate(self, pod, node):
        pools = self._candidates(pod, node['metadata']['name'])
        if pools is None:
            return self.fallback.allocate(pod, node)
        for candidate in pools:
            held = allocated(candidate.get('status'))
            free = sorted(ip for ip in pool_ips(candidate['spec']) if str(ip) not in held)
            if not free:
                continue
            ip = str(free[0])
            held[ip] = {'pod': '%s/%s' % (pod['metadata']['namespace'], pod['metadata']['name']),
                        'podUid': pod['metadata']['uid']}
            self._write(candidate, held)
            return ip
        return None

    def _write(self, candidate, held):
        res = self.store.by_kind(candidate['apiVersion'], 'SpiderIPPool')
        body = copy.deepcopy(candidate)
        body['status'] = dict(body.get('status') or {}, allocatedIPs=json.dumps(held, sort_keys=True) if held else None,
                              allocatedIPCount=len(held), totalIPCount=_total(candidate))
        if not held:
            body['status'].pop('allocatedIPs')
        body['metadata'].pop('resourceVersion', None)
        self.store.update(res, None, candidate['metadata']['name'], body, subresource='status', _internal=True)

    def release(self, pod):
        uid = pod['metadata'].get('uid')
        for candidate in self.store.objects_of('SpiderIPPool'):
            held = allocated(candidate.get('status'))
            kept = {ip: h for ip, h in held.items() if h.get('podUid') != uid}
            if kept != held:
                self._write(candidate, kept)
        self.fallback.release(pod)
