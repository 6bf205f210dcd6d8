#!/usr/bin/env bash
# `make demo`: the demo stack (docker compose --env-file demo.env), up and healthy, and
# what you need to try it: the API's URL, the demo customer's API key and callback
# secret, a worker's token for the workbench, and how to stop it.
#
# HUMANTASK_API_PORT picks the port of this machine the API is published on (8080).
# The callback secret is made anew each time (`customers rotate-secret`): a secret is
# printed only when it is made, never read back.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

compose=(docker compose --env-file demo.env)
port="${HUMANTASK_API_PORT:-8080}"

if ! docker info >/dev/null 2>&1; then
  echo "make demo: no Docker engine answers (on a machine without one: ../shared/docker/setup.sh)" >&2
  exit 1
fi
if ! "${compose[@]}" up --build --detach --wait; then
  echo "make demo: the stack did not come up healthy; see: ${compose[*]} logs" >&2
  echo "(no image registry reachable? build the database stand-ins first: scripts/build-standin-images.sh)" >&2
  exit 1
fi

admin() { "${compose[@]}" --progress quiet run --rm -T admin "$@"; }
field() { python3 -c "import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])" "$1"; }

demo_key="$(sed -n 's/^HUMANTASK_DEMO_API_KEY=//p' demo.env)"
demo_id="$(admin customers list | python3 -c '
import json, sys
print(next(c["customer_id"] for c in map(json.loads, sys.stdin) if c["name"] == "demo"))')"
secret="$(admin customers rotate-secret "$demo_id" | field callback_secret)"
token="$(admin workers create --name "demo worker" | field token)"

cat <<TEXT

humantask's demo is up (docker compose --env-file demo.env).

  API               http://localhost:$port
  demo API key      $demo_key            (curl -u "$demo_key:" http://localhost:$port/v1/tasks)
  callback secret   $secret
                    (new at each make demo; CALLBACK_SECRET=... python3 examples/callback_receiver.py 9000,
                    then callback_url=http://host.docker.internal:9000/callback)
  workbench         http://localhost:$port/work
  worker token      $token

Stop it:            docker compose --env-file demo.env down
Stop, delete data:  docker compose --env-file demo.env down -v
TEXT
