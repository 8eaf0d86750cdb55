#!/usr/bin/env bash
# Snakemake runs this once, inside the new conda environment of envs/genoshare.yaml, from the
# workflow's working directory: install genoshare from the checkout there (or from
# $GENOSHARE_SOURCE), without dependencies, which genoshare.yaml pins.
set -euo pipefail
src=${GENOSHARE_SOURCE:-.}
if [[ ! -f $src/pyproject.toml ]]; then
  echo "genoshare.post-deploy.sh: no pyproject.toml in '$src'; run Snakemake from the genoshare" \
       "checkout or set GENOSHARE_SOURCE to it" >&2
  exit 1
fi
python -m pip install --no-deps "$src"
