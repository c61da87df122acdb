"""`make e2e`: the guide end to end on real kernels.

Two tiers (E2E_TIER):

kubelet (default): the whole guide on a cluster of real upstream components
  emulator  the ECS/VPC emulator on E2E_WORLD
  cluster   the real control plane (tests/cluster/realkube up --kubelets): no Node, no stand-in
  nodes     the VM nodes and the VPC fabric (tests/cluster/vmnodes), following the emulator's state,
            each joined by tests/cluster/kubenode: containerd, kubelet and kube-proxy, the Node named
            like the ECS hostname with the primary ENI address as InternalIP, images built here
  control   the macvlan negative control on the first node (the fabric must drop a new MAC)
  site      playbooks/site.yml, unmodified, every stage but ccm, with the dynamic inventory of the
            world next to the VMs' SSH inventory: preflight, enis, cni (ipvlan_cni over SSH), spiderpool
            (the real chart: agent, multus and controller pods on the VMs), networks, egress, verify
            (real DaemonSets, real kubectl exec, ping/HTTP across nodes and subnets, the ClusterIP,
            pod -> node, egress to the lab's Internet host)
  rerun     the same run without verify (a probe, not state): it must change nothing
  ccm       the ccm stage alone: providerIDs set; without Alibaba's image and SLB API its pod cannot
            run, and the role must say so (pod, node, reason) within its wait timeout
  report    E2E_OUT/report.json, and the verify stage's report.md / report.html / report.json

cni: the faster tier without kubelets: kwok Nodes, the stages up to egress, then pods wired by the
  real CNI chain from the generated NetworkAttachmentDefinitions (tests/cluster/cnipod.py, the real
  agent started by tests/cluster/spideragent.py) and underlay_verify's probe script in them.

Environment: E2E_TIER, E2E_WORLD (default inventories/lab/world.yml), E2E_OUT (default out/e2e),
E2E_KEEP=1 leaves the lab running (stop it with tests/cluster/vmnodes down / realkube down on
E2E_OUT/lab), E2E_WAIT (seconds the chart and verification pods may take).
Exit status 0 only when every required check passed.
"""

import contextlib
import functools
import http.server
import ipaddress
import json
import os
import shlex
import subprocess
import sys
import threading
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'cluster'))
sys.path.insert(0, os.path.join(ROOT, '.collections'))  # ansible_collections.underlay.alicloud (make env links it)

import images  # noqa: E402  pylint: disable=wrong-import-position
import kubenode  # noqa: E402  pylint: disable=wrong-import-position
import realkube  # noqa: E402  pylint: disable=wrong-import-position
import spideragent  # noqa: E402  pylint: disable=wrong-import-position
import vmnodes  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.underlay.alicloud.plugins.module_utils import verify  # noqa: E402  pylint: disable=wrong-import-position

VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
SITE = os.path.join(ROOT, 'playbooks', 'site.yml')
CNIPOD = os.path.join(ROOT, 'tests', 'cluster', 'cnipod.py')
POD_NAMESPACE = 'underlay-e2e'
NODE_DIR = '/opt/underlay-e2e'
KUBELET_MEMORY_MB = 1024  # kubelet, containerd, kube-proxy, the agent and multus beside the pods
CREDENTIALS = {'ALIBABA_CLOUD_ACCESS_KEY_ID': 'LTAIlabkey', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET': 'labsecret'}


class E2EError(Exception):
    """A phase failed; the message names it."""


class Phases:
    def __init__(self):
        self.timings = {}
        self.started = time.monotonic()

    @contextlib.contextmanager
    def phase(self, name):
        print('== e2e: %s' % name, flush=True)
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - start, 1)
            print('== e2e: %s took %.1f s' % (name, self.timings[name]), flush=True)


def start_emulator(world, log_path):
    handle = open(log_path, 'w', encoding='utf-8')  # pylint: disable=consider-using-with
    proc = subprocess.Popen([os.path.join(VENV_BIN, 'python'), os.path.join(ROOT, 'tests', 'emulator', 'ecs_emulator.py'),
                             '--world', world, '--listen', '127.0.0.1:0'], stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    for _attempt in range(200):
        with open(log_path, encoding='utf-8') as read:
            for line in read:
                if line.startswith('listening on '):
                    return proc, line.split()[-1]
        if proc.poll() is not None:
            raise E2EError('emulator: exited %s; log %s' % (proc.returncode, log_path))
        time.sleep(0.05)
    raise E2EError('emulator: no "listening on" line; log %s' % log_path)


class FileServer(threading.Thread):
    """The lab's file server (the VMs reach it through the host address of their user network)."""

    def __init__(self, directory):
        super().__init__(daemon=True)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.port = self.httpd.server_address[1]

    def run(self):
        self.httpd.serve_forever()


def cluster_inventory(world, chosen, path):
    """The dynamic inventory for the world's cluster: the lab's, pointed at the world's regions and tag."""
    cluster = (chosen[0].get('tags') or {}).get('cluster')
    config = {'plugin': 'underlay.alicloud.ecs', 'regions': sorted(world['regions']),
              'filters': {'Status': 'Running'}, 'hostnames': ['hostname', 'instance_id'], 'strict': True,
              'groups': {'kube_control_plane': "alicloud_tags.role | default('') == 'master'",
                         'kube_node': "alicloud_tags.role | default('') != 'master'",
                         'k8s_cluster': 'true'}}
    if cluster:
        config['filters']['Tag'] = [{'Key': 'cluster', 'Value': cluster}]
    # Only the booted instances: the others have no node to run the node stage on.
    config['filters']['InstanceIds'] = json.dumps([inst['id'] for inst in chosen])
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path


def run_site(env, inventories, variables, log_path, skip_tags, tags=None):
    argv = [os.path.join(VENV_BIN, 'ansible-playbook')]
    for inventory in inventories:
        argv += ['-i', inventory]
    argv += ['-e', '@' + variables, SITE]
    argv += ['--skip-tags', skip_tags] if skip_tags else []
    argv += ['--tags', tags] if tags else []
    with open(log_path, 'w', encoding='utf-8') as handle:
        proc = subprocess.run(argv, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, check=False)
    with open(log_path, encoding='utf-8') as handle:
        output = handle.read()
    recap = {}
    if 'PLAY RECAP' in output:
        for line in output.split('PLAY RECAP', 1)[1].splitlines()[1:]:
            if ':' in line and 'ok=' in line:
                host, counts = line.split(':', 1)
                recap[host.strip()] = {k: int(v) for k, v in (item.split('=') for item in counts.split())}
    return proc.returncode, recap


class Node:
    """A VM node of the lab in DIRECTORY, over SSH."""

    def __init__(self, directory, vm):
        self.name = vm['name']
        self.ssh = lambda command: vmnodes.ssh_argv(directory, vm, command)

    def run(self, command, stdin=None, check=True, timeout=300):
        proc = subprocess.run(self.ssh(command), input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise E2EError('node %s: `%s` failed (rc %d): %s' % (self.name, command[:80], proc.returncode,
                                                                 (proc.stderr or proc.stdout).strip()[-400:]))
        return proc

    def put_dir(self, local, remote):
        tar = subprocess.run(['tar', '-C', local, '-czf', '-', '.'], capture_output=True, check=True).stdout
        proc = subprocess.run(self.ssh('mkdir -p %s && tar -C %s -xzf -' % (remote, remote)), input=tar,
                              capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise E2EError('node %s: copying %s failed: %s' % (self.name, local, proc.stderr.decode()[-300:]))


def wire_pods(api, kubeconfig, server, nodes, work):
    """One pod per node x NAD of the underlay networks, wired by the real CNI chain; Pod-shaped dicts back."""
    # The networks that have pools (a chart placeholder without pools, e.g. eth0 when the primary ENIs
    # carry no secondary addresses, is no underlay network).
    nics = verify.nics_from_pools(api.items('/apis/spiderpool.spidernet.io/v2beta1/spiderippools'))
    nads = [n for n in api.items('/apis/k8s.cni.cncf.io/v1/namespaces/kube-system/network-attachment-definitions')
            if n['metadata']['name'] in ['ipvlan-' + nic for nic in nics]]
    if not nads:
        raise E2EError('pods: no NetworkAttachmentDefinition for the pools\' networks (%s)' % (', '.join(nics) or 'no pools'))
    api.request('POST', '/api/v1/namespaces', {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': POD_NAMESPACE}})
    pods = []
    for node in nodes:
        agent = spideragent.bundle(kubeconfig, node.name, server, os.path.join(work, 'agent-' + node.name))
        node.put_dir(agent, NODE_DIR + '/agent')
        node.run('%s/agent/run-agent.sh start' % NODE_DIR)
        node.run('cat >%s/cnipod.py' % NODE_DIR, stdin=_read(CNIPOD))
        for nad in nads:
            nic = nad['metadata']['name'][len('ipvlan-'):]
            name = 'e2e-%s-%s' % (node.name, nic)
            network = 'kube-system/' + nad['metadata']['name']
            code, pod = api.request('POST', '/api/v1/namespaces/%s/pods' % POD_NAMESPACE, {
                'apiVersion': 'v1', 'kind': 'Pod',
                'metadata': {'name': name, 'labels': {'app.kubernetes.io/name': 'underlay-e2e', 'underlay.alicloud/nic': nic},
                             'annotations': {'v1.multus-cni.io/default-network': network}},
                'spec': {'nodeName': node.name, 'containers': [{'name': 'probe', 'image': 'registry.invalid/probe:1'}]}})
            if code != 201:
                raise E2EError('pods: creating Pod %s failed (HTTP %s): %s' % (name, code, (pod or {}).get('message')))
            node.run('cat >%s/%s.json' % (NODE_DIR, nic), stdin=nad['spec']['config'])
            added = node.run('python3 %s/cnipod.py add --namespace %s --name %s --uid %s --netns %s --config %s/%s.json'
                             % (NODE_DIR, POD_NAMESPACE, name, pod['metadata']['uid'], name, NODE_DIR, nic), check=False)
            result = json.loads(added.stdout) if added.returncode == 0 and added.stdout.strip() else {}
            ips = [entry['address'].split('/')[0] for entry in result.get('ips') or []]
            pods.append({'metadata': {'name': name, 'namespace': POD_NAMESPACE, 'labels': {'underlay.alicloud/nic': nic},
                                      'annotations': {'v1.multus-cni.io/default-network': network}},
                         'spec': {'nodeName': node.name},
                         'status': {'phase': 'Running' if ips else 'Failed', 'podIPs': [{'ip': ip} for ip in ips],
                                    'message': '' if ips else (added.stderr or added.stdout).strip()[-300:]}})
            print('   pod %s on %s: %s' % (name, network, ', '.join(ips) or 'CNI ADD failed: ' + pods[-1]['status']['message']),
                  flush=True)
    return pods


def run_probes(plan, nodes):
    """Each source pod's probe script (underlay_verify's own) inside its network namespace, in parallel."""
    by_node = {node.name: node for node in nodes}
    results = {}

    def probe(src):
        proc = by_node[src['node']].run('ip netns exec %s sh -s' % shlex.quote(src['name']), stdin=src['script'],
                                        check=False, timeout=180)
        results[src['name']] = {'stdout': proc.stdout} if proc.returncode == 0 else {'error': proc.stderr.strip()[-300:]}
    threads = [threading.Thread(target=probe, args=(src,)) for src in plan['sources'] if src['probes']]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def macvlan_control(node, lab, world):
    """The negative control: a macvlan pod (new MAC) on a free address of the node's first ENI; the VPC
    (the fabric's filter) must drop it. Returns a check dict."""
    vm = next(v for v in lab['vms'] if v['name'] == node.name)
    nic = vm['nics'][0]
    used = set()
    for inst in vmnodes._instances(world):  # pylint: disable=protected-access
        for eni in inst.get('enis') or []:
            used.update([eni.get('primary_ip')] + list(eni.get('secondary_ips') or []))
    cidr = ipaddress.ip_network('%s/%d' % (nic['ip'], nic['prefix']), strict=False)
    address = next(str(a) for a in reversed(list(cidr.hosts())[:-3]) if str(a) not in used)
    fabric = lab['fabrics'][nic['vpc']]['router']
    before = _dropped(fabric)
    # Set up first (a failure there is no evidence), then the probe alone decides.
    node.run('ip netns add mvctl && ip link add mvctl0 link eth0 type macvlan mode bridge && ip link set mvctl0 netns mvctl && '
             'ip -n mvctl addr add %s/%d dev mvctl0 && ip -n mvctl link set mvctl0 up' % (address, nic['prefix']))
    proc = node.run('ip netns exec mvctl ping -c 2 -w 4 -W 2 %s' % nic['gateway'], check=False, timeout=60)
    node.run('ip netns del mvctl')
    dropped = _dropped(fabric) - before
    ok = proc.returncode != 0 and dropped > 0
    return {'check': 'macvlan-control', 'required': True, 'ok': ok,
            'detail': 'macvlan pod %s (new MAC) on %s: ping of the gateway %s %s; the VPC filter dropped %d frame(s)'
                      % (address, node.name, nic['gateway'], 'failed as expected' if proc.returncode else 'SUCCEEDED', dropped)}


def _dropped(fabric_netns):
    out = subprocess.run(['ip', 'netns', 'exec', fabric_netns, 'nft', '-j', 'list', 'counter', 'bridge', 'vpc', 'dropped'],
                         capture_output=True, text=True, check=True).stdout
    for item in json.loads(out)['nftables']:
        if 'counter' in item:
            return item['counter']['packets']
    return 0


def _read(path):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


def _site_vars(path, lab_host, files, tarball, tar_sha, extra=None):
    values = {
        'ipvlan_cni_plugins_url': 'http://%s:%d/%s' % (lab_host, files.port, os.path.basename(tarball)),
        'ipvlan_cni_plugins_checksum': tar_sha,
        'spiderpool_chart_source': 'local', 'spiderpool_chart_path': realkube.chart_path(),
        'spiderpool_wait_timeout': int(os.environ.get('E2E_WAIT', '600')), 'spiderpool_coordinator_retries': 120,
        'spiderpool_coordinator_delay': 2,
        # Every ENI of an IPv6 vSwitch gets IPv6 addresses: a dual-stack network needs both families
        # on every node (the lab's worker2 starts without), and the fabric follows the assignment.
        'alicloud_enis_ipv6_per_eni': 2,
        'alicloud_egress_enabled': True,
    }
    values.update(extra or {})
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(values, handle)
    return path


def _rerun(phases, report, env, inventories, variables, out, skip):
    with phases.phase('rerun'):
        rc, recap = run_site(env, inventories, variables, os.path.join(out, 'site-rerun.log'), skip)
        report['rerun'] = {'rc': rc, 'recap': recap}
        changed = {h: c.get('changed') for h, c in recap.items() if c.get('changed')}
        report['checks'].append({'check': 'idempotence', 'required': True, 'ok': rc == 0 and not changed,
                                 'detail': 'second site.yml run (--skip-tags %s): rc %d, changed %s'
                                           % (skip, rc, changed or 0)})


def _site(phases, report, env, inventories, variables, out, skip):
    with phases.phase('site'):
        rc, recap = run_site(env, inventories, variables, os.path.join(out, 'site.log'), skip)
        report['site'] = {'rc': rc, 'recap': recap}
        if rc != 0:
            raise E2EError('site.yml failed (rc %d): see %s' % (rc, os.path.join(out, 'site.log')))


def ccm_check(env, inventories, variables, out, api, nodes):
    """The ccm stage alone: it must set every providerID, and fail naming the pod and why it cannot run."""
    rc = run_site(env, inventories, variables, os.path.join(out, 'site-ccm.log'), None, tags='ccm')[0]
    output = _read(os.path.join(out, 'site-ccm.log'))
    provider_ids = {n['metadata']['name']: n['spec'].get('providerID') for n in api.items('/api/v1/nodes')}
    missing = sorted(name for name in nodes if not provider_ids.get(name))
    reasons = [line.strip() for line in output.splitlines() if 'cannot run' in line]
    ok = rc != 0 and not missing and bool(reasons)
    return {'check': 'ccm', 'required': True, 'ok': ok,
            'detail': 'providerIDs on %d/%d nodes; the role %s' % (
                len(nodes) - len(missing), len(nodes),
                'stopped with: ' + reasons[0][:300] if reasons else 'did not name why its pod cannot run (rc %d)' % rc)}


def _lab_nodes(directory, lab):
    return [Node(directory, vm) for vm in lab['vms']]


def kubelet_tier(phases, report, ctx):
    """The whole guide: kubelets on the VMs, every stage of site.yml, verification by the role."""
    out, lab_dir, world, chosen, url = ctx['out'], ctx['lab_dir'], ctx['world'], ctx['chosen'], ctx['url']
    with phases.phase('cluster'):
        kubeconfig = realkube.up(os.path.join(lab_dir, 'cluster'), api_sans=[ctx['lab_host']], kubelets=True)
        server = _server(kubeconfig)
        api = realkube.Api(server, os.path.join(lab_dir, 'cluster', 'pki'), 'admin')
    with phases.phase('nodes'):
        disk = kubenode.disk()
        vm_inventory = vmnodes.up(ctx['world_file'], os.path.join(lab_dir, 'nodes'), [i['id'] for i in chosen],
                                  emulator=url, memory_mb=KUBELET_MEMORY_MB, disk=disk)
        masters = [inst.get('hostname') or inst['id'] for inst in chosen if (inst.get('tags') or {}).get('role') == 'master']
        report['join'] = kubenode.join(os.path.join(lab_dir, 'nodes'), os.path.join(lab_dir, 'cluster'),
                                       control_plane=masters)
    lab = vmnodes._load_state(os.path.join(lab_dir, 'nodes'))  # pylint: disable=protected-access
    with phases.phase('control'):
        # Before any pod: an ipvlan master cannot also carry a macvlan.
        report['checks'].append(macvlan_control(_lab_nodes(os.path.join(lab_dir, 'nodes'), lab)[0], lab, world))
    env, inventories = ctx['env'](kubeconfig), [ctx['inventory'], vm_inventory]
    report_dir = os.path.join(out, 'verify')
    variables = _site_vars(os.path.join(out, 'vars.yml'), *ctx['files'], extra={
        # No ovs/rdma/sriov/ipoib/vlan plugins on these nodes (nor in their images): the guide needs ipvlan.
        'spiderpool_values': {
            'plugins': {key: False for key in ('installRdmaCNI', 'installOvsCNI', 'installSriovCNI', 'installibSriovCNI',
                                               'installIpoibCNI', 'installVlanCNI')},
            # Software emulation runs the Go daemons ~50x slower and their probes time out after 1 s:
            # more failures before the kubelet restarts them (values the chart offers for this).
            **{component: {'healthChecking': {'startupProbe': {'failureThreshold': 300},
                                              'livenessProbe': {'failureThreshold': 60}}}
               for component in ('spiderpoolAgent', 'spiderpoolController')}},
        'underlay_verify_image': images.TEST_IMAGE,
        'underlay_verify_egress_url': 'http://%s/' % lab['internet'],
        'underlay_verify_report_dir': report_dir,
        'underlay_verify_wait_timeout': int(os.environ.get('E2E_WAIT', '600')),
        'underlay_verify_exec_timeout': 300,
        'underlay_verify_required_checks': ['pool', 'node', 'pod', 'ipv6', 'service', 'egress'],
        'alicloud_ccm_wait_timeout': 60,
        'alicloud_ccm_cluster_cidr': realkube.POD_CIDR,
    })
    _site(phases, report, env, inventories, variables, out, 'ccm')
    with open(os.path.join(report_dir, 'report.json'), encoding='utf-8') as handle:
        verification = json.load(handle)
    report['verification'] = verification
    report['checks'].append({'check': 'connectivity', 'required': True, 'ok': verification['result'] == 'pass',
                             'detail': '; '.join(verify.summary_lines(verification))})
    _rerun(phases, report, env, inventories, variables, out, 'ccm,verify')
    with phases.phase('ccm'):
        report['checks'].append(ccm_check(env, inventories, variables, out, api, [vm['hostname'] for vm in lab['vms']]))


def cni_tier(phases, report, ctx):
    """Without kubelets: kwok Nodes, pods wired by the CNI chain by hand, the role's probe script in them."""
    out, lab_dir, world, chosen, url = ctx['out'], ctx['lab_dir'], ctx['world'], ctx['chosen'], ctx['url']
    with phases.phase('cluster'):
        kubeconfig = realkube.up(os.path.join(lab_dir, 'cluster'), api_sans=[ctx['lab_host']])
        server = _server(kubeconfig)
        api = realkube.Api(server, os.path.join(lab_dir, 'cluster', 'pki'), 'admin')
        for inst in chosen:
            realkube.add_node(api, inst.get('hostname') or inst['id'],
                              control_plane=(inst.get('tags') or {}).get('role') == 'master',
                              internal_ip=inst['enis'][0]['primary_ip'])
    with phases.phase('nodes'):
        vm_inventory = vmnodes.up(ctx['world_file'], os.path.join(lab_dir, 'nodes'), [i['id'] for i in chosen], emulator=url)
    env, inventories = ctx['env'](kubeconfig), [ctx['inventory'], vm_inventory]
    variables = _site_vars(os.path.join(out, 'vars.yml'), *ctx['files'])
    _site(phases, report, env, inventories, variables, out, 'ccm,verify')
    _rerun(phases, report, env, inventories, variables, out, 'ccm,verify')
    lab = vmnodes._load_state(os.path.join(lab_dir, 'nodes'))  # pylint: disable=protected-access
    nodes = _lab_nodes(os.path.join(lab_dir, 'nodes'), lab)
    with phases.phase('pods'):
        # Before the pods: an ipvlan master cannot also carry a macvlan.
        report['checks'].append(macvlan_control(nodes[0], lab, world))
        node_server = 'https://%s:%s' % (ctx['lab_host'], server.rsplit(':', 1)[1])
        pods = wire_pods(api, kubeconfig, node_server, nodes, os.path.join(out, 'work'))
    with phases.phase('probes'):
        plan = verify.build_plan(pods, api.items('/api/v1/nodes'), [], {
            'flavor': 'netshoot', 'egress_url': 'http://%s/' % lab['internet'], 'ipv6': True})
        executed = run_probes(plan, nodes)
        pools = api.items('/apis/spiderpool.spidernet.io/v2beta1/spiderippools')
        verification = verify.build_report(plan, executed, pools, options={
            'required': ['pool', 'node', 'pod', 'ipv6', 'egress'], 'title': 'Underlay connectivity (make e2e)',
            'generated': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())})
        report['verification'] = verification
        report['checks'].append({'check': 'connectivity', 'required': True, 'ok': verification['result'] == 'pass',
                                 'detail': '; '.join(verify.summary_lines(verification))})
        for name, text in (('report.md', verify.render_markdown(verification)), ('report.html', verify.render_html(verification))):
            with open(os.path.join(out, name), 'w', encoding='utf-8') as handle:
                handle.write(text)


def _server(kubeconfig):
    with open(kubeconfig, encoding='utf-8') as handle:
        return yaml.safe_load(handle)['clusters'][0]['cluster']['server']


def main():
    tier = os.environ.get('E2E_TIER') or 'kubelet'
    if tier not in ('kubelet', 'cni'):
        print('e2e: bad E2E_TIER %r: expected kubelet or cni' % tier, file=sys.stderr)
        return 2
    world_file = os.path.abspath(os.environ.get('E2E_WORLD') or os.path.join(ROOT, 'inventories', 'lab', 'world.yml'))
    out = os.path.abspath(os.environ.get('E2E_OUT') or os.path.join(ROOT, 'out', 'e2e'))
    lab_dir = os.path.join(out, 'lab')
    os.makedirs(out, exist_ok=True)
    phases = Phases()
    report = {'world': world_file, 'tier': tier, 'phases': phases.timings, 'checks': [], 'ok': False}
    emulator = None
    try:
        with phases.phase('emulator'):
            emulator, url = start_emulator(world_file, os.path.join(out, 'emulator.log'))
        # The emulator's state: a world file may leave ids, MACs and addresses to be generated.
        world = vmnodes.fetch_state(url)
        chosen = vmnodes.select_instances(world)
        lab_host = str(list(vmnodes._lab_net(world).hosts())[1])  # pylint: disable=protected-access
        tarball, tar_sha = realkube.cni_tarball()
        files = FileServer(os.path.dirname(tarball))
        files.start()

        def site_env(kubeconfig):
            env = dict(os.environ, ALIBABA_CLOUD_ECS_ENDPOINT=url, ALIBABA_CLOUD_VPC_ENDPOINT=url,
                       ALIBABA_CLOUD_REGION_ID=sorted(world['regions'])[0], K8S_AUTH_KUBECONFIG=kubeconfig,
                       ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
                       ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.collections'),
                       PATH=os.pathsep.join([VENV_BIN, os.path.join(ROOT, '.cache', 'bin'), os.environ.get('PATH', '')]),
                       **CREDENTIALS)
            for proxy in ('HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'):
                env.pop(proxy, None)
            return env
        ctx = {'out': out, 'lab_dir': lab_dir, 'world': world, 'world_file': world_file, 'chosen': chosen, 'url': url,
               'lab_host': lab_host, 'files': (lab_host, files, tarball, tar_sha), 'env': site_env,
               'inventory': cluster_inventory(world, chosen, os.path.join(out, 'cluster.alicloud_ecs.yml'))}
        (kubelet_tier if tier == 'kubelet' else cni_tier)(phases, report, ctx)
        report['ok'] = all(c['ok'] for c in report['checks'] if c['required'])
    except (E2EError, vmnodes.VmNodesError, realkube.RealKubeError, kubenode.KubeNodeError, OSError) as exc:
        report['error'] = str(exc)
        print('e2e: %s' % exc, file=sys.stderr)
    finally:
        report['phases']['total'] = round(time.monotonic() - phases.started, 1)
        with open(os.path.join(out, 'report.json'), 'w', encoding='utf-8') as handle:
            json.dump(report, handle, indent=2)
        if os.environ.get('E2E_KEEP') != '1':
            vmnodes.down(os.path.join(lab_dir, 'nodes'))
            realkube.down(os.path.join(lab_dir, 'cluster'))
            if emulator:
                emulator.terminate()
                emulator.wait()
    for check in report['checks']:
        print('e2e: %-18s %s  %s' % (check['check'], 'ok' if check['ok'] else 'FAILED', check['detail'][:200]))
    print('e2e: report %s (%s)' % (os.path.join(out, 'report.json'), 'ok' if report['ok'] else 'FAILED'))
    return 0 if report['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
