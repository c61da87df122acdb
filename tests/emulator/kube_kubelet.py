"""Simulated controllers and kubelet for the Kubernetes API double.

After every committed write the double reconciles until nothing changes: Deployments own a
ReplicaSet per pod template (pod-template-hash), ReplicaSets/StatefulSets/Jobs/DaemonSets own pods,
pods are scheduled onto Node objects and become Running with an IP from a pluggable allocator,
and the workload status fields real controllers set are filled in (observedGeneration,
ready/available/updated counts, conditions).
"""
import copy
import hashlib
import ipaddress
import json
import time
import uuid

from kube_store import ApiError, now

OWNED = ('ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job')


def template_hash(template):
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def owner_ref(obj):
    return {'apiVersion': obj['apiVersion'], 'kind': obj['kind'], 'name': obj['metadata']['name'],
            'uid': obj['metadata']['uid'], 'controller': True, 'blockOwnerDeletion': True}


def owned_by(obj, owner):
    return any(r.get('uid') == owner['metadata']['uid'] for r in obj['metadata'].get('ownerReferences') or [])


def tolerates(pod_spec, taint):
    if taint.get('effect') not in ('NoSchedule', 'NoExecute'):
        return True
    for tol in pod_spec.get('tolerations') or []:
        if tol.get('effect') and tol['effect'] != taint.get('effect'):
            continue
        if tol.get('operator') == 'Exists' and (not tol.get('key') or tol['key'] == taint.get('key')):
            return True
        if tol.get('key') == taint.get('key') and tol.get('value', '') == taint.get('value', ''):
            return True
    return False


def node_fits(node, pod_spec):
    labels = node['metadata'].get('labels') or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get('nodeSelector') or {}).items()):
        return False
    return all(tolerates(pod_spec, t) for t in (node.get('spec') or {}).get('taints') or [])


def node_ip(node):
    for addr in (node.get('status') or {}).get('addresses') or []:
        if addr.get('type') == 'InternalIP':
            return addr.get('address')
    return None


class NodeCIDRAllocator:
    """Default pod IPs: 10.244.<node index>.0/24 per node, lowest free address first."""

    def __init__(self, store):
        self.store = store

    def allocate(self, pod, node):
        nodes = sorted(n['metadata']['name'] for n in self.store.objects_of('Node'))
        index = nodes.index(node['metadata']['name']) if node['metadata']['name'] in nodes else 0
        used = {p.get('status', {}).get('podIP') for p in self.store.objects_of('Pod')}
        for host in ipaddress.ip_network('10.244.%d.0/24' % index).hosts():
            if str(host) not in used and not str(host).endswith('.1'):
                return str(host)
        return None

    def release(self, pod):
        """Nothing to do: free addresses are derived from the live pods."""


class Kubelet:
    """Reconciler hooked into the store; `allocator` has allocate(pod, node) -> ip|None and release(pod)."""

    def __init__(self, store, allocator=None):
        self.store = store
        self.allocator = allocator or NodeCIDRAllocator(store)
        self._clock = 0

    def install(self):
        self.store.controllers.append(self.reconcile)

    def _res(self, api_version, kind):
        return self.store.by_kind(api_version, kind)

    def reconcile(self, store, etype, res, obj):
        if etype == 'DELETED' and res.kind == 'Pod' and obj.get('status', {}).get('podIP'):
            self.allocator.release(obj)
        for _round in range(20):
            rv = store.rv
            self._deployments()
            for kind, method in (('ReplicaSet', self._replicasets), ('StatefulSet', self._statefulsets),
                                 ('DaemonSet', self._daemonsets), ('Job', self._jobs)):
                for owner in store.objects_of(kind):
                    if not owner['metadata'].get('deletionTimestamp'):
                        method(owner)
            self._pods()
            self._statuses()
            if store.rv == rv:
                break

    # ---- writes -----------------------------------------------------------------------------------
    def _create(self, obj):
        res = self._res(obj['apiVersion'], obj['kind'])
        try:
            return self.store.create(res, obj['metadata'].get('namespace'), obj)
        except ApiError:
            return None

    def _delete(self, obj):
        res = self._res(obj['apiVersion'], obj['kind'])
        try:
            self.store.delete(res, obj['metadata'].get('namespace'), obj['metadata']['name'])
        except ApiError:
            pass

    def _set_status(self, obj, status):
        if obj.get('status') == status:
            return
        res = self._res(obj['apiVersion'], obj['kind'])
        body = copy.deepcopy(obj)
        body['status'] = status
        body['metadata'].pop('resourceVersion', None)
        try:
            self.store.update(res, obj['metadata'].get('namespace'), obj['metadata']['name'], body,
                              subresource='status', _internal=True)
        except ApiError:
            pass

    def _pods_of(self, owner):
        return [p for p in self.store.objects_of('Pod', owner['metadata']['namespace']) if owned_by(p, owner)]

    def _new_pod(self, owner, template, name, extra_labels=None, node=None):
        pod = {'apiVersion': 'v1', 'kind': 'Pod',
               'metadata': copy.deepcopy(template.get('metadata') or {}),
               'spec': copy.deepcopy(template.get('spec') or {})}
        pod['metadata'].update({'name': name, 'namespace': owner['metadata']['namespace'],
                                'ownerReferences': [owner_ref(owner)]})
        pod['metadata'].setdefault('labels', {}).update(extra_labels or {})
        if node:
            pod['spec']['nodeName'] = node
        return self._create(pod)

    # ---- controllers --------------------------------------------------------------------------------
    def _deployments(self):
        for dep in self.store.objects_of('Deployment'):
            if dep['metadata'].get('deletionTimestamp'):
                continue
            spec = dep['spec']
            digest = template_hash(spec['template'])
            rs_name = '%s-%s' % (dep['metadata']['name'], digest)
            owned = [rs for rs in self.store.objects_of('ReplicaSet', dep['metadata']['namespace'])
                     if owned_by(rs, dep)]
            template = copy.deepcopy(spec['template'])
            template.setdefault('metadata', {}).setdefault('labels', {})['pod-template-hash'] = digest
            selector = copy.deepcopy(spec['selector'])
            selector.setdefault('matchLabels', {})['pod-template-hash'] = digest
            replicas = spec.get('replicas', 1)
            current = next((rs for rs in owned if rs['metadata']['name'] == rs_name), None)
            if current is None:
                self._create({'apiVersion': 'apps/v1', 'kind': 'ReplicaSet',
                              'metadata': {'name': rs_name, 'namespace': dep['metadata']['namespace'],
                                           'labels': dict(template['metadata']['labels']),
                                           'annotations': {'deployment.kubernetes.io/revision': str(len(owned) + 1)},
                                           'ownerReferences': [owner_ref(dep)]},
                              'spec': {'replicas': replicas, 'selector': selector, 'template': template}})
            elif current['spec'].get('replicas') != replicas:
                self._scale(current, replicas)
            for old in owned:
                if old['metadata']['name'] != rs_name and old['spec'].get('replicas'):
                    self._scale(old, 0)

    def _scale(self, rs, replicas):
        body = copy.deepcopy(rs)
        body['spec']['replicas'] = replicas
        body['metadata'].pop('resourceVersion', None)
        self.store.update(self._res('apps/v1', 'ReplicaSet'), rs['metadata']['namespace'], rs['metadata']['name'],
                          body, _internal=True)

    def _replicasets(self, rs):
        pods = self._pods_of(rs)
        wanted = rs['spec'].get('replicas', 1)
        for pod in pods[wanted:]:
            self._delete(pod)
        for _index in range(wanted - len(pods)):
            self._new_pod(rs, rs['spec']['template'], '%s-%s' % (rs['metadata']['name'], uuid.uuid4().hex[:5]))

    def _statefulsets(self, sts):
        digest = template_hash(sts['spec']['template'])
        revision = '%s-%s' % (sts['metadata']['name'], digest)
        wanted = sts['spec'].get('replicas', 1)
        for pod in self._pods_of(sts):
            ordinal = int(pod['metadata']['name'].rsplit('-', 1)[-1])
            stale = (pod['metadata'].get('labels') or {}).get('controller-revision-hash') != revision
            if ordinal >= wanted or stale:
                self._delete(pod)
        names = {p['metadata']['name'] for p in self._pods_of(sts)}
        for ordinal in range(wanted):
            name = '%s-%d' % (sts['metadata']['name'], ordinal)
            if name not in names:
                self._new_pod(sts, sts['spec']['template'], name, {
                    'controller-revision-hash': revision, 'statefulset.kubernetes.io/pod-name': name,
                    'apps.kubernetes.io/pod-index': str(ordinal)})

    def _daemonsets(self, ds):
        digest = template_hash(ds['spec']['template'])
        nodes = [n for n in self.store.objects_of('Node') if node_fits(n, ds['spec']['template'].get('spec') or {})]
        node_names = {n['metadata']['name'] for n in nodes}
        have = {}
        for pod in self._pods_of(ds):
            node = pod['spec'].get('nodeName')
            if (pod['metadata'].get('labels') or {}).get('controller-revision-hash') != digest \
                    or node not in node_names or node in have:
                self._delete(pod)
            else:
                have[node] = pod
        for node in sorted(node_names - set(have)):
            self._new_pod(ds, ds['spec']['template'], '%s-%s' % (ds['metadata']['name'], uuid.uuid4().hex[:5]),
                          {'controller-revision-hash': digest, 'pod-template-generation':
                           str(ds['metadata'].get('generation', 1))}, node)

    def _jobs(self, job):
        if self._pods_of(job) or (job.get('status') or {}).get('succeeded'):
            return
        self._new_pod(job, job['spec']['template'], '%s-%s' % (job['metadata']['name'], uuid.uuid4().hex[:5]))

    # ---- scheduler + kubelet ----------------------------------------------------------------------------
    def _pods(self):
        nodes = {n['metadata']['name']: n for n in self.store.objects_of('Node')}
        load = {}
        for pod in self.store.objects_of('Pod'):
            if pod['spec'].get('nodeName'):
                load[pod['spec']['nodeName']] = load.get(pod['spec']['nodeName'], 0) + 1
        for pod in self.store.objects_of('Pod'):
            status = pod.get('status') or {}
            if status.get('phase') != 'Pending' or pod['metadata'].get('deletionTimestamp'):
                continue
            node_name = pod['spec'].get('nodeName')
            if not node_name:
                fits = sorted((load.get(n, 0), n) for n, node in nodes.items() if node_fits(node, pod['spec']))
                if not fits:
                    message = '0/%d nodes are available' % len(nodes)
                    conditions = [{'type': 'PodScheduled', 'status': 'False', 'reason': 'Unschedulable',
                                   'message': message}]
                    if status.get('conditions') != conditions:
                        self._emit(pod, 'Warning', 'FailedScheduling', message, 'default-scheduler')
                    self._set_status(pod, dict(status, conditions=conditions))
                    continue
                node_name = fits[0][1]
                load[node_name] = load.get(node_name, 0) + 1
                self._bind(pod, node_name)
                self._emit(pod, 'Normal', 'Scheduled', 'Successfully assigned %s/%s to %s' % (
                    pod['metadata']['namespace'], pod['metadata']['name'], node_name), 'default-scheduler')
                pod = self.store.get(self._res('v1', 'Pod'), pod['metadata']['namespace'], pod['metadata']['name'])
            node = nodes.get(node_name)
            if node is None:
                continue
            self._run(pod, node)

    def _bind(self, pod, node_name):
        body = copy.deepcopy(pod)
        body['spec']['nodeName'] = node_name
        body['metadata'].pop('resourceVersion', None)
        self.store.update(self._res('v1', 'Pod'), pod['metadata']['namespace'], pod['metadata']['name'], body,
                          _internal=True)

    def _run(self, pod, node):
        status = copy.deepcopy(pod.get('status') or {})
        ip = None if pod['spec'].get('hostNetwork') else self.allocator.allocate(pod, node)
        if ip is None and not pod['spec'].get('hostNetwork'):
            status['conditions'] = [{'type': 'PodScheduled', 'status': 'True'},
                                    {'type': 'Ready', 'status': 'False', 'reason': 'ContainersNotReady'}]
            message = 'failed to allocate an IP for pod %s' % pod['metadata']['name']
            if status.get('message') != message:
                self._emit(pod, 'Warning', 'FailedCreatePodSandBox', 'Failed to create pod sandbox: plugin type='
                           '"spiderpool" failed (add): %s' % message, 'kubelet')
            status['message'] = message
            self._set_status(pod, status)
            return
        host_ip = node_ip(node)
        ip = ip or host_ip
        once = (pod['spec'].get('restartPolicy') in ('Never', 'OnFailure'))
        started = now()
        status.update({'phase': 'Succeeded' if once else 'Running', 'hostIP': host_ip, 'hostIPs': [{'ip': host_ip}],
                       'podIP': ip, 'podIPs': [{'ip': ip}], 'startTime': started})
        ready = 'False' if once else 'True'
        status['conditions'] = [{'type': t, 'status': s, 'lastTransitionTime': started} for t, s in (
            ('PodReadyToStartContainers', 'True'), ('Initialized', 'True'), ('Ready', ready),
            ('ContainersReady', ready), ('PodScheduled', 'True'))]
        state = ({'terminated': {'exitCode': 0, 'reason': 'Completed', 'startedAt': started, 'finishedAt': started}}
                 if once else {'running': {'startedAt': started}})
        status['containerStatuses'] = [{'name': c['name'], 'image': c.get('image'), 'imageID': '', 'ready': not once,
                                        'started': not once, 'restartCount': 0, 'state': state}
                                       for c in pod['spec'].get('containers') or []]
        status.pop('message', None)
        self._set_status(pod, status)
        for container in pod['spec'].get('containers') or []:
            self._emit(pod, 'Normal', 'Started', 'Started container %s' % container['name'], 'kubelet')

    def _emit(self, pod, etype, reason, message, component):
        """A core/v1 Event about a pod, as the scheduler and kubelet record them."""
        stamp = now()
        # named like the real recorder: <object>.<hex nanoseconds>, so names sort by time
        self._clock = max(self._clock + 1, time.time_ns())
        self._create({'apiVersion': 'v1', 'kind': 'Event',
                      'metadata': {'name': '%s.%x' % (pod['metadata']['name'], self._clock),
                                   'namespace': pod['metadata']['namespace']},
                      'involvedObject': {'apiVersion': 'v1', 'kind': 'Pod', 'name': pod['metadata']['name'],
                                         'namespace': pod['metadata']['namespace'], 'uid': pod['metadata']['uid']},
                      'type': etype, 'reason': reason, 'message': message, 'count': 1,
                      'source': {'component': component}, 'firstTimestamp': stamp, 'lastTimestamp': stamp,
                      'reportingComponent': component})

    # ---- workload status -----------------------------------------------------------------------------
    @staticmethod
    def _counts(pods):
        ready = sum(1 for p in pods if (p.get('status') or {}).get('phase') == 'Running')
        return len(pods), ready

    def _statuses(self):
        for rs in self.store.objects_of('ReplicaSet'):
            total, ready = self._counts(self._pods_of(rs))
            self._set_status(rs, {'replicas': total, 'fullyLabeledReplicas': total, 'readyReplicas': ready,
                                  'availableReplicas': ready, 'observedGeneration': rs['metadata'].get('generation')})
        for dep in self.store.objects_of('Deployment'):
            self._deployment_status(dep)
        for sts in self.store.objects_of('StatefulSet'):
            total, ready = self._counts(self._pods_of(sts))
            revision = '%s-%s' % (sts['metadata']['name'], template_hash(sts['spec']['template']))
            self._set_status(sts, {'replicas': total, 'readyReplicas': ready, 'currentReplicas': total,
                                   'updatedReplicas': total, 'availableReplicas': ready,
                                   'currentRevision': revision, 'updateRevision': revision, 'collisionCount': 0,
                                   'observedGeneration': sts['metadata'].get('generation')})
        for ds in self.store.objects_of('DaemonSet'):
            pods = self._pods_of(ds)
            total, ready = self._counts(pods)
            pod_spec = ds['spec']['template'].get('spec') or {}
            desired = sum(1 for n in self.store.objects_of('Node') if node_fits(n, pod_spec))
            self._set_status(ds, {'desiredNumberScheduled': desired, 'currentNumberScheduled': total,
                                  'numberMisscheduled': 0, 'numberReady': ready, 'numberAvailable': ready,
                                  'updatedNumberScheduled': total,
                                  'observedGeneration': ds['metadata'].get('generation')})
        for job in self.store.objects_of('Job'):
            self._job_status(job)

    def _deployment_status(self, dep):
        digest = template_hash(dep['spec']['template'])
        owned = [rs for rs in self.store.objects_of('ReplicaSet', dep['metadata']['namespace']) if owned_by(rs, dep)]
        pods = [p for rs in owned for p in self._pods_of(rs)]
        total, ready = self._counts(pods)
        updated = sum(len(self._pods_of(rs)) for rs in owned if rs['metadata']['name'].endswith(digest))
        wanted = dep['spec'].get('replicas', 1)
        previous = {c['type']: c for c in (dep.get('status') or {}).get('conditions') or []}
        conditions = []
        for ctype, ok, reason, message in (
                ('Available', ready >= wanted, 'MinimumReplicasAvailable', 'Deployment has minimum availability.'),
                ('Progressing', updated == wanted, 'NewReplicaSetAvailable',
                 'ReplicaSet "%s-%s" has successfully progressed.' % (dep['metadata']['name'], digest))):
            status = 'True' if ok else 'False'
            old = previous.get(ctype, {})
            stamp = old.get('lastTransitionTime') if old.get('status') == status else now()
            conditions.append({'type': ctype, 'status': status, 'reason': reason if ok else 'ReplicaSetUpdated',
                               'message': message, 'lastUpdateTime': stamp, 'lastTransitionTime': stamp})
        status = {'observedGeneration': dep['metadata'].get('generation'), 'replicas': total,
                  'updatedReplicas': updated, 'readyReplicas': ready, 'availableReplicas': ready,
                  'conditions': conditions}
        if total - ready:
            status['unavailableReplicas'] = total - ready
        self._set_status(dep, status)

    def _job_status(self, job):
        pods = self._pods_of(job)
        status = copy.deepcopy(job.get('status') or {})
        succeeded = sum(1 for p in pods if (p.get('status') or {}).get('phase') == 'Succeeded')
        if succeeded and not status.get('succeeded'):
            stamp = now()
            status.update({'startTime': status.get('startTime', stamp), 'completionTime': stamp,
                           'succeeded': job['spec'].get('completions', 1), 'ready': 0, 'active': 0,
                           'terminating': 0, 'uncountedTerminatedPods': {},
                           'conditions': [{'type': 'SuccessCriteriaMet', 'status': 'True', 'reason': 'CompletionsReached',
                                           'lastProbeTime': stamp, 'lastTransitionTime': stamp},
                                          {'type': 'Complete', 'status': 'True', 'reason': 'CompletionsReached',
                                           'lastProbeTime': stamp, 'lastTransitionTime': stamp}]})
        elif not succeeded:
            status.update({'startTime': status.get('startTime', now()), 'active': len(pods), 'ready': 0})
        self._set_status(job, status)
