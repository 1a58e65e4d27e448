#!/bin/bash
# Path B user data: rendered by step-220 (placeholders in double braces). It checks the NVIDIA
# container runtime, logs in to ECR with a fresh token right before the pull, pulls the worker
# image by digest, checks the disk against the image size (C27), runs a GPU smoke test in the
# container (C28), then supervises the worker container: a crash restarts it, an idle exit (64)
# shuts the host down. Everything is logged to the serial console.
set -euo pipefail
exec > >(tee -a /var/log/transcribe-fleet-bootstrap.log | logger -t fleet-bootstrap -s 2>/dev/console) 2>&1
echo "fleet-bootstrap: start $(date -u +%FT%TZ)"

region='{{REGION}}'
registry='{{REGISTRY}}'
image='{{IMAGE}}'
name='{{CONTAINER_NAME}}'
mkdir -p /etc/transcribe-fleet /run/transcribe-fleet

token=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
instance_id=$(curl -sf -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/instance-id)

fail() {
    echo "fleet-bootstrap: FAILED: $*"
    aws ec2 create-tags --region "$region" --resources "$instance_id" \
        --tags "Key=BootstrapFailed,Value=$(echo "$*" | cut -c1-200)" || true
    shutdown -h +1 "bootstrap failed; the instance terminates instead of costing money"
    exit 1
}

cat > /etc/transcribe-fleet/worker.env <<'ENV'
{{WORKER_ENV}}ENV
echo "FLEET_WORKER_ID=$instance_id" >> /etc/transcribe-fleet/worker.env
echo "FLEET_IMAGE=$image" >> /etc/transcribe-fleet/worker.env
# docker --env-file takes KEY=value literally: drop the quotes of the shared format.
sed -i "s/^\([A-Z_][A-Z0-9_]*\)='\(.*\)'$/\1=\2/" /etc/transcribe-fleet/worker.env
chmod 600 /etc/transcribe-fleet/worker.env

systemctl is-active --quiet docker || systemctl start docker || fail "the Docker engine does not start"
docker info 2>/dev/null | grep -i 'runtimes:' | grep -q nvidia \
    || fail "the NVIDIA container runtime is missing (use the GPU Deep Learning AMI)"
nvidia-smi -L || fail "no NVIDIA GPU visible on the host"

# A fresh token right before the pull: ECR tokens last 12 hours and instances can wait.
aws ecr get-login-password --region "$region" \
    | docker login --username AWS --password-stdin "$registry" || fail "ECR login failed"
need_kb=$(( {{IMAGE_SIZE_BYTES}} * 2 / 1024 ))
free_kb=$(df -Pk /var/lib/docker | awk 'NR==2 {print $4}')
df -h /var/lib/docker
[ "$free_kb" -ge "$need_kb" ] || fail "disk: ${free_kb} KiB free, the image needs ${need_kb} KiB (C27)"
docker pull "$image" || fail "cannot pull $image"

docker run --rm --gpus all --entrypoint /opt/venv/bin/python "$image" \
    -c 'import ctranslate2 as c; n = c.get_cuda_device_count(); print("cuda devices", n); assert n > 0' \
    || fail "GPU smoke test in the container failed (C28)"

cat > /usr/local/bin/transcribe-fleet-worker <<SUPERVISOR
#!/bin/bash
# Runs the worker container until it exits idle (64), then shuts the host down.
while true; do
    docker rm -f "$name" >/dev/null 2>&1 || true
    set +e
    docker run --name "$name" --gpus all --restart no --network host \
        --env-file /etc/transcribe-fleet/worker.env \
        --label fleet.worker-id="$instance_id" {{LABELS}} \
        --env FLEET_STATUS_FILE=/run/worker/status.json "$image"
    code=\$?
    set -e
    echo "fleet-worker: container exited with \$code"
    case "\$code" in
        0) exit 0 ;;
        64) shutdown -h now "the worker is idle"; exit 0 ;;
        *) sleep 10 ;;
    esac
done
SUPERVISOR
chmod 755 /usr/local/bin/transcribe-fleet-worker
cat > /etc/systemd/system/transcription-worker.service <<'UNIT'
[Unit]
Description=transcribe-fleet worker container
After=docker.service
Requires=docker.service

[Service]
ExecStart=/usr/local/bin/transcribe-fleet-worker
ExecStop=/usr/bin/docker stop --time 600 {{CONTAINER_NAME}}
TimeoutStopSec=620
Restart=no

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now transcription-worker.service
echo "fleet-bootstrap: done $(date -u +%FT%TZ)"
