#!/bin/bash
# Installs (or updates in place) one worker bundle on a Path A instance, as root.
# Usage: install.sh BUNDLE_DIR. Run by the bootstrap at first boot and by step-130 (SSM Run
# Command) for updates. Safe to run again: the virtualenv is reused when the pins match.
set -euo pipefail
bundle=${1:?usage: install.sh BUNDLE_DIR}
dir=/opt/transcribe-fleet
venv=$dir/venv
cd "$bundle"
sha256sum --check --strict --quiet SHA256SUMS

id -u fleet >/dev/null 2>&1 || useradd --system --home-dir "$dir" --shell /usr/sbin/nologin fleet
command -v ffmpeg >/dev/null || { apt-get update -q && apt-get install -y -q ffmpeg python3-venv; }

# The pinned GPU stack (see the header of requirements-gpu.txt for the cuDNN 9 reasoning).
pins=$(cat requirements-gpu.txt requirements-gpu-nodeps.txt | sha256sum | cut -c1-16)
if [[ ! -f $venv/.pins-$pins ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip==24.3.1
    "$venv/bin/pip" install --quiet -r requirements-gpu.txt
    "$venv/bin/pip" install --quiet --no-deps -r requirements-gpu-nodeps.txt
    touch "$venv/.pins-$pins"
fi

# GPU self-test before the worker takes jobs (C28/C29): driver, then CUDA from torch.
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
cudnn=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')/nvidia/cudnn/lib
LD_LIBRARY_PATH=$cudnn "$venv/bin/python" -c \
    'import torch, ctranslate2; assert torch.cuda.is_available(), "CUDA not available"; print("gpu ok:", torch.cuda.get_device_name(0), "cudnn", torch.backends.cudnn.version(), "ct2", ctranslate2.__version__)'

install -d -o fleet "$dir/current" "$dir/work"
install -m 0755 transcription-worker "$dir/current/transcription-worker"
install -m 0644 whisper_engine.py "$dir/current/whisper_engine.py"
sed "s|@CUDNN_LIB@|$cudnn|" transcription-worker.service > /etc/systemd/system/transcription-worker.service
systemctl daemon-reload
systemctl enable transcription-worker.service
systemctl restart transcription-worker.service
echo "install.sh: worker $(sed -n "s/^FLEET_BUNDLE_VERSION='\(.*\)'/\1/p" /etc/transcribe-fleet/worker.env | tail -1) started"
