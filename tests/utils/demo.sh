#!/usr/bin/env bash
# `make demo`: the whole job on the offline lab. Starts the ECS/VPC emulator on the lab world,
# runs playbooks/site.yml in render mode against the lab dynamic inventory, prints a summary
# and stops the emulator. Nothing outside this machine is contacted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${UNDERLAY_DEMO_OUT:-$ROOT/out/lab}
WORLD=inventories/lab/world.yml
LOG=$(mktemp)

.venv/bin/python tests/emulator/ecs_emulator.py --world "$WORLD" --listen 127.0.0.1:0 >"$LOG" 2>&1 &
EMU=$!
trap 'kill $EMU 2>/dev/null || true; wait $EMU 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do
  URL=$(sed -n 's/^listening on //p' "$LOG" | head -n 1)
  [ -n "$URL" ] && break
  kill -0 $EMU 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done
[ -n "${URL:-}" ] || { echo "emulator did not start"; cat "$LOG"; exit 1; }
echo "== ECS/VPC emulator on $URL (world: $WORLD)"

export ALIBABA_CLOUD_ECS_ENDPOINT=$URL ALIBABA_CLOUD_VPC_ENDPOINT=$URL
export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIlabkey ALIBABA_CLOUD_ACCESS_KEY_SECRET=labsecret
export ALIBABA_CLOUD_REGION_ID=cn-hangzhou
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy
export PATH="$ROOT/.venv/bin:$ROOT/.cache/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.collections"

ansible-playbook -i inventories/lab/lab.alicloud_ecs.yml playbooks/site.yml \
  -e underlay_mode=render -e "underlay_render_dir=$OUT" "$@"

.venv/bin/python tests/utils/demo_summary.py --inventory inventories/lab/lab.alicloud_ecs.yml --render-dir "$OUT"
