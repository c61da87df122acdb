"""Real nodes for a world file: Debian VMs under QEMU on a VPC fabric stand-in.

    vmnodes build [--force]
    vmnodes up --world FILE --dir DIR [--instance ID]... [--emulator URL] [--max-nodes N] [--disk IMAGE]
    vmnodes down --dir DIR

`build` makes, once per machine, a Debian 12 root disk (mmdebstrap: systemd, sshd, python3,
iproute2, ping, curl, busybox; containerd, runc, conntrack for Kubernetes nodes), Debian's cloud
kernel and a small initrd, under .cache/vmnodes/. `--disk` gives every VM a copy-on-write second disk
(/dev/vdb): tests/cluster/kubenode puts the kubelet and the container images there.

`up` boots one VM per selected running instance (software emulation: the host's /dev/kvm cannot
run stock kernels), with one virtio NIC per ENI in device-index order carrying the ENI's MAC, and
sshd reached through a 127.0.0.1 port of QEMU's user network (that NIC is `lab0` in the VM; the
VM reaches the host's loopback services as the host address printed in the inventory).

The fabric lives in network namespaces of this host, one set per VPC, so no world address ever
exists in the host's own namespace:
  * `<lab>-vN`  the VPC: one Linux bridge per vSwitch (the L2 segment), the router owning each
    vSwitch's gateway (broadcast - 2), and an nftables bridge filter that drops every frame whose
    source MAC / IP pair is not an ENI's (primary or assigned secondary, IPv4 and IPv6) -- the
    reason the guide uses IPvlan and not macvlan. The pairs are re-read from the emulator's live
    state every second when --emulator is given, so an address assigned by ecs_eni_ip becomes
    usable, and an unassigned one stops working.
  * `<lab>-nN`  the VPC's NAT gateway: SNAT for exactly the sources that have an SNAT entry in the
    emulator's state, to that entry's SNAT IP; without a NAT gateway the VPC has no default route.
  * `<lab>-inet` the "Internet": one host (INTERNET_ADDRESS) answering ping and HTTP on port 80.
vde_switch is not used: it would forward same-segment frames unfiltered, while the VPC filters
them too.

`down` stops every process `up` started and deletes the namespaces. Needs root (namespaces, taps).
"""

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'vm')
CACHE = os.path.join(ROOT, '.cache', 'vmnodes')
SUITE = 'bookworm'
KERNEL_META = 'linux-image-cloud-amd64'
PACKAGES = ('systemd-sysv', 'udev', 'openssh-server', 'python3', 'iproute2', 'kmod', 'iputils-ping', 'sudo',
            'curl', 'busybox', 'procps', 'iptables',
            # a Kubernetes node's (the kubelet and kube-proxy come on the --disk of tests/cluster/kubenode)
            'containerd', 'conntrack', 'ethtool', 'socat')
# Timers and units an instance does not need in a lab that lives for minutes.
MASKED_UNITS = ('apt-daily.timer', 'apt-daily-upgrade.timer', 'e2scrub_all.timer', 'fstrim.timer',
                'systemd-timesyncd.service', 'getty@tty1.service')
# Installed but not started at boot: a Kubernetes node's join starts them (less work for a plain boot).
DISABLED_UNITS = ('containerd.service',)
ROOT_DISK_SIZE = '6G'  # sparse; imported container images unpack here
INITRD_ROOTS = ('virtio_pci', 'virtio_blk')

INTERNET_ADDRESS = '198.51.100.100'
DEFAULT_MAX_NODES = 4
DEFAULT_MEMORY_MB = 512
BOOT_TIMEOUT = 300
SYNC_SECONDS = 1.0
# Address plans of the lab's own links; checked against the world's CIDRs.
LAB_NETS = ('10.0.2.0/24', '100.127.254.0/24', '169.254.250.0/24')
TRANSIT = '198.18.0.0/16'       # VPC router <-> NAT gateway, one /30 per VPC
UPLINK = '198.19.0.0/16'        # NAT gateway <-> Internet, one /30 per VPC

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454ca
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


class VmNodesError(Exception):
    """A failure with one line naming what failed; the caller stops what was started."""


def log(message):
    print('vmnodes: %s' % message, file=sys.stderr, flush=True)


def _run(argv, **kwargs):
    kwargs.setdefault('capture_output', True)
    kwargs.setdefault('text', True)
    try:
        return subprocess.run(argv, check=True, **kwargs)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or '').strip().splitlines()[-3:]
        raise VmNodesError('%s failed (rc %d): %s' % (' '.join(argv[:4]), exc.returncode, ' | '.join(tail))) from None
    except FileNotFoundError:
        raise VmNodesError('%s not found: install it (make env installs the lab tools)' % argv[0]) from None


def _require_root():
    if os.geteuid() != 0:
        raise VmNodesError('needs root: the fabric uses network namespaces and tap devices')


# --------------------------------------------------------------------------------------------
# build


def _asset_digest():
    digest = hashlib.sha256(json.dumps([SUITE, KERNEL_META, PACKAGES, MASKED_UNITS, DISABLED_UNITS, ROOT_DISK_SIZE]).encode())
    for name in sorted(os.listdir(ASSETS)):
        with open(os.path.join(ASSETS, name), 'rb') as handle:
            digest.update(name.encode() + handle.read())
    return digest.hexdigest()[:16]


def image():
    """The built image's files, or an error saying how to build them."""
    try:
        with open(os.path.join(CACHE, 'image.json'), encoding='utf-8') as handle:
            meta = json.load(handle)
    except FileNotFoundError:
        raise VmNodesError('no VM image in %s: run tests/cluster/vmnodes build' % CACHE) from None
    return dict(meta, kernel=os.path.join(CACHE, 'vmlinuz'), initrd=os.path.join(CACHE, 'initrd.img'),
                disk=os.path.join(CACHE, 'root.img'))


def _kernel_package():
    out = _run(['apt-cache', 'depends', KERNEL_META]).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith('Depends: linux-image-'):
            return line.split()[1]
    raise VmNodesError('apt-cache knows no %s (is the Debian archive in the apt sources?)' % KERNEL_META)


def _module_order(modroot, roots):
    """Dependency-first list of the modules `roots` need, from modules.dep."""
    deps = {}
    with open(os.path.join(modroot, 'modules.dep'), encoding='utf-8') as handle:
        for line in handle:
            path, rest = line.split(':', 1)
            deps[os.path.basename(path)[:-3]] = (path, [os.path.basename(p)[:-3] for p in rest.split()])
    order = []

    def visit(name):
        if name in order:
            return
        if name not in deps:
            raise VmNodesError('kernel module %s is not in %s' % (name, modroot))
        for dep in deps[name][1]:
            visit(dep)
        order.append(name)
    for name in roots:
        visit(name)
    return [(name, deps[name][0]) for name in order]


def _cpio(entries):
    """newc archive of (path, mode, data) entries; data None for directories."""
    out = bytearray()
    for ino, (path, mode, data) in enumerate(list(entries) + [('TRAILER!!!', 0, b'')], start=1):
        name = path.encode() + b'\0'
        body = data or b''
        fields = (ino, mode, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(name), 0)
        out += b'070701' + b''.join(b'%08X' % value for value in fields) + name
        out += b'\0' * (-len(out) % 4) + body
        out += b'\0' * (-len(out) % 4)
    return bytes(out)


def build(force=False):
    _require_root()
    digest = _asset_digest()
    try:
        if not force and image()['digest'] == digest:
            log('image is current (%s)' % CACHE)
            return image()
    except VmNodesError:
        pass
    for tool in ('mmdebstrap', 'mkfs.ext4', 'dpkg-deb', 'depmod', 'qemu-system-x86_64'):
        if not shutil.which(tool):
            raise VmNodesError('%s not found: install qemu-system-x86 mmdebstrap e2fsprogs kmod (make env does)' % tool)
    os.makedirs(CACHE, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        package = _kernel_package()
        log('kernel: %s' % package)
        _run(['apt-get', 'download', package], cwd=tmp)
        kroot = os.path.join(tmp, 'kernel')
        _run(['dpkg-deb', '-x', next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith('.deb')), kroot])
        version = os.listdir(os.path.join(kroot, 'lib', 'modules'))[0]
        rootfs = os.path.join(tmp, 'rootfs')
        log('root file system: mmdebstrap %s (%s)' % (SUITE, ', '.join(PACKAGES)))
        _run(['mmdebstrap', '--quiet', '--variant=minbase', '--include=' + ','.join(PACKAGES), SUITE, rootfs])
        shutil.copytree(os.path.join(kroot, 'lib', 'modules', version), os.path.join(rootfs, 'lib', 'modules', version),
                        symlinks=True)
        _run(['depmod', '-b', rootfs, version])
        _install_assets(rootfs)
        _run(['mkfs.ext4', '-q', '-F', '-L', 'underlay-root', '-d', rootfs, os.path.join(tmp, 'root.img'), ROOT_DISK_SIZE])
        modroot = os.path.join(rootfs, 'lib', 'modules', version)
        entries = [(d, 0o40755, None) for d in ('bin', 'dev', 'proc', 'sys', 'lib', 'lib/modules', 'newroot', 'vm')]
        with open('/bin/busybox', 'rb') as handle:
            entries.append(('bin/busybox', 0o100755, handle.read()))
        with open(os.path.join(ASSETS, 'init'), 'rb') as handle:
            # The interpreter line lives here: the asset is a plain file of the collection.
            entries.append(('init', 0o100755, b'#!/bin/busybox sh\n' + handle.read()))
        order = _module_order(modroot, INITRD_ROOTS)
        for name, path in order:
            with open(os.path.join(modroot, path), 'rb') as handle:
                entries.append(('lib/modules/%s.ko' % name, 0o100644, handle.read()))
        entries.append(('lib/modules/order', 0o100644, ''.join(entry[0] + '\n' for entry in order).encode()))
        with open(os.path.join(tmp, 'initrd.img'), 'wb') as handle:
            handle.write(_cpio(entries))
        shutil.copy(os.path.join(kroot, 'boot', 'vmlinuz-' + version), os.path.join(tmp, 'vmlinuz'))
        for name in ('root.img', 'initrd.img', 'vmlinuz'):
            os.replace(os.path.join(tmp, name), os.path.join(CACHE, name))
        meta = {'digest': digest, 'kernel_package': package, 'kernel_version': version, 'suite': SUITE,
                'packages': list(PACKAGES), 'build_seconds': round(time.monotonic() - started, 1)}
        with open(os.path.join(CACHE, 'image.json'), 'w', encoding='utf-8') as handle:
            json.dump(meta, handle, indent=2)
    log('image built in %.0f s (%s, kernel %s)' % (meta['build_seconds'], CACHE, version))
    return image()


def _install_assets(rootfs):
    shutil.copy(os.path.join(ASSETS, 'underlay-vm-setup'), os.path.join(rootfs, 'usr/local/sbin/underlay-vm-setup'))
    os.chmod(os.path.join(rootfs, 'usr/local/sbin/underlay-vm-setup'), 0o755)
    unit = os.path.join(rootfs, 'etc/systemd/system/underlay-vm.service')
    shutil.copy(os.path.join(ASSETS, 'underlay-vm.service'), unit)
    wants = os.path.join(rootfs, 'etc/systemd/system/multi-user.target.wants')
    os.makedirs(wants, exist_ok=True)
    os.symlink('/etc/systemd/system/underlay-vm.service', os.path.join(wants, 'underlay-vm.service'))
    for name in DISABLED_UNITS:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(wants, name))
    for name in MASKED_UNITS:
        with contextlib.suppress(FileExistsError):
            os.symlink('/dev/null', os.path.join(rootfs, 'etc/systemd/system', name))
    for name in os.listdir(os.path.join(rootfs, 'etc/ssh')):
        if name.startswith('ssh_host_'):
            os.unlink(os.path.join(rootfs, 'etc/ssh', name))
    with open(os.path.join(rootfs, 'etc/ssh/sshd_config.d/underlay-vm.conf'), 'w', encoding='utf-8') as handle:
        handle.write('HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nUseDNS no\n')
    shutil.copy(os.path.join(ASSETS, 'containerd.toml'), os.path.join(rootfs, 'etc/containerd/config.toml'))
    with open(os.path.join(rootfs, 'etc/fstab'), 'w', encoding='utf-8') as handle:
        handle.write('/dev/vda / ext4 defaults 0 1\n')


# --------------------------------------------------------------------------------------------
# the world: which VMs, which NICs, which fabric


def _load_world(path):
    try:
        with open(path, encoding='utf-8') as handle:
            world = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise VmNodesError('cannot read world file %s: %s' % (path, exc)) from None
    if not isinstance(world, dict) or not isinstance(world.get('regions'), dict):
        raise VmNodesError('world file %s has no regions mapping' % path)
    return world


def _vswitches(world):
    """vSwitch id -> dict(vswitch, vpc=VPC id, region=...)."""
    out = {}
    for region_id, region in world['regions'].items():
        for vpc in region.get('vpcs') or []:
            for vsw in vpc.get('vswitches') or []:
                out[vsw['id']] = dict(vsw, vpc=vpc['id'], region=region_id)
    return out


def _vpcs(world):
    return {vpc['id']: dict(vpc, region=region_id)
            for region_id, region in world['regions'].items() for vpc in region.get('vpcs') or []}


def _instances(world):
    return [dict(inst, region=region_id)
            for region_id, region in world['regions'].items() for inst in region.get('instances') or []]


def select_instances(world, wanted=(), max_nodes=DEFAULT_MAX_NODES):
    """The instances to boot: the ids asked for, else the running ones of the first cluster tag."""
    instances = _instances(world)
    if wanted:
        by_id = {inst['id']: inst for inst in instances}
        unknown = [i for i in wanted if i not in by_id]
        if unknown:
            known = sorted(by_id)
            raise VmNodesError('unknown instance %s: the world has %s%s' % (
                ', '.join(unknown), ', '.join(known[:10]), ' and %d more' % (len(known) - 10) if len(known) > 10 else ''))
        chosen = [by_id[i] for i in wanted]
        stopped = [i['id'] for i in chosen if i.get('status', 'Running') != 'Running']
        if stopped:
            raise VmNodesError('instance %s is not Running: only running instances boot' % ', '.join(stopped))
    else:
        running = [i for i in instances if i.get('status', 'Running') == 'Running' and i.get('enis')]
        cluster = next((i.get('tags', {}).get('cluster') for i in running if i.get('tags', {}).get('cluster')), None)
        chosen = [i for i in running if cluster is None or i.get('tags', {}).get('cluster') == cluster]
        if len(chosen) > max_nodes:
            log('%d running instances in cluster %s; booting the first %d (--max-nodes)' % (len(chosen), cluster, max_nodes))
            chosen = chosen[:max_nodes]
    if not chosen:
        raise VmNodesError('no running instance with ENIs in the world: nothing to boot')
    vpcs = {_vswitches(world)[i['enis'][0]['vswitch']]['vpc'] for i in chosen}
    if len({_vpcs(world)[v]['region'] for v in vpcs}) > 1:
        log('nodes span several regions: each VPC gets its own fabric, as in the cloud')
    return chosen


def gateway(cidr):
    """The vSwitch gateway ECS uses: the CIDR's broadcast address minus 2 (x.x.x.253 in a /24)."""
    return str(ipaddress.ip_network(cidr).broadcast_address - 2)


def fabric_plan(world):
    """Per VPC: the MAC/IP pairs the fabric lets through and the SNAT rules of its NAT gateway."""
    vsws = _vswitches(world)
    plan = {vpc_id: {'pairs4': set(), 'pairs6': set(), 'snat': [], 'nat': False} for vpc_id in _vpcs(world)}
    for inst in _instances(world):
        for eni in inst.get('enis') or []:
            vpc = plan[vsws[eni['vswitch']]['vpc']]
            mac = eni['mac'].lower()
            for addr in [eni.get('primary_ip')] + list(eni.get('secondary_ips') or []):
                if addr:
                    vpc['pairs4'].add((mac, addr))
            for addr in eni.get('ipv6_ips') or []:
                vpc['pairs6'].add((mac, addr))
    for region in world['regions'].values():
        for nat in (region.get('egress') or {}).get('nat_gateways') or []:
            vpc_id = vsws.get(nat.get('vswitch'), {}).get('vpc')
            if vpc_id not in plan:
                continue
            plan[vpc_id]['nat'] = True
            for entry in nat.get('snat_entries') or []:
                source = entry.get('source_cidr') or vsws.get(entry.get('source_vswitch'), {}).get('cidr')
                if source and entry.get('snat_ips'):
                    plan[vpc_id]['snat'].append((source, entry['snat_ips'][0]))
    for vpc in plan.values():
        vpc['snat'].sort(key=lambda rule: ipaddress.ip_network(rule[0]).prefixlen, reverse=True)
    return plan


def _lab_net(world):
    """QEMU user-network range that overlaps none of the world's CIDRs."""
    taken = []
    for vpc in _vpcs(world).values():
        for cidr in [vpc.get('cidr')] + list(vpc.get('secondary_cidrs') or []):
            if cidr:
                taken.append(ipaddress.ip_network(cidr))
    for vsw in _vswitches(world).values():
        taken.append(ipaddress.ip_network(vsw['cidr']))
    for cand in LAB_NETS:
        net = ipaddress.ip_network(cand)
        if not any(net.overlaps(t) for t in taken):
            return net
    raise VmNodesError('every lab management range (%s) overlaps the world\'s CIDRs' % ', '.join(LAB_NETS))


# --------------------------------------------------------------------------------------------
# namespaces, taps, nftables

_LIBC = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def _netns(name):
    """Enter network namespace `name` in this thread (taps are created where the caller stands)."""
    own = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    target = os.open('/run/netns/%s' % name, os.O_RDONLY)
    try:
        if _LIBC.setns(target, CLONE_NEWNET) != 0:
            raise VmNodesError('cannot enter namespace %s: %s' % (name, os.strerror(ctypes.get_errno())))
        yield
    finally:
        _LIBC.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


def _open_tap(netns, name):
    with _netns(netns):
        fd = os.open('/dev/net/tun', os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def _ns(netns, *argv, **kwargs):
    return _run(['ip', 'netns', 'exec', netns] + list(argv), **kwargs)


def _nft(netns, script):
    _ns(netns, 'nft', '-f', '-', input=script)


def _set_elements(pairs):
    return ', '.join('%s . %s' % pair for pair in sorted(pairs))


def render_filter(pairs4, pairs6):
    """The VPC's anti-spoofing filter: a frame from a tap passes only with an ENI's MAC/IP pair."""
    macs = sorted({pair[0] for pair in pairs4 | pairs6})
    lines = [
        'table bridge vpc', 'delete table bridge vpc', 'table bridge vpc {',
        '  counter dropped {}',
        '  set pairs4 { type ether_addr . ipv4_addr; %s}' % ('elements = { %s }; ' % _set_elements(pairs4) if pairs4 else ''),
        '  set pairs6 { type ether_addr . ipv6_addr; %s}' % ('elements = { %s }; ' % _set_elements(pairs6) if pairs6 else ''),
        '  set macs { type ether_addr; %s}' % ('elements = { %s }; ' % ', '.join(macs) if macs else ''),
        '  chain ingress {',
        '    type filter hook prerouting priority 0; policy accept;',
        '    iifname != "t*" accept',
        '    ether type arp arp saddr ether . arp saddr ip @pairs4 accept',
        '    ether type arp arp saddr ip 0.0.0.0 ether saddr @macs accept',
        '    ether type ip ether saddr . ip saddr @pairs4 accept',
        '    ether type ip6 ether saddr . ip6 saddr @pairs6 accept',
        '    ether type ip6 ip6 saddr { ::, fe80::/10 } ether saddr @macs accept',
        '    counter name dropped drop',
        '  }',
        '}',
    ]
    return '\n'.join(lines) + '\n'


def render_nat(snat, uplink_dev):
    lines = ['table ip natgw', 'delete table ip natgw', 'table ip natgw {',
             '  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;']
    lines += ['    oifname "%s" ip saddr %s snat to %s' % (uplink_dev, cidr, snat_ip) for cidr, snat_ip in snat]
    lines += ['  }', '  chain forward {', '    type filter hook forward priority 0; policy accept;',
              '    ct state established,related accept']
    if snat:
        lines.append('    oifname "%s" ip saddr { %s } accept' % (uplink_dev, ', '.join(sorted({rule[0] for rule in snat}))))
    # Like the VPC: no SNAT entry for the source, no way out.
    lines += ['    oifname "%s" counter drop' % uplink_dev, '  }', '}']
    return '\n'.join(lines) + '\n'


# --------------------------------------------------------------------------------------------
# up / down


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _lab_name(directory):
    return 'ul' + hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:6]


def _state_path(directory):
    return os.path.join(directory, 'vmnodes.json')


def _save_state(directory, state):
    tmp = _state_path(directory) + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as handle:
        json.dump(state, handle, indent=2)
    os.replace(tmp, _state_path(directory))


def _load_state(directory):
    with open(_state_path(directory), encoding='utf-8') as handle:
        return json.load(handle)


def _ssh_keys(directory, name=None):
    """Path of a new ed25519 key pair (the harness's client key, or a VM's host key)."""
    path = os.path.join(directory, 'ssh', 'id_ed25519' if name is None else 'host_%s' % name)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', name or 'vmnodes', '-f', path])
    return path


def _read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def _vm_initrd(base, target, files):
    shutil.copy(base, target)
    with open(target, 'ab') as handle:
        handle.write(_cpio([('vm', 0o40755, None)] + [('vm/' + k, 0o100600, v) for k, v in files.items()]))


def fetch_state(url):
    with urllib.request.urlopen(url.rstrip('/') + '/_emulator/state', timeout=5) as resp:
        return json.load(resp)


class Lab:
    """The namespaces and processes of one `up`, recorded in DIR/vmnodes.json for `down`."""

    def __init__(self, directory, state):
        self.dir = directory
        self.state = state

    def record(self):
        _save_state(self.dir, self.state)

    def add_ns(self, name):
        _run(['ip', 'netns', 'add', name])
        self.state['netns'].append(name)
        self.record()
        _ns(name, 'ip', 'link', 'set', 'lo', 'up')
        return name

    def spawn(self, name, argv, log_name, **kwargs):
        handle = open(os.path.join(self.dir, log_name), 'ab')  # pylint: disable=consider-using-with
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kwargs)
        handle.close()
        self.state['pids'][name] = proc.pid
        self.record()
        return proc

    def build_fabric(self, world):
        name = self.state['lab']
        vsws = _vswitches(world)
        used = {}
        for vm in self.state['vms']:
            for nic in vm['nics']:
                used.setdefault(nic['vpc'], set()).add(nic['vswitch'])
        inet = self.add_ns('%s-inet' % name)
        _ns(inet, 'ip', 'addr', 'add', INTERNET_ADDRESS + '/32', 'dev', 'lo')
        self.spawn('internet-http', ['ip', 'netns', 'exec', inet, sys.executable, '-m', 'http.server', '80',
                                     '--bind', INTERNET_ADDRESS, '--directory', os.path.join(self.dir, 'internet')],
                   'internet-http.log')
        transit, uplink = list(ipaddress.ip_network(TRANSIT).subnets(new_prefix=30)), \
            list(ipaddress.ip_network(UPLINK).subnets(new_prefix=30))
        for index, vpc_id in enumerate(sorted(used)):
            fab, nat = self.add_ns('%s-v%d' % (name, index)), self.add_ns('%s-n%d' % (name, index))
            self.state['fabrics'][vpc_id] = {'router': fab, 'nat': nat, 'bridges': {}}
            for ns in (fab, nat):
                _ns(ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0',
                    'net.ipv4.conf.default.rp_filter=0', 'net.ipv6.conf.all.forwarding=1')
            for bidx, vsw_id in enumerate(sorted(used[vpc_id])):
                bridge = 'br%d' % bidx
                cidr = ipaddress.ip_network(vsws[vsw_id]['cidr'])
                _ns(fab, 'ip', 'link', 'add', bridge, 'type', 'bridge')
                _ns(fab, 'ip', 'addr', 'add', '%s/%d' % (gateway(cidr), cidr.prefixlen), 'dev', bridge)
                if vsws[vsw_id].get('ipv6_cidr'):
                    # With forwarding on, the router also answers the subnet-router anycast address
                    # (the prefix's first address), the gateway the IPv6 pools name.
                    net6 = ipaddress.ip_network(vsws[vsw_id]['ipv6_cidr'])
                    _ns(fab, 'ip', '-6', 'addr', 'add', '%s/%d' % (net6.broadcast_address - 2, net6.prefixlen),
                        'dev', bridge, 'nodad')
                _ns(fab, 'ip', 'link', 'set', bridge, 'up')
                self.state['fabrics'][vpc_id]['bridges'][vsw_id] = bridge
            # router <-> NAT gateway, NAT gateway <-> Internet
            t_hosts, u_hosts = list(transit[index].hosts()), list(uplink[index].hosts())
            _run(['ip', 'link', 'add', 'x%s' % fab, 'netns', fab, 'type', 'veth', 'peer', 'name', 'x%s' % nat, 'netns', nat])
            _ns(fab, 'ip', 'link', 'set', 'x%s' % fab, 'name', 'nat0')
            _ns(nat, 'ip', 'link', 'set', 'x%s' % nat, 'name', 'vpc0')
            _run(['ip', 'link', 'add', 'u%s' % nat, 'netns', nat, 'type', 'veth', 'peer', 'name', 'u%s' % fab, 'netns', inet])
            _ns(nat, 'ip', 'link', 'set', 'u%s' % nat, 'name', 'inet0')
            _ns(inet, 'ip', 'link', 'set', 'u%s' % fab, 'name', 'nat%d' % index)
            for ns, dev, addr in ((fab, 'nat0', t_hosts[0]), (nat, 'vpc0', t_hosts[1]), (nat, 'inet0', u_hosts[0]),
                                  (inet, 'nat%d' % index, u_hosts[1])):
                _ns(ns, 'ip', 'addr', 'add', '%s/30' % addr, 'dev', dev)
                _ns(ns, 'ip', 'link', 'set', dev, 'up')
            vpc = _vpcs(world)[vpc_id]
            for cidr in [vpc.get('cidr')] + list(vpc.get('secondary_cidrs') or []):
                if cidr:
                    _ns(nat, 'ip', 'route', 'add', cidr, 'via', str(t_hosts[0]))
            _ns(nat, 'ip', 'route', 'add', 'default', 'via', str(u_hosts[1]))
            self.state['fabrics'][vpc_id].update(transit=str(t_hosts[1]), natgw_uplink=str(u_hosts[0]))
        self.record()

    def apply_plan(self, world, previous=None):
        """Push the MAC/IP pairs and SNAT rules of `world` (a world file or the live state)."""
        plan = fabric_plan(world)
        summary = {}
        for vpc_id, fabric in self.state['fabrics'].items():
            vpc = plan.get(vpc_id) or {'pairs4': set(), 'pairs6': set(), 'snat': [], 'nat': False}
            key = json.dumps([sorted(vpc['pairs4']), sorted(vpc['pairs6']), vpc['snat'], vpc['nat']])
            summary[vpc_id] = key
            if previous and previous.get(vpc_id) == key:
                continue
            _nft(fabric['router'], render_filter(vpc['pairs4'], vpc['pairs6']))
            # The VPC has a way out only through a NAT gateway (its route entry 0.0.0.0/0).
            has_default = 'default' in _ns(fabric['router'], 'ip', 'route', 'show', 'default').stdout
            if vpc['nat'] and not has_default:
                _ns(fabric['router'], 'ip', 'route', 'add', 'default', 'via', fabric['transit'])
            elif not vpc['nat'] and has_default:
                _ns(fabric['router'], 'ip', 'route', 'del', 'default')
            _nft(fabric['nat'], render_nat(vpc['snat'], 'inet0'))
            inet = '%s-inet' % self.state['lab']
            for snat_ip in sorted({rule[1] for rule in vpc['snat']}):
                _ns(inet, 'ip', 'route', 'replace', '%s/32' % snat_ip, 'via', fabric['natgw_uplink'])
            log('fabric %s: %d IPv4 and %d IPv6 MAC/IP pairs, %d SNAT entries%s'
                % (vpc_id, len(vpc['pairs4']), len(vpc['pairs6']), len(vpc['snat']), '' if vpc['nat'] else ', no NAT gateway'))
        return summary

    def boot(self, vm, meta, key):
        vmdir = os.path.join(self.dir, vm['name'])
        os.makedirs(vmdir, exist_ok=True)
        host_key = _ssh_keys(self.dir, vm['name'])
        nics = ''.join('%s %s/%d %s %s\n' % (n['mac'], n['ip'], n['prefix'], n['gateway'] if n['index'] == 0 else '-',
                                             n['ipv6_cidr'] or '-') for n in vm['nics'])
        files = {'hostname': vm['hostname'].encode(), 'authorized_keys': _read(key + '.pub'),
                 'ssh_host_ed25519_key': _read(host_key), 'ssh_host_ed25519_key.pub': _read(host_key + '.pub'),
                 'nics': nics.encode(), 'lab': ('%s %s %s\n' % (vm['lab_mac'], vm['lab_addr'], self.state['host'])).encode()}
        initrd = os.path.join(vmdir, 'initrd.img')
        _vm_initrd(meta['initrd'], initrd, files)
        fds = []
        argv = ['qemu-system-x86_64', '-name', vm['name'], '-accel', 'tcg,tb-size=64', '-cpu', 'max', '-smp', '1',
                '-m', str(self.state['memory_mb']), '-nodefaults', '-display', 'none', '-no-reboot',
                '-kernel', meta['kernel'], '-initrd', initrd,
                '-append', 'console=ttyS0 root=/dev/vda net.ifnames=0 biosdevname=0 panic=-1 quiet',
                '-drive', 'file=%s,if=none,id=root,format=raw,snapshot=on' % meta['disk'],
                '-device', 'virtio-blk-pci,drive=root,addr=0x2',
                *(['-drive', 'file=%s,if=none,id=extra,format=raw,snapshot=on' % self.state['disk'],
                   '-device', 'virtio-blk-pci,drive=extra,addr=0x1e'] if self.state.get('disk') else []),
                '-serial', 'file:%s' % os.path.join(vmdir, 'console.log')]
        for nic in vm['nics']:
            fabric = self.state['fabrics'][nic['vpc']]
            tap = nic['tap']
            fd = _open_tap(fabric['router'], tap)
            fds.append(fd)
            _ns(fabric['router'], 'ip', 'link', 'set', tap, 'master', fabric['bridges'][nic['vswitch']], 'up')
            argv += ['-netdev', 'tap,id=e%d,fd=%d' % (nic['index'], fd),
                     '-device', 'virtio-net-pci,netdev=e%d,mac=%s,addr=0x%x' % (nic['index'], nic['mac'], 3 + nic['index'])]
        # Each VM has its own user network, so all of them use the same guest address.
        argv += ['-netdev', 'user,id=lab,net=%s,host=%s,hostfwd=tcp:127.0.0.1:%d-%s:22'
                 % (self.state['lab_net'], self.state['host'], vm['ssh_port'], vm['lab_addr'].split('/')[0]),
                 '-device', 'virtio-net-pci,netdev=lab,mac=%s,addr=0x1f' % vm['lab_mac']]
        try:
            self.spawn('qemu-%s' % vm['name'], argv, os.path.join(vm['name'], 'qemu.log'), pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)


def _vm_records(world, chosen, lab_net, taken_ports):
    vsws = _vswitches(world)
    hosts = list(lab_net.hosts())
    vms = []
    for number, inst in enumerate(chosen):
        nics = []
        for index, eni in enumerate(inst['enis']):
            missing = [key for key in ('mac', 'primary_ip', 'vswitch') if not eni.get(key)]
            if missing or not inst.get('id'):
                raise VmNodesError('instance %s: ENI %d has no %s in the world file (generated values exist only in the '
                                   'emulator: give --emulator URL)' % (inst.get('id') or inst.get('name'), index,
                                                                       ', '.join(missing or ['instance id'])))
            vsw = vsws.get(eni['vswitch'])
            if vsw is None:
                raise VmNodesError('instance %s: ENI %s is in unknown vSwitch %s' % (inst['id'], eni.get('id'), eni['vswitch']))
            cidr = ipaddress.ip_network(vsw['cidr'])
            nics.append({'index': index, 'eni': eni.get('id'), 'mac': eni['mac'].lower(), 'ip': eni['primary_ip'],
                         'prefix': cidr.prefixlen, 'gateway': gateway(cidr), 'vswitch': vsw['id'], 'vpc': vsw['vpc'],
                         'tap': 't%dn%d' % (number, index), 'ipv6_cidr': vsw.get('ipv6_cidr')})
        port = _free_port()
        while port in taken_ports:
            port = _free_port()
        taken_ports.add(port)
        vms.append({'name': inst.get('hostname') or inst['id'], 'hostname': inst.get('hostname') or inst['id'],
                    'instance': inst['id'], 'ssh_port': port, 'nics': nics,
                    'lab_mac': '52:54:00:ff:%02x:%02x' % (number // 256, number % 256),
                    'lab_addr': '%s/%d' % (hosts[14], lab_net.prefixlen)})
    return vms


def ssh_argv(directory, vm, command):
    """ssh as root into VM of the lab in DIRECTORY, host key checked, running COMMAND."""
    return ['ssh', '-i', os.path.join(directory, 'ssh', 'id_ed25519'), '-p', str(vm['ssh_port']),
            '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10',
            '-o', 'UserKnownHostsFile=%s' % os.path.join(directory, 'ssh', 'known_hosts'),
            '-o', 'StrictHostKeyChecking=yes', 'root@127.0.0.1', command]


def _wait_ssh(vm, directory, deadline):
    """Wait until sshd answers a real login; one line naming the VM and the step on failure."""
    console = os.path.join(directory, vm['name'], 'console.log')
    argv = ssh_argv(directory, vm, 'true')
    while time.time() < deadline:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        time.sleep(1)
    raise VmNodesError('VM %s (%s): step ssh: no login on 127.0.0.1:%d before the deadline; serial console log: %s'
                       % (vm['name'], vm['instance'], vm['ssh_port'], console))


def _write_inventory(directory, vms, key):
    known = os.path.join(directory, 'ssh', 'known_hosts')
    hosts = {}
    for vm in vms:
        hosts[vm['name']] = {
            'ansible_host': '127.0.0.1', 'ansible_port': vm['ssh_port'], 'ansible_user': 'root',
            'ansible_ssh_private_key_file': key, 'ansible_python_interpreter': '/usr/bin/python3',
            'ansible_ssh_common_args': '-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes' % known,
        }
    path = os.path.join(directory, 'inventory.yml')
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write('# VM nodes of `vmnodes up`: use next to the dynamic inventory (give it last).\n')
        yaml.safe_dump({'all': {'hosts': hosts}}, handle, sort_keys=False)
    return path


def up(world_file, directory, instances=(), emulator=None, max_nodes=DEFAULT_MAX_NODES, memory_mb=DEFAULT_MEMORY_MB,
       timeout=BOOT_TIMEOUT, disk=None):
    _require_root()
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    if os.path.exists(_state_path(directory)):
        raise VmNodesError('%s already holds a lab: run vmnodes down --dir %s first' % (directory, directory))
    world = _load_world(world_file)
    if emulator:
        try:
            world = fetch_state(emulator)
        except OSError as exc:
            raise VmNodesError('emulator %s does not answer: %s' % (emulator, exc)) from None
    chosen = select_instances(world, instances, max_nodes)
    # Bad input is named before a missing image: both are one line, the input is the user's to fix first.
    meta = image()
    lab_net = _lab_net(world)
    timings = {}
    started = time.monotonic()
    vms = _vm_records(world, chosen, lab_net, set())
    state = {'lab': _lab_name(directory), 'netns': [], 'pids': {}, 'fabrics': {}, 'vms': vms, 'emulator': emulator,
             'lab_net': str(lab_net), 'host': str(list(lab_net.hosts())[1]), 'memory_mb': memory_mb,
             'internet': INTERNET_ADDRESS, 'timings': timings, 'disk': disk and os.path.abspath(disk)}
    lab = Lab(directory, state)
    lab.record()
    try:
        os.makedirs(os.path.join(directory, 'internet'), exist_ok=True)
        with open(os.path.join(directory, 'internet', 'index.html'), 'w', encoding='utf-8') as handle:
            handle.write('internet host of the lab\n')
        lab.build_fabric(world)
        lab.apply_plan(world)
        if emulator:
            lab.spawn('fabric-sync', [sys.executable, os.path.abspath(__file__), '_sync', '--dir', directory],
                      'fabric-sync.log')
        timings['fabric_s'] = round(time.monotonic() - started, 2)
        key = _ssh_keys(directory)
        with open(os.path.join(directory, 'ssh', 'known_hosts'), 'w', encoding='utf-8') as handle:
            for vm in vms:
                pub = _read(_ssh_keys(directory, vm['name']) + '.pub').decode().split()
                handle.write('[127.0.0.1]:%d %s %s\n' % (vm['ssh_port'], pub[0], pub[1]))
        for vm in vms:
            lab.boot(vm, meta, key)
        deadline = time.time() + timeout
        for vm in vms:
            _wait_ssh(vm, directory, deadline)
            timings['ssh_%s_s' % vm['name']] = round(time.monotonic() - started, 2)
        timings['up_s'] = round(time.monotonic() - started, 2)
        lab.record()
        return _write_inventory(directory, vms, key)
    except BaseException:
        down(directory)
        raise


def _kill(pid):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for _attempt in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def down(directory):
    directory = os.path.abspath(directory)
    try:
        state = _load_state(directory)
    except FileNotFoundError:
        return False
    for pid in state['pids'].values():
        _kill(pid)
    for name in reversed(state['netns']):
        subprocess.run(['ip', 'netns', 'del', name], capture_output=True, check=False)
    os.replace(_state_path(directory), _state_path(directory) + '.down')
    return True


def _sync(directory):
    """Follow the emulator's live state: the fabric lets through what the cloud has assigned now."""
    state = _load_state(directory)
    lab = Lab(directory, state)
    previous = None
    while True:
        try:
            previous = lab.apply_plan(fetch_state(state['emulator']), previous)
        except (OSError, ValueError, VmNodesError) as exc:
            log('sync: %s' % exc)
        time.sleep(SYNC_SECONDS)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='vmnodes', description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p_build = sub.add_parser('build', help='build the VM image into .cache/vmnodes')
    p_build.add_argument('--force', action='store_true')
    p_up = sub.add_parser('up', help='boot the VM nodes of a world file')
    p_up.add_argument('--world', required=True)
    p_up.add_argument('--dir', required=True)
    p_up.add_argument('--instance', action='append', default=[], metavar='ID')
    p_up.add_argument('--emulator', metavar='URL', help='follow this emulator\'s live state (MAC/IP pairs, SNAT)')
    p_up.add_argument('--max-nodes', type=int, default=DEFAULT_MAX_NODES)
    p_up.add_argument('--memory', type=int, default=DEFAULT_MEMORY_MB, metavar='MB')
    p_up.add_argument('--timeout', type=int, default=BOOT_TIMEOUT, metavar='S')
    p_up.add_argument('--disk', metavar='IMAGE',
                      help='a raw disk image every VM gets as /dev/vdb (its writes stay private to the VM)')
    p_down = sub.add_parser('down', help='stop everything `up` started')
    p_down.add_argument('--dir', required=True)
    p_sync = sub.add_parser('_sync')
    p_sync.add_argument('--dir', required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == 'build':
            build(args.force)
        elif args.command == 'up':
            path = up(args.world, args.dir, args.instance, args.emulator, args.max_nodes, args.memory, args.timeout,
                      args.disk)
            print('inventory %s' % path)
        elif args.command == 'down':
            down(args.dir)
        else:
            _sync(args.dir)
    except VmNodesError as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
