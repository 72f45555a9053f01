#!/usr/bin/env bash
# Installs the Debian packages stamp builds and runs with, when any is
# missing. Quick and silent when everything is present.
set -euo pipefail
packages=(gcc make pkg-config liblmdb-dev lmdb-utils libopenblas-openmp-dev
          liblapacke-dev libcsv-dev libjansson-dev libpcre2-dev libzstd-dev
          libxxhash-dev xxhash jq time
          libopenmpi-dev openmpi-bin  # mpirun -np N stamp stats|commit (base/dist.c); t45-mpi
          chromium libxml2-utils    # t90-report: the page rendered, and parsed as XML
          python3-torch)            # t94-llama-predict: the PyTorch reference (/usr/bin/python3)
# test_tokenizer_json fetches the reference tokenizer.json files with npm
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
