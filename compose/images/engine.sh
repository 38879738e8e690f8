#!/bin/sh
# Install and start a container engine on a Debian machine (root): Docker Engine from Debian's
# packages and the current Docker Compose plugin, built from the Go module proxy (Debian's
# docker-compose 1.29 cannot read the project's files: top-level `name:`). Idempotent: each step
# runs only when its result is missing. `make engine` runs it; CI does too.
set -eu
COMPOSE_VERSION="${COMPOSE_VERSION:-v5.6.0}"
PLUGIN="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
need_root() { [ "$(id -u)" = 0 ] || { echo "error: $1 needs root (sudo make engine)" >&2; exit 2; }; }

if ! command -v dockerd >/dev/null; then
  need_root "installing Docker Engine"
  echo "installing Docker Engine (Debian package docker.io) and debootstrap"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io debootstrap iproute2 >/dev/null
fi
command -v debootstrap >/dev/null || { need_root "installing debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
if ! docker info >/dev/null 2>&1; then
  need_root "starting dockerd"
  # A dockerd that died (a killed session, a reboot without the service) leaves its pid file, and a
  # new one then refuses to start ("pid file found"): remove it when no process of that pid lives.
  for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
      echo "removing the stale $pidfile"
      rm -f "$pidfile"
    fi
  done
  echo "starting dockerd (log: /var/log/cdr-dockerd.log)"
  nohup dockerd > /var/log/cdr-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 20 /var/log/cdr-dockerd.log >&2; echo "error: dockerd did not start" >&2; exit 1; }
fi
if ! docker compose version >/dev/null 2>&1; then
  command -v go >/dev/null || { echo "error: Go is needed to build Docker Compose $COMPOSE_VERSION (or install the compose plugin yourself)" >&2; exit 2; }
  echo "building Docker Compose $COMPOSE_VERSION from the Go module proxy (about 2 minutes, once)"
  src="$(mktemp -d)"
  dir="$(cd "$src" && GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v5@$COMPOSE_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  cp -r "$dir/." "$src/compose"; chmod -R u+w "$src/compose"
  mkdir -p "$(dirname "$PLUGIN")"
  (cd "$src/compose" && CGO_ENABLED=0 go build -o "$PLUGIN" ./cmd)
  rm -rf "$src"
fi
echo "engine ready: $(docker version --format 'Docker Engine {{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/Compose /')"
