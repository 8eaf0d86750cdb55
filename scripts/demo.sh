#!/usr/bin/env bash
# Demo: release the bundled real OpenSNP lactose cohort at a few epsilons and evaluate each.
set -euo pipefail
out=${1:-results/demo}
bin=.venv/bin
data=data/opensnp-lactose
mkdir -p "$out"
for e in 1 3 5; do
  eps=$((e * 9091))
  dir="$out/lactose-eps${e}x9091"
  "$bin/genoshare" release "$data/data.csv.gz" --reference "$data/reference.csv.gz" \
    --epsilon "$eps" --out "$dir" --overwrite
  "$bin/genoshare" evaluate --original "$data/data.csv.gz" --release "$dir" > "$dir.utility.json"
  echo "utility of $dir:"; cat "$dir.utility.json"
done
echo "demo results: $out (release directories with manifest.json, and *.utility.json)"
