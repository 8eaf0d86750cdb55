#!/usr/bin/env bash
# Demo (`make demo`): run the Snakemake workflow locally on config/config.yaml -- the bundled
# real OpenSNP lactose cohort and a small simulated PLINK cohort, each released at a few epsilons
# (LD statistics computed once per cohort), every release evaluated, the lactose releases attacked,
# GWAS retention tables, one comparison table and the committee's privacy report (report.html).
# Usage: bash scripts/demo.sh [RESULTS_DIR]   (default results/demo, relative to the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/demo}
out=${out%/}
export PATH="$PWD/.venv/bin:$PATH"
snakemake --cores 2 --configfile config/config.yaml --config "results=$out"
cat <<MSG

demo results in $out/:
  releases            $out/releases/<name>/  (released genotypes + manifest.json)
  evaluations         $out/evaluation/<name>.json
  LD statistics       $out/ldstats/<cohort>/<panel>.npz
  logs                $out/logs/
  comparison table    $out/comparison.tsv  (Markdown: $out/comparison.md)
  attacks             $out/attacks/<name>.json, retention tables $out/retention/<name>/retention.json
  privacy report      $out/report.html  (numbers: $out/report.json; open it in a browser, works offline)

MSG
cat "$out/comparison.md"
echo
echo "privacy report: $out/report.html"
