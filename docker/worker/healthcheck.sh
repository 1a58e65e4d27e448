#!/bin/sh
# The container's HEALTHCHECK: healthy while the worker keeps its status file fresh and its
# state is neither failed nor stopped. The worker rewrites FLEET_STATUS_FILE (the same JSON as
# its status object in S3) on every change of state and every status interval (30 s), so a
# file older than FLEET_HEALTH_MAX_AGE seconds means the worker is stuck or gone.
# Exit 0 healthy, 1 unhealthy (Docker's convention); the reason goes to stdout for
# `docker inspect --format '{{json .State.Health}}'`.
file=${FLEET_STATUS_FILE:-/run/worker/status.json}
max_age=${FLEET_HEALTH_MAX_AGE:-120}

if [ ! -f "$file" ]; then
    echo "unhealthy: no status file $file yet"
    exit 1
fi
age=$(( $(date +%s) - $(stat -c %Y "$file") ))
if [ "$age" -gt "$max_age" ]; then
    echo "unhealthy: status is ${age}s old (limit ${max_age}s)"
    exit 1
fi
state=$(sed -n 's/.*"state"[[:space:]]*:[[:space:]]*"\([a-z_]*\)".*/\1/p' "$file" | head -n 1)
case "$state" in
    failed | stopped)
        echo "unhealthy: worker state is $state"
        exit 1
        ;;
    "")
        echo "unhealthy: no state in $file"
        exit 1
        ;;
esac
echo "healthy: $state, status ${age}s old"
exit 0
