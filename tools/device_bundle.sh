#!/usr/bin/env bash
# device_bundle.sh: run HERE (Debian 12, x86-64, with tools/setup.sh's packages). Makes
# .bundle/: what the lent GPU machine (docs/gpu.md) lacks to build and run ddim-dist,
# ddim-prep and the tests with one rank (CPU and CUDA backends): the headers and shared
# libraries of HDF5 (serial), libyaml, libpng, libjpeg, oneDNN (the CPU convolutions),
# xxHash's and Random123's headers, and the shared-library closure of all of them (ldd), glibc's own libraries and
# CUDA's (the GPU machine has those) left out.
#
#   tools/device_bundle.sh          # -> .bundle/payload.tar.xz + .bundle/env.sh (~10 MiB)
#
# .bundle/ travels to the GPU machine as a carried folder (run's carry: [".bundle"]); there
#   source .bundle/env.sh           # unpacks the payload once, sets the paths
#   tools/device_build.sh           # configure, build, test (DDIM_CUDA=ON, DDIM_MPI=OFF)
#
# The payload is xz-compressed because a call carries 64 MiB at most, the working tree and
# the 32 MiB flowers folder included; unpacked it is ~55 MiB (oneDNN alone 38 MiB), and it
# is unpacked OUTSIDE the tree (/tmp/ddim-bundle-<checksum>, or DDIM_BUNDLE_ROOT) so that it
# never travels. Inside the payload:
#   include/         the headers (HDF5's flattened from hdf5/serial/, Random123/)
#   lib/             the libraries ddim-dist links against, each under its soname plus the
#                    unversioned link name that CMake looks for (libhdf5.so, libyaml.so, ...)
#   lib-fallback/    the rest of the closure (libgfortran, libgomp, libcurl, libz, ...):
#                    env.sh uses one of these only where the GPU machine has no library of
#                    that soname, so that its own (newer) copies win
# Options (environment): DDIM_BUNDLE_BUILD=DIR takes the binaries for the ldd closure from a
# build made with -DDDIM_MPI=OFF -DDDIM_CUDA=OFF instead of building one in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=$repo/.bundle
max_mib=40

die() {
    echo "device_bundle: $*" >&2
    exit 1
}
[[ $(uname -m) == x86_64 ]] || die "the GPU machine is x86-64: run this on an x86-64 machine"
ma=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for p in libhdf5-dev libyaml-dev libpng-dev libjpeg-dev libgif-dev libdnnl-dev \
    librandom123-dev libxxhash-dev zlib1g-dev binutils xz-utils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        die "package $p is not installed (tools/setup.sh installs what the build needs)"
done

stage=$(mktemp -d /tmp/ddim-bundle-stage.XXXXXX)
tmpbuild=""
cleanup() {
    rm -rf "$stage"
    [[ -n "$tmpbuild" ]] && rm -rf "$tmpbuild"
    return 0
}
trap cleanup EXIT
mkdir -p "$stage/include" "$stage/lib" "$stage/lib-fallback"

# --- headers ------------------------------------------------------------------------------
cp -L /usr/include/hdf5/serial/*.h "$stage/include/"
cp -L /usr/include/yaml.h "$stage/include/"
cp -L /usr/include/libpng16/png.h /usr/include/libpng16/pngconf.h \
    /usr/include/libpng16/pnglibconf.h "$stage/include/"
cp -L /usr/include/jpeglib.h /usr/include/jmorecfg.h /usr/include/jerror.h \
    /usr/include/jpegint.h "/usr/include/$ma/jconfig.h" "$stage/include/"
mkdir -p "$stage/include/oneapi/dnnl"
cp -L /usr/include/oneapi/dnnl/*.h "$stage/include/oneapi/dnnl/"
cp -L /usr/include/zlib.h /usr/include/zconf.h "$stage/include/"
cp -L /usr/include/gif_lib.h "$stage/include/"
cp -L /usr/include/xxhash.h "$stage/include/" # header-only (XXH_INLINE_ALL): no library
cp -rL /usr/include/Random123 "$stage/include/"

# --- the libraries ddim-dist links against ------------------------------------------------
soname() { objdump -p "$1" | awk '$1 == "SONAME" { print $2 }'; }
# add_lib DEV_LINK [LINK_NAME...]: the library that DEV_LINK resolves to, under its soname,
# and LINK_NAME (default: DEV_LINK's own name) pointing at it
add_lib() {
    local dev=$1 real name
    shift
    real=$(readlink -f "$dev")
    [[ -f "$real" ]] || die "$dev not found"
    name=$(soname "$real")
    [[ -n "$name" ]] || die "$real has no soname"
    cp "$real" "$stage/lib/$name"
    (($# == 0)) && set -- "$(basename "$dev")"
    for link in "$@"; do
        [[ "$link" == "$name" ]] || ln -sf "$name" "$stage/lib/$link"
    done
}
add_lib "/usr/lib/$ma/hdf5/serial/libhdf5.so" libhdf5.so
add_lib "/usr/lib/$ma/libyaml.so"
add_lib "/usr/lib/$ma/libpng16.so" libpng16.so libpng.so
add_lib "/usr/lib/$ma/libjpeg.so"
add_lib "/usr/lib/$ma/libgif.so"
# libarchive is left out: its closure (libxml2, ICU's data, ...) would double the payload,
# and the GPU machine prepares data from folders; ddim-prep is built there without it
# oneDNN (Debian's: OpenMP runtime; its OpenCL loader, libOpenCL.so.1, goes with the closure)
add_lib "/usr/lib/$ma/libdnnl.so"
# HDF5's compression filters (libaec's szip): not on a stock GPU image either
add_lib "/usr/lib/$ma/libsz.so.2" libsz.so.2
add_lib "/usr/lib/$ma/libaec.so.0" libaec.so.0

# --- the closure --------------------------------------------------------------------------
# The binaries: ddim-dist and ddim-prep built here without MPI (the GPU machine has none).
bins=()
if [[ -n "${DDIM_BUNDLE_BUILD:-}" ]]; then
    bins=("$DDIM_BUNDLE_BUILD/ddim-dist" "$DDIM_BUNDLE_BUILD/ddim-prep")
else
    tmpbuild=$(mktemp -d /tmp/ddim-bundle-build.XXXXXX)
    echo "device_bundle: building ddim-dist and ddim-prep (-DDDIM_MPI=OFF -DDDIM_CUDA=OFF) for ldd"
    cmake -S "$repo" -B "$tmpbuild" -DDDIM_MPI=OFF -DDDIM_CUDA=OFF \
        -DCMAKE_DISABLE_FIND_PACKAGE_LibArchive=ON >/dev/null
    cmake --build "$tmpbuild" -j"$(nproc)" --target ddim-dist ddim-prep >/dev/null
    bins=("$tmpbuild/ddim-dist" "$tmpbuild/ddim-prep")
fi
for b in "${bins[@]}"; do
    [[ -x "$b" ]] || die "$b not found"
    if ldd "$b" | grep -q 'libmpi'; then
        die "$b links MPI: give a build made with -DDDIM_MPI=OFF"
    fi
done

# glibc's own libraries, the kernel's vDSO, and CUDA's (cuDNN, NCCL, cuBLAS, ...): never
# bundled, the GPU machine has them and they must match its kernel, driver and toolkit
skip_re='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libanl\.so|libmvec\.so|libBrokenLocale\.so|libnss_|libcuda|libcudart|libcublas|libcudnn|libnccl|libnvidia|libnvrtc|libnvJitLink|libcufft|libcurand|libcusparse|libcusolver)'
missing=$(for f in "${bins[@]}" "$stage"/lib/*.so.*; do ldd "$f"; done | awk '/not found/ { print $1 }' | sort -u)
[[ -z "$missing" ]] || die "unresolved here: $missing"
for f in "${bins[@]}" "$stage"/lib/*.so.*; do
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
    [[ "$name" =~ $skip_re ]] && continue
    [[ -e "$stage/lib/$name" ]] && continue
    cp "$(readlink -f "$path")" "$stage/lib-fallback/$name"
done

# the newest glibc symbol version anything in the payload needs (the GPU machine's glibc
# must be at least that: env.sh checks)
glibc_needed=$(for f in "${bins[@]}" "$stage"/lib/*.so.* "$stage"/lib-fallback/*; do
    objdump -T "$f" 2>/dev/null
done | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
{
    echo "# made by tools/device_bundle.sh on $(date -u +%Y-%m-%dT%H:%MZ) from $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "glibc_needed $glibc_needed"
    for p in libhdf5-103-1 libyaml-0-2 libpng16-16 libjpeg62-turbo libgif7 libdnnl2 \
        libaec0 librandom123-dev; do
        dpkg-query -W -f='package ${Package} ${Version}\n' "$p" 2>/dev/null || true
    done
    (cd "$stage" && find lib lib-fallback -maxdepth 1 \( -type f -o -type l \) | sort | sed 's/^/file /')
} >"$stage/MANIFEST"

# --- pack -----------------------------------------------------------------------------------
rm -rf "$out"
mkdir -p "$out"
echo "device_bundle: compressing (xz, a minute) ..."
tar -C "$stage" -cf - --owner=0 --group=0 --sort=name . | xz -T0 -9 >"$out/payload.tar.xz"
cp "$stage/MANIFEST" "$out/MANIFEST"
cat >"$out/env.sh" <<'ENV'
# .bundle/env.sh: source (bash) on the GPU machine before building or running ddim-dist with
# the libraries of tools/device_bundle.sh (docs/gpu.md). Unpacks payload.tar.xz once into
# DDIM_BUNDLE_ROOT (default /tmp/ddim-bundle-<checksum>, outside the working tree) and sets
# LD_LIBRARY_PATH, CMAKE_PREFIX_PATH, HDF5_ROOT, DNNL_ROOT, and CUDNN_ROOT /
# NCCL_ROOT from NVIDIA's pip packages in the Python environment (nvidia-cudnn-cu13,
# nvidia-nccl-cu13) unless already set. CPATH is left alone: CMake passes the bundle's
# include/ itself, as a system directory; through CPATH it would be an ordinary one (CMake
# then drops its -isystem) and Random123's pragmas would warn. For a compile by hand use
# -I"$DDIM_BUNDLE_ROOT/include". DDIM_BUNDLE_FALLBACK=all uses every library of
# lib-fallback/, not only those the machine lacks (for tests).
_ddim_bundle_env() {
    local here payload sum root libs d n
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    payload=$here/payload.tar.xz
    if [[ ! -f "$payload" ]]; then
        echo "bundle: $payload missing: run tools/device_bundle.sh (here), carry .bundle" >&2
        return 1
    fi
    sum=$(cksum <"$payload" | cut -d' ' -f1)
    root=${DDIM_BUNDLE_ROOT:-/tmp/ddim-bundle-$sum}
    if [[ ! -f "$root/.complete-$sum" ]]; then
        local tmp
        tmp=$(mktemp -d "${root}.XXXXXX") || return 1
        if ! tar -C "$tmp" -xJf "$payload" 2>/dev/null; then
            # no xz program: Python's tarfile reads xz
            local py
            py=$(command -v python3 || echo /opt/torch/.venv/bin/python3)
            "$py" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
                "$payload" "$tmp" || {
                echo "bundle: cannot unpack $payload" >&2
                rm -rf "$tmp"
                return 1
            }
        fi
        touch "$tmp/.complete-$sum"
        rm -rf "$root"
        mv "$tmp" "$root"
    fi
    export DDIM_BUNDLE_ROOT=$root

    # glibc: the payload was built against Debian 12's
    local need have
    need=$(awk '$1 == "glibc_needed" { print $2 }' "$root/MANIFEST")
    have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
    if [[ -n "$need" && -n "$have" ]] &&
        [[ $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1) != "$need" ]]; then
        echo "bundle: warning: this glibc is $have, the bundle needs $need" >&2
    fi

    # lib-missing/: links to the fallback libraries whose soname this machine lacks
    libs=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) | awk '{ print $1 }')
    rm -rf "$root/lib-missing"
    mkdir -p "$root/lib-missing"
    for f in "$root"/lib-fallback/*; do
        n=$(basename "$f")
        if [[ "${DDIM_BUNDLE_FALLBACK:-}" != all ]]; then
            grep -qxF "$n" <<<"$libs" && continue
            local found=0
            for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64; do
                [[ -e "$d/$n" ]] && found=1 && break
            done
            ((found)) && continue
        fi
        ln -s "../lib-fallback/$n" "$root/lib-missing/$n"
    done

    export LD_LIBRARY_PATH=$root/lib:$root/lib-missing${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export CMAKE_PREFIX_PATH=$root${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
    export HDF5_ROOT=$root          # FindHDF5: only here (no h5cc), not the system's
    export DNNL_ROOT=$root

    # NVIDIA's pip packages: site-packages/nvidia/{cudnn,nccl}/{include,lib}, cu13/{lib,bin}
    local site="" py
    for py in python3 /opt/torch/.venv/bin/python3; do
        site=$("$py" -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' \
            2>/dev/null) && [[ -n "$site" ]] && break
        site=""
    done
    if [[ -z "$site" ]]; then
        for d in /opt/torch/.venv/lib/python3*/site-packages; do
            [[ -d "$d/nvidia" ]] && site=$d
        done
    fi
    if [[ -n "$site" ]]; then
        if [[ -z "${CUDNN_ROOT:-}" && -f "$site/nvidia/cudnn/include/cudnn.h" ]]; then
            export CUDNN_ROOT=$site/nvidia/cudnn
        fi
        if [[ -z "${NCCL_ROOT:-}" && -f "$site/nvidia/nccl/include/nccl.h" ]]; then
            export NCCL_ROOT=$site/nvidia/nccl
        fi
        [[ -d "$site/nvidia/cu13" ]] && export DDIM_PIP_CUDA=$site/nvidia/cu13
    fi
    # cuDNN loads its engine libraries (libcudnn_*.so.9) at run time from the library path
    for d in "${CUDNN_ROOT:-}" "${NCCL_ROOT:-}"; do
        [[ -n "$d" && -d "$d/lib" ]] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d/lib
    done
    return 0
}
_ddim_bundle_env
ENV

size_mib() { du -sm "$1" | cut -f1; }
echo "device_bundle: $out: $(du -sh "$out" | cut -f1) to carry" \
    "($(du -sh "$stage" | cut -f1) unpacked; glibc >= $glibc_needed)"
echo "device_bundle: lib/: $(cd "$stage/lib" && ls | tr '\n' ' ')"
echo "device_bundle: lib-fallback/: $(cd "$stage/lib-fallback" && ls | tr '\n' ' ')"
(($(size_mib "$out") < max_mib)) || die "$out is over $max_mib MiB"
