#!/bin/sh
# Install the Debian packages the peer tests compare against, when missing.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "peer tools missing:$missing" >&2
    echo "install them as root (apt-get install$missing); the peer tests that need them will fail" >&2
    exit 0
fi
echo "installing peer tools:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq $missing >/dev/null
