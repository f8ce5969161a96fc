#!/usr/bin/env bash
# Installs the Debian packages acs needs to build, test and run, and the dashboard's npm packages.
# Idempotent: installs only what is missing and does nothing when all is there.
# `install-deps.sh fuzz` adds clang, for `make fuzz`.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config
  libtorch-dev
  libopenblas0-pthread libopenblas-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev libspdlog-dev nlohmann-json3-dev libssl-dev
  libcpp-httplib-dev
  libxgboost-dev
  sqlite3
  libgtest-dev libgmock-dev
  zlib1g-dev libpng-dev libjpeg62-turbo-dev
  dataset-fashion-mnist
  python3 python3-torch python3-torchvision python3-pil
  python3-grpcio python3-protobuf python3-grpc-tools
  python3-yaml
  nodejs chromium
)
# npm: Debian's nodejs leaves it to its own package; NodeSource's nodejs brings it.
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi
# kubectl, for the test of deploy/k8s: Debian's kubernetes-client unless a kubectl is
# installed already (another package's /usr/bin/kubectl would conflict with it).
if ! command -v kubectl >/dev/null 2>&1; then packages+=(kubernetes-client); fi
if [ "${1:-}" = fuzz ]; then packages+=(clang); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The dashboard's npm packages (web/, docs/dashboard.md), exactly as web/package-lock.json
# names them, when web/node_modules is missing or older than the lock file.
web="$(cd "$(dirname "$0")/.." && pwd)/web"
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  echo "install-deps: npm ci in $web"
  (cd "$web" && npm ci --no-audit --no-fund)
fi
