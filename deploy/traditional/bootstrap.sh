#!/bin/bash
# Path A user data: a small bootstrap rendered by step-120 (placeholders in double braces).
# It fetches the worker bundle `current` points at, verifies every sha256 sum, runs the
# bundle's install script (pinned engine stack, GPU self-test, systemd unit) and starts the
# worker service. Everything is logged to the serial console (aws ec2 get-console-output).
set -euo pipefail
exec > >(tee -a /var/log/transcribe-fleet-bootstrap.log | logger -t fleet-bootstrap -s 2>/dev/console) 2>&1
echo "fleet-bootstrap: start $(date -u +%FT%TZ)"

region='{{REGION}}'
bucket='{{BUCKET}}'
dir=/opt/transcribe-fleet
mkdir -p "$dir" /etc/transcribe-fleet

# IMDSv2 only (the launch template requires tokens).
token=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
instance_id=$(curl -sf -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/instance-id)

cat > /etc/transcribe-fleet/worker.env <<'ENV'
{{WORKER_ENV}}ENV
echo "FLEET_WORKER_ID='$instance_id'" >> /etc/transcribe-fleet/worker.env
chmod 600 /etc/transcribe-fleet/worker.env

fail() {
    echo "fleet-bootstrap: FAILED: $*"
    aws ec2 create-tags --region "$region" --resources "$instance_id" \
        --tags "Key=BootstrapFailed,Value=$(echo "$*" | cut -c1-200)" || true
    shutdown -h +1 "bootstrap failed; the instance terminates instead of costing money"
    exit 1
}

version=$(aws s3 cp --region "$region" "s3://$bucket/{{CURRENT_KEY}}" - | tr -d '[:space:]') \
    || fail "cannot read s3://$bucket/{{CURRENT_KEY}}"
echo "fleet-bootstrap: bundle $version"
aws s3 cp --region "$region" --recursive --quiet "s3://$bucket/{{BUNDLE_PREFIX}}$version/" "$dir/bundle-$version/" \
    || fail "cannot download bundle $version"
cd "$dir/bundle-$version"
sha256sum --check --strict SHA256SUMS || fail "bundle $version does not match its sums"
echo "FLEET_BUNDLE_VERSION='$version'" >> /etc/transcribe-fleet/worker.env
bash ./install.sh "$dir/bundle-$version" || fail "install.sh failed (see above)"
echo "fleet-bootstrap: done $(date -u +%FT%TZ)"
