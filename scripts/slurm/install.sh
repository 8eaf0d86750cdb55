#!/usr/bin/env bash
# Install the packages for the single-node test SLURM (Debian 12 / bookworm).
# Needs root. Safe to run again: apt-get skips what is already installed.
# The Debian packages start no daemon here (no systemd in CI); scripts/slurm/start.sh does.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
   && command -v munged >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1; then
  echo "install.sh: slurm-wlm and munge already installed"
  exit 0
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm munge
