#!/bin/sh
# acs-bootstrap [DATA_DIR [TOKEN_FILE]]: makes a server data dir ready for its first
# start (defaults /var/lib/acs and /etc/acs/worker.token; acs-server on PATH).
# - DATA_DIR without a store: initialized; the admin token is printed, once.
# - TOKEN_FILE missing or empty: a worker token named acs-workers is made (a live one of
#   that name revoked first) and written there, readable by its owner only.
# Does nothing when both exist; exits non-zero when a step fails.
set -eu
data=${1:-/var/lib/acs}
token_file=${2:-/etc/acs/worker.token}
name=acs-workers

if [ ! -e "$data/acs.db" ]; then
  acs-server --init --data-dir "$data"
fi
if [ ! -s "$token_file" ]; then
  # NotFound when there is none to revoke; a real failure stops the next command.
  acs-server token revoke --name "$name" --data-dir "$data" >/dev/null 2>&1 || true
  umask 077
  acs-server token --name "$name" --role worker --data-dir "$data" >"$token_file.new"
  mv "$token_file.new" "$token_file"
  echo "acs-bootstrap: worker token '$name' written to $token_file"
fi
