#!/usr/bin/env bash
# The demo behind `make demo`: trains (or reuses) the ResNet-20-shaped zoo model on
# Fashion-MNIST, then runs inspect -> compress -> eval with two policies and prints the
# accuracy before and after and the sizes of the exported files.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
acs="$build/cli/acs"
zoo="$build/experiments/zoo/acs-zoo"
data=/usr/share/datasets/fashion-mnist
model=resnet20
zoo_dir=data/zoo
out=data/demo
mkdir -p "$zoo_dir" "$out"

step() { printf '\n=== %s\n' "$*"; }

step "model zoo: $model (trained once, then reused from $zoo_dir)"
"$zoo" train --model "$model" --out "$zoo_dir"

step "acs inspect $zoo_dir/$model.pt --input 1x1x28x28"
"$acs" inspect "$zoo_dir/$model.pt" --input 1x1x28x28

# A uniform 50% channel policy: every layer whose channel group can be pruned.
cat > "$out/channel50.json" <<'JSON'
{"version": 1, "default": {"pattern": "channel", "sparsity": 0.5}}
JSON
# 1x8 blocks at 70% sparsity on every layer but the 10-way classifier (10 is not a
# multiple of 8).
cat > "$out/block70.json" <<'JSON'
{"version": 1, "default": {"pattern": "block", "block": 8, "sparsity": 0.7},
 "layers": {"fc": {"pattern": "dense"}}}
JSON

step "dense model on the Fashion-MNIST test set"
"$acs" eval "$zoo_dir/$model.pt" --data "$data"

for policy in channel50 block70; do
  step "acs compress with $out/$policy.json (reconstruction and batch-norm recalibration on 512 training images)"
  "$acs" compress "$zoo_dir/$model.pt" --policy "$out/$policy.json" --out "$out/$model-$policy.pt" \
    --calib "$data" --split train --calib-samples 512
  step "compressed model ($policy) on the Fashion-MNIST test set"
  "$acs" eval "$out/$model-$policy.pt" --data "$data" --reference "$zoo_dir/$model.pt"
done

step "exported files"
ls -l "$zoo_dir/$model.pt" "$out/$model-channel50.pt" "$out/$model-block70.pt" | awk '{print $5, $9}'
