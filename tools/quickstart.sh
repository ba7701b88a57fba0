#!/usr/bin/env bash
# The README's first command after setup: a synthetic dataset and a small training run on
# whatever backend is available (the CPU here). Outputs land in runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/ddim-dist ]] || tools/setup.sh
mkdir -p data
if [[ ! -f data/synthetic.h5 ]]; then
    build/ddim-prep --synthetic 2000 --size 32 --output data/synthetic.h5
fi
build/ddim-dist --config configs/quickstart.yaml "$@"
echo "quickstart: look at runs/quickstart/samples/ and runs/quickstart/loss.png"
