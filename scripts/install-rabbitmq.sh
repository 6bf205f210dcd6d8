#!/usr/bin/env bash
# Installs RabbitMQ from Debian's packages if it is not there yet. Idempotent.
# Debian's package does not start the broker where no init system runs (containers,
# CI); scripts/start-test-services.sh starts it.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

if command -v rabbitmq-server >/dev/null 2>&1; then
  echo "rabbitmq-server already installed: $(command -v rabbitmq-server)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "installing rabbitmq-server from Debian's packages"
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server
