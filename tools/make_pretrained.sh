#!/usr/bin/env bash
# Rebuild every shipped weight file and pretrained/MANIFEST.yaml from scratch: train each
# model with its committed recipe, then export it (weights, sha256, tools/test.py metrics).
# These are the commands the shipped files were made with (one torch thread per run; the
# runs went two at a time on a 2-core machine). About 2.5 hours on 2 CPU cores, run one
# after the other; pass a subset of names to rebuild only those, e.g.
#   bash tools/make_pretrained.sh esdnet_tiny esdnet_tiny_ann
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ALL=(esdnet_tiny esdnet_tiny_ann dehazesnn_s dehazesnn_s_ann dhf_jscc_cnn dhf_jscc_snn)
NAMES=("${@:-${ALL[@]}}")

train_cmd() {  # the training command of one shipped name (quoted in the manifest)
  case "$1" in
    esdnet_tiny|esdnet_tiny_ann)
      echo "python tools/train.py --config derain/esdnet_tiny_pretrained.yaml --model $1 --exp $1 --threads 1" ;;
    dehazesnn_s|dehazesnn_s_ann)
      echo "python tools/train.py --config dehaze/dehazesnn_s_pretrained.yaml --model $1 --exp $1 --threads 1" ;;
    dhf_jscc_cnn)
      echo "python tools/train.py --config stereo_jscc/dhf_jscc_cnn_pretrained.yaml --exp pretrained --threads 1" ;;
    dhf_jscc_snn)
      echo "python tools/train.py --config stereo_jscc/dhf_jscc_snn_pretrained.yaml --exp dhf_jscc_snn --threads 1" ;;
    *) echo "unknown shipped name '$1'; known: ${ALL[*]}" >&2; return 1 ;;
  esac
}
run_dir() {
  case "$1" in
    esdnet_tiny*) echo runs/derain/$1 ;;
    dehazesnn_s*) echo runs/dehaze/$1 ;;
    dhf_jscc_cnn) echo runs/stereo_jscc/pretrained ;;
    dhf_jscc_snn) echo runs/stereo_jscc/dhf_jscc_snn ;;
  esac
}
role() {
  case "$1" in
    *_ann) echo "ANN twin" ;;
    dhf_jscc_cnn) echo "ANN baseline" ;;
    *) echo SNN ;;
  esac
}

for n in "${NAMES[@]}"; do
  cmd=$(train_cmd "$n")
  echo "== $n: $cmd"
  $PY ${cmd#python } --overwrite
  default=()
  case "$n" in esdnet_tiny|dehazesnn_s|dhf_jscc_snn) default=(--default) ;; esac
  $PY tools/export_pretrained.py --run-dir "$(run_dir "$n")" --name "$n" --role "$(role "$n")" "${default[@]}" \
      --train-command "$cmd"
done
$PY tools/export_pretrained.py --table
