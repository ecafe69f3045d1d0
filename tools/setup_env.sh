#!/usr/bin/env bash
# Create (or update) a virtual environment with everything the toolkit needs.
#
#   bash tools/setup_env.sh            # venv in .venv
#   VENV=/path/to/env bash tools/setup_env.sh
#
# Why a script and not a bare `pip install -e .`: spikingjelly 0.0.0.0.14 declares
# torchvision as a dependency, and pip would then pull torchvision plus a CUDA build
# of torch (several GB) even on a machine without a GPU. So torch is installed first
# (the CPU wheel where no NVIDIA driver is present), spikingjelly without its
# declared dependencies, and then the rest of setup.cfg's install_requires.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup_env] creating virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi
# pip reports spikingjelly's missing torchvision as a "dependency conflict" after every
# install; it is left out on purpose (see above), so that one report is filtered.
pip_install() {
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" \
    2> >(grep -v -e "dependency resolver does not currently take into account" \
                 -e "spikingjelly 0.0.0.0.14 requires torchvision" >&2)
}

cuda_major=""
if command -v nvidia-smi >/dev/null 2>&1; then
  cuda_major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -n1 || true)
fi

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if [ -n "$cuda_major" ]; then
    echo "[setup_env] NVIDIA driver (CUDA $cuda_major) found: installing torch with CUDA"
    pip_install torch
  else
    echo "[setup_env] no GPU: installing the CPU build of torch"
    pip_install "torch==${TORCH_CPU_VERSION:-2.13.0}"
  fi
fi

pip_install --no-deps "spikingjelly==0.0.0.0.14"

# Everything else setup.cfg asks for, minus torch (done) and spikingjelly (done).
deps=$("$VENV/bin/python" - <<'PY'
import configparser
cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
reqs = [r.strip() for r in cfg["options"]["install_requires"].splitlines() if r.strip()]
extras = [r.strip() for r in cfg["options.extras_require"]["dev"].splitlines() if r.strip()]
print("\n".join(r for r in reqs + extras if not r.startswith(("torch", "spikingjelly"))))
PY
)
# shellcheck disable=SC2086
pip_install $deps
if [ -n "$cuda_major" ]; then
  case "$cuda_major" in
    12) pip_install cupy-cuda12x ;;
    13) pip_install cupy-cuda13x ;;
    *) echo "[setup_env] CUDA $cuda_major: no cupy extra known, the torch backend will be used" ;;
  esac
fi
pip_install --no-deps -e .

# The real-photo corpus of the built-in data: Debian wallpaper packages holding photographs
# (their list and the sha256 of every photograph: restoration/data/corpus.json). Installed
# where apt-get runs as root (CI does); never fatal: without it the generator uses the
# photographs inside scikit-image and says what is missing. SNN_SKIP_CORPUS=1 skips this.
install_corpus() {
  local pkgs log=/tmp/snn_setup_corpus_apt.log
  pkgs=$("$PY" -c "import json; print(' '.join(json.load(open('restoration/data/corpus.json'))['packages']))") || return 0
  if [ "${SNN_SKIP_CORPUS:-0}" = 1 ]; then
    echo "[setup_env] SNN_SKIP_CORPUS=1: real-photo corpus not installed ($pkgs)"; return 0
  fi
  # shellcheck disable=SC2086
  if ! dpkg -s $pkgs >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "[setup_env] real-photo corpus not installed (needs root and apt-get): sudo apt-get install" \
           "--no-install-recommends $pkgs"
      return 0
    fi
    echo "[setup_env] installing the real-photo corpus (about 120 MB): $pkgs"
    # shellcheck disable=SC2086
    if ! { DEBIAN_FRONTEND=noninteractive timeout 240 apt-get install -y -qq --no-install-recommends $pkgs \
           || { timeout 120 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 240 \
                apt-get install -y -qq --no-install-recommends $pkgs; }; } >"$log" 2>&1; then
      echo "[setup_env] apt-get could not install the corpus (see $log); the built-in data falls back to" \
           "scikit-image's photographs"
    fi
  fi
}
install_corpus || true
"$VENV/bin/python" -c "from restoration.data.corpus import corpus_status as s; m = s().message(); print('[setup_env] ' + (m or 'real-photo corpus: complete'))" || true
# The one-pass C++ kernels of the spiking core (backend 'auto' on the CPU) are compiled on
# first use; build them now (about a minute, cached in ~/.cache/snn-restoration/kernels).
# Without a C++ compiler this prints why and the torch path is used.
"$VENV/bin/python" -m restoration.spiking.cpu_kernels
"$VENV/bin/python" -c "import restoration, torch; print('[setup_env] ready: restoration', restoration.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available())"
