"""Built-in resource types the double serves, and the defaults the real apiserver fills on write."""
import base64

RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']

# (group, version, plural, kind, namespaced, shortNames, has status subresource, categories)
BUILTIN = [
    ('', 'v1', 'namespaces', 'Namespace', False, ['ns'], True, []),
    ('', 'v1', 'nodes', 'Node', False, ['no'], True, []),
    ('', 'v1', 'pods', 'Pod', True, ['po'], True, ['all']),
    ('', 'v1', 'services', 'Service', True, ['svc'], True, ['all']),
    ('', 'v1', 'endpoints', 'Endpoints', True, ['ep'], False, []),
    ('', 'v1', 'configmaps', 'ConfigMap', True, ['cm'], False, []),
    ('', 'v1', 'secrets', 'Secret', True, [], False, []),
    ('', 'v1', 'serviceaccounts', 'ServiceAccount', True, ['sa'], False, []),
    ('', 'v1', 'events', 'Event', True, ['ev'], False, []),
    ('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', True, ['pvc'], True, []),
    ('apps', 'v1', 'deployments', 'Deployment', True, ['deploy'], True, ['all']),
    ('apps', 'v1', 'daemonsets', 'DaemonSet', True, ['ds'], True, ['all']),
    ('apps', 'v1', 'statefulsets', 'StatefulSet', True, ['sts'], True, ['all']),
    ('apps', 'v1', 'replicasets', 'ReplicaSet', True, ['rs'], True, ['all']),
    ('apps', 'v1', 'controllerrevisions', 'ControllerRevision', True, [], False, []),
    ('batch', 'v1', 'jobs', 'Job', True, [], True, ['all']),
    ('batch', 'v1', 'cronjobs', 'CronJob', True, ['cj'], True, ['all']),
    ('rbac.authorization.k8s.io', 'v1', 'roles', 'Role', True, [], False, []),
    ('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', True, [], False, []),
    ('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', False, [], False, []),
    ('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding', False, [], False, []),
    ('coordination.k8s.io', 'v1', 'leases', 'Lease', True, [], False, []),
    ('policy', 'v1', 'poddisruptionbudgets', 'PodDisruptionBudget', True, ['pdb'], True, []),
    ('networking.k8s.io', 'v1', 'ingresses', 'Ingress', True, ['ing'], True, []),
    ('networking.k8s.io', 'v1', 'networkpolicies', 'NetworkPolicy', True, ['netpol'], False, []),
    ('autoscaling', 'v2', 'horizontalpodautoscalers', 'HorizontalPodAutoscaler', True, ['hpa'], True, ['all']),
    ('discovery.k8s.io', 'v1', 'endpointslices', 'EndpointSlice', True, [], False, []),
    ('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', 'CustomResourceDefinition', False, ['crd', 'crds'],
     True, ['api-extensions']),
    ('admissionregistration.k8s.io', 'v1', 'mutatingwebhookconfigurations', 'MutatingWebhookConfiguration', False, [],
     False, ['api-extensions']),
    ('admissionregistration.k8s.io', 'v1', 'validatingwebhookconfigurations', 'ValidatingWebhookConfiguration', False,
     [], False, ['api-extensions']),
]

# Kinds whose metadata.generation the apiserver maintains (custom resources always have it).
GENERATION_KINDS = {'Deployment', 'DaemonSet', 'StatefulSet', 'ReplicaSet', 'Job', 'CronJob', 'CustomResourceDefinition',
                    'Ingress', 'NetworkPolicy', 'PodDisruptionBudget', 'HorizontalPodAutoscaler'}
WORKLOAD_KINDS = {'Deployment', 'DaemonSet', 'StatefulSet', 'ReplicaSet', 'Job'}


def _setdefault_path(obj, path, value):
    node = obj
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(path[-1], value)


def pod_spec_defaults(spec):
    """The PodSpec defaults SetDefaults_PodSpec/SetDefaults_Container fill."""
    spec.setdefault('restartPolicy', 'Always')
    spec.setdefault('dnsPolicy', 'ClusterFirst')
    spec.setdefault('schedulerName', 'default-scheduler')
    spec.setdefault('terminationGracePeriodSeconds', 30)
    spec.setdefault('securityContext', {})
    for container in (spec.get('containers') or []) + (spec.get('initContainers') or []):
        image = container.get('image', '')
        tagless = ':' not in image.rsplit('/', 1)[-1] and '@' not in image
        container.setdefault('imagePullPolicy', 'Always' if tagless or image.endswith(':latest') else 'IfNotPresent')
        container.setdefault('terminationMessagePath', '/dev/termination-log')
        container.setdefault('terminationMessagePolicy', 'File')
        container.setdefault('resources', {})
        for port in container.get('ports') or []:
            port.setdefault('protocol', 'TCP')


def _template_defaults(obj):
    template = obj.setdefault('spec', {}).setdefault('template', {})
    template.setdefault('metadata', {})
    pod_spec_defaults(template.setdefault('spec', {}))


def _deployment(obj):
    spec = obj.setdefault('spec', {})
    spec.setdefault('replicas', 1)
    spec.setdefault('revisionHistoryLimit', 10)
    spec.setdefault('progressDeadlineSeconds', 600)
    strategy = spec.setdefault('strategy', {'type': 'RollingUpdate'})
    if strategy.get('type', 'RollingUpdate') == 'RollingUpdate':
        strategy.setdefault('type', 'RollingUpdate')
        strategy.setdefault('rollingUpdate', {}).setdefault('maxUnavailable', '25%')
        strategy['rollingUpdate'].setdefault('maxSurge', '25%')
    _template_defaults(obj)


def _daemonset(obj):
    spec = obj.setdefault('spec', {})
    spec.setdefault('revisionHistoryLimit', 10)
    strategy = spec.setdefault('updateStrategy', {'type': 'RollingUpdate'})
    if strategy.get('type', 'RollingUpdate') == 'RollingUpdate':
        strategy.setdefault('type', 'RollingUpdate')
        strategy.setdefault('rollingUpdate', {}).setdefault('maxUnavailable', 1)
        strategy['rollingUpdate'].setdefault('maxSurge', 0)
    _template_defaults(obj)


def _statefulset(obj):
    spec = obj.setdefault('spec', {})
    spec.setdefault('replicas', 1)
    spec.setdefault('revisionHistoryLimit', 10)
    spec.setdefault('podManagementPolicy', 'OrderedReady')
    spec.setdefault('updateStrategy', {'type': 'RollingUpdate', 'rollingUpdate': {'partition': 0}})
    spec.setdefault('persistentVolumeClaimRetentionPolicy', {'whenDeleted': 'Retain', 'whenScaled': 'Retain'})
    _template_defaults(obj)


def _replicaset(obj):
    obj.setdefault('spec', {}).setdefault('replicas', 1)
    _template_defaults(obj)


def _job(obj):
    spec = obj.setdefault('spec', {})
    spec.setdefault('parallelism', 1)
    spec.setdefault('completions', 1)
    spec.setdefault('backoffLimit', 6)
    spec.setdefault('completionMode', 'NonIndexed')
    spec.setdefault('suspend', False)
    spec.setdefault('manualSelector', False)
    spec.setdefault('podReplacementPolicy', 'TerminatingOrFailed')
    uid = obj['metadata'].get('uid', '')
    labels = {'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': obj['metadata']['name'],
              'controller-uid': uid, 'job-name': obj['metadata']['name']}
    spec.setdefault('selector', {'matchLabels': {'batch.kubernetes.io/controller-uid': uid}})
    template = spec.setdefault('template', {})
    for key, value in labels.items():
        template.setdefault('metadata', {}).setdefault('labels', {}).setdefault(key, value)
    _template_defaults(obj)


def _pod(obj):
    spec = obj.setdefault('spec', {})
    pod_spec_defaults(spec)
    spec.setdefault('serviceAccountName', 'default')
    spec.setdefault('serviceAccount', spec['serviceAccountName'])
    spec.setdefault('enableServiceLinks', True)
    spec.setdefault('preemptionPolicy', 'PreemptLowerPriority')
    spec.setdefault('priority', 0)
    _setdefault_path(obj, ['status', 'phase'], 'Pending')
    obj['status'].setdefault('qosClass', 'BestEffort')


def _service(obj, allocate_ip):
    spec = obj.setdefault('spec', {})
    spec.setdefault('type', 'ClusterIP')
    spec.setdefault('sessionAffinity', 'None')
    if spec['type'] != 'ExternalName':
        spec.setdefault('internalTrafficPolicy', 'Cluster')
        if not spec.get('clusterIP'):
            spec['clusterIP'] = allocate_ip()
        spec.setdefault('clusterIPs', [spec['clusterIP']])
        spec.setdefault('ipFamilies', ['IPv4'])
        spec.setdefault('ipFamilyPolicy', 'SingleStack')
    for index, port in enumerate(spec.get('ports') or []):
        port.setdefault('protocol', 'TCP')
        port.setdefault('targetPort', port.get('port'))
        if spec['type'] in ('NodePort', 'LoadBalancer'):
            port.setdefault('nodePort', 30000 + (hash((obj['metadata']['name'], index)) % 2700))
    if spec['type'] in ('NodePort', 'LoadBalancer'):
        spec.setdefault('externalTrafficPolicy', 'Cluster')
    if spec['type'] == 'LoadBalancer':
        spec.setdefault('allocateLoadBalancerNodePorts', True)
    obj.setdefault('status', {}).setdefault('loadBalancer', {})


def _secret(obj):
    obj.setdefault('type', 'Opaque')
    string_data = obj.pop('stringData', None) or {}
    for key, value in string_data.items():
        obj.setdefault('data', {})[key] = base64.b64encode(str(value).encode()).decode()


def _namespace(obj):
    obj.setdefault('spec', {}).setdefault('finalizers', ['kubernetes'])
    obj.setdefault('status', {}).setdefault('phase', 'Active')
    obj['metadata'].setdefault('labels', {})['kubernetes.io/metadata.name'] = obj['metadata']['name']


def _crd(obj):
    spec = obj.setdefault('spec', {})
    spec.setdefault('conversion', {'strategy': 'None'})
    names = spec.setdefault('names', {})
    names.setdefault('singular', (names.get('kind') or '').lower())
    names.setdefault('listKind', '%sList' % names.get('kind', ''))
    status = obj.setdefault('status', {})
    status['acceptedNames'] = dict(names)
    status['storedVersions'] = sorted({v['name'] for v in spec.get('versions') or [] if v.get('storage')}
                                      | set(status.get('storedVersions') or []))
    conditions = {c.get('type'): c for c in status.get('conditions') or []}
    now = obj['metadata'].get('creationTimestamp')
    for ctype, reason, message in (('NamesAccepted', 'NoConflicts', 'no conflicts found'),
                                   ('Established', 'InitialNamesAccepted', 'the initial names have been accepted')):
        conditions.setdefault(ctype, {'type': ctype, 'status': 'True', 'lastTransitionTime': now,
                                      'reason': reason, 'message': message})
    status['conditions'] = [conditions[k] for k in ('NamesAccepted', 'Established')] + [
        c for k, c in conditions.items() if k not in ('NamesAccepted', 'Established')]


DEFAULTERS = {
    'Deployment': _deployment, 'DaemonSet': _daemonset, 'StatefulSet': _statefulset, 'ReplicaSet': _replicaset,
    'Job': _job, 'Pod': _pod, 'Secret': _secret, 'Namespace': _namespace, 'CustomResourceDefinition': _crd,
}


def apply_defaults(kind, obj, allocate_ip):
    """Fill the defaults kube-apiserver would; Services also get a cluster IP."""
    if kind == 'Service':
        _service(obj, allocate_ip)
    elif kind in DEFAULTERS:
        DEFAULTERS[kind](obj)


def validate(kind, obj):
    """The few built-in validations that tests rely on; returns metav1.StatusCause dicts."""
    causes = []
    spec = obj.get('spec') or {}
    if kind == 'Pod' and not spec.get('containers'):
        causes.append({'reason': 'FieldValueRequired', 'message': 'Required value', 'field': 'spec.containers'})
    if kind in WORKLOAD_KINDS - {'Job'}:
        if not (spec.get('selector') or {}).get('matchLabels') and not (spec.get('selector') or {}).get('matchExpressions'):
            causes.append({'reason': 'FieldValueRequired', 'message': 'Required value', 'field': 'spec.selector'})
        if not ((spec.get('template') or {}).get('spec') or {}).get('containers'):
            causes.append({'reason': 'FieldValueRequired', 'message': 'Required value',
                           'field': 'spec.template.spec.containers'})
        labels = ((spec.get('template') or {}).get('metadata') or {}).get('labels') or {}
        wanted = (spec.get('selector') or {}).get('matchLabels') or {}
        if any(labels.get(k) != v for k, v in wanted.items()):
            causes.append({'reason': 'FieldValueInvalid', 'field': 'spec.template.metadata.labels',
                           'message': 'Invalid value: %s: `selector` does not match template `labels`' % labels})
    if kind == 'CustomResourceDefinition':
        versions = spec.get('versions') or []
        if sum(1 for v in versions if v.get('storage')) != 1:
            causes.append({'reason': 'FieldValueInvalid', 'field': 'spec.versions',
                           'message': 'Invalid value: must have exactly one version marked as storage version'})
        names = spec.get('names') or {}
        expected = '%s.%s' % (names.get('plural'), spec.get('group'))
        if obj['metadata'].get('name') != expected:
            causes.append({'reason': 'FieldValueInvalid', 'field': 'metadata.name',
                           'message': 'Invalid value: "%s": must be spec.names.plural+"."+spec.group'
                                      % obj['metadata'].get('name')})
    return causes
