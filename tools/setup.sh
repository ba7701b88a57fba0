#!/usr/bin/env bash
# Installs what ddim-dist needs to build and test on Debian 12 / Ubuntu (as root, or with
# sudo), then configures and builds it in ./build. The CUDA backend is built too when nvcc,
# cuDNN and NCCL are found (e.g. under /usr/local/cuda); it is skipped otherwise.
#   tools/setup.sh            install + build (Release, warnings as errors)
#   SKIP_APT=1 tools/setup.sh build only
set -euo pipefail
cd "$(dirname "$0")/.."

# libdnnl-dev: oneDNN, the CPU backend's convolutions. clang, its sanitizer and libFuzzer
# runtimes and its OpenMP: the fuzz targets' build (.ci/run, README "Sanitizers and
# fuzzing"). protobuf-c and ISA-L: TensorBoard's event files; python3-venv: the test that
# reads them with TensorBoard (pip-installed there).
# xxHash's header (the datasets' content fingerprints, header-only) and its xxh128sum (the
# test that checks them). iproute2 (ip, tc), util-linux (unshare, nsenter) and iputils-ping:
# the simulated cluster (tests/slurm/sim_nodes.sh, tools/cluster_scaling.sh).
packages=(cmake make gcc g++ pkg-config libdnnl-dev libhdf5-dev hdf5-tools libyaml-dev
          libpng-dev libjpeg-dev jq librandom123-dev libgif-dev libarchive-dev
          libopenmpi-dev openmpi-bin clang-format slurm-wlm munge libpmix-dev
          clang libclang-rt-14-dev libomp-dev
          libprotobuf-c-dev protobuf-c-compiler libisal-dev python3-venv libxxhash-dev xxhash
          iproute2 util-linux iputils-ping)
if [[ "${SKIP_APT:-0}" != 1 ]]; then
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        sudo=""
        [[ $(id -u) -ne 0 ]] && sudo=sudo
        echo "setup: installing ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

# nvcc is usually not on PATH in a non-login shell
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDDIM_WERROR=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built $(pwd)/build/ddim-dist"
