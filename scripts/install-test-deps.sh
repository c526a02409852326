#!/usr/bin/env bash
# Install the independent DICOM tools the tests check the engine against (Debian packages).
# Idempotent: installs only what is missing; runs `apt-get update` once, and only then.
set -euo pipefail

PACKAGES=(dcmtk dicom3tools python3-pydicom python3-numpy python3-pil orthanc orthanc-dicomweb tini)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

missing=()
for p in "${PACKAGES[@]}"; do
  if installed "$p"; then
    echo "$p: already installed"
  else
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  # `env` so that the variable survives sudo's environment reset.
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  for p in "${missing[@]}"; do
    if installed "$p"; then echo "$p: installed"; else echo "$p: FAILED to install" >&2; exit 1; fi
  done
fi
