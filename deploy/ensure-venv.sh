#!/usr/bin/env bash
# Usage: ensure-venv.sh PYTHON VENV
# A virtual environment with pip at VENV, made with PYTHON. On Debian, `python3 -m venv` needs the
# python3.X-venv package ("ensurepip is not available"): it is installed first when missing (as
# root; otherwise the script says what to install). A venv left without pip by an interrupted or
# failed run is made again, so a second run mends what the first one broke.
set -euo pipefail
python=$1
venv=$2

[ -x "$venv/bin/pip" ] && exit 0

if ! command -v "$python" >/dev/null; then
  echo "ensure-venv: $python is required (Debian 12: apt-get install python3.11)" >&2
  exit 1
fi

make_venv() {
  rm -rf "$venv"
  "$python" -m venv "$venv" >/dev/null 2>&1 && [ -x "$venv/bin/pip" ]
}

make_venv && exit 0

package="python$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  rm -rf "$venv"
  echo "ensure-venv: $python cannot make a virtual environment; install $package" \
       "(sudo apt-get install $package), then run make again" >&2
  exit 1
fi
echo "ensure-venv: installing $package"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
if ! make_venv; then
  echo "ensure-venv: $python -m venv still fails after installing $package" >&2
  "$python" -m venv "$venv"
  exit 1
fi
