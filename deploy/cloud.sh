#!/usr/bin/env bash
# orderflow on AWS, end to end (called by `make cloud-up` / `make cloud-down`; see docs/cloud.md).
#
#   deploy/cloud.sh up   [pulumi up args]       pulumi up --yes, save outputs, wait for SSM,
#                                               pyinfra deploy
#   deploy/cloud.sh deploy                      save outputs, wait for SSM, pyinfra deploy
#   deploy/cloud.sh down [pulumi destroy args]  pulumi destroy (asks unless given --yes)
#
# Environment: PULUMI_STACK (stack to use, default: the selected one), PYINFRA (pyinfra
# command, default: pyinfra on PATH), ORDERFLOW_PULUMI_OUTPUTS (outputs file, default
# .pulumi-outputs.json at the repo root; deploy/inventory.py reads the same variable),
# ORDERFLOW_SSM_WAIT (seconds to wait for every host to be Online in SSM, default 900),
# ORDERFLOW_SSM_POLL (seconds between checks, default 10), PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export ORDERFLOW_PULUMI_OUTPUTS="${ORDERFLOW_PULUMI_OUTPUTS:-$ROOT/.pulumi-outputs.json}"
PYINFRA="${PYINFRA:-pyinfra}"
PYTHON="${PYTHON:-python3}"
SSM_WAIT="${ORDERFLOW_SSM_WAIT:-900}"
SSM_POLL="${ORDERFLOW_SSM_POLL:-10}"
STACK_ARGS=()
if [[ -n "${PULUMI_STACK:-}" ]]; then
    STACK_ARGS=(--stack "$PULUMI_STACK")
fi

die() {
    echo "cloud: error: $*" >&2
    exit 1
}

require_pulumi() {
    command -v pulumi >/dev/null 2>&1 ||
        die "the pulumi CLI is not installed (https://www.pulumi.com/docs/install/)"
    pulumi stack "${STACK_ARGS[@]}" --show-name >/dev/null 2>&1 ||
        die "no Pulumi stack selected or not logged in: run 'pulumi login' and 'pulumi stack init dev' (docs/cloud.md)"
}

require_aws_credentials() {
    if command -v aws >/dev/null 2>&1; then
        aws sts get-caller-identity >/dev/null 2>&1 ||
            die "no usable AWS credentials: 'aws sts get-caller-identity' failed (run 'aws configure' or 'aws sso login', or set AWS_PROFILE)"
    elif [[ -z "${AWS_ACCESS_KEY_ID:-}${AWS_PROFILE:-}" && ! -f "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ]]; then
        die "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or install the aws CLI and run 'aws configure'"
    fi
}

require_deploy_tools() {
    command -v aws >/dev/null 2>&1 ||
        die "the aws CLI is not installed: pyinfra reaches the hosts through 'aws ssm start-session'"
    command -v session-manager-plugin >/dev/null 2>&1 ||
        die "the AWS Session Manager plugin is not installed (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html)"
    command -v "$PYINFRA" >/dev/null 2>&1 ||
        die "pyinfra not found: activate the project's virtualenv or set PYINFRA=/path/to/pyinfra"
    pulumi config "${STACK_ARGS[@]}" get sshPublicKey >/dev/null 2>&1 ||
        die "sshPublicKey is not set: pyinfra needs your key on the hosts (pulumi config set sshPublicKey \"\$(cat ~/.ssh/id_ed25519.pub)\")"
}

# The outputs carry the Kafka secrets' ARNs (kafka_secret_arns), never their values: hosts fetch
# their own from Secrets Manager (docs/security.md). Never --show-secrets here: a secret output
# would then land in this file; without it Pulumi prints "[secret]", which is refused.
save_outputs() {
    local tmp="$ORDERFLOW_PULUMI_OUTPUTS.tmp"
    pulumi stack "${STACK_ARGS[@]}" output --json >"$tmp"
    if grep -q '"\[secret\]"' "$tmp"; then
        rm -f "$tmp"
        die "a stack output is a secret (pulumi shows [secret]): the outputs must carry secret ARNs only, never values (docs/security.md)"
    fi
    mv "$tmp" "$ORDERFLOW_PULUMI_OUTPUTS"
    echo "cloud: outputs saved to $ORDERFLOW_PULUMI_OUTPUTS (Kafka secrets by ARN only)"
}

# One id per stack, generated on its first `up` and kept in its config: every broker formats
# its data directory with it, so it must never change afterwards.
ensure_cluster_id() {
    if [[ -n "$(pulumi config "${STACK_ARGS[@]}" get kafkaClusterId 2>/dev/null)" ]]; then
        return
    fi
    local cluster_id
    cluster_id="$("$PYTHON" "$ROOT/platform/orderflow_infra/config.py")" ||
        die "cannot generate a Kafka cluster id with $PYTHON"
    pulumi config "${STACK_ARGS[@]}" set kafkaClusterId "$cluster_id"
    echo "cloud: generated kafkaClusterId $cluster_id (kept in the stack config)"
}

# pyinfra reaches every host through SSM: wait until each agent has registered and is Online
# (it needs a minute or more after boot), bounded by SSM_WAIT.
wait_for_ssm() {
    local region hosts online missing deadline=$((SECONDS + SSM_WAIT))
    read -r region hosts < <("$PYTHON" -c '
import json, sys
outputs = json.load(open(sys.argv[1]))
print(outputs["region"], " ".join(h["name"] + "=" + h["instance_id"] for h in outputs["hosts"]))
' "$ORDERFLOW_PULUMI_OUTPUTS") || die "cannot read the hosts from $ORDERFLOW_PULUMI_OUTPUTS"
    local ids=() host
    for host in $hosts; do ids+=("${host#*=}"); done
    local joined="${ids[*]}"
    echo "cloud: waiting up to ${SSM_WAIT}s until every host is Online in SSM"
    local answer last_error=""
    while :; do
        if answer="$(aws ssm describe-instance-information --region "$region" \
            --filters "Key=InstanceIds,Values=${joined// /,}" \
            --query 'InstanceInformationList[?PingStatus==`Online`].InstanceId' \
            --output text 2>&1)"; then
            online=" $(echo "$answer" | tr -s '[:space:]' ' ') "
        else
            online=" "
            last_error="; last aws error: $(echo "$answer" | tr -s '[:space:]' ' ' | cut -c1-200)"
        fi
        missing=()
        for host in $hosts; do
            [[ "$online" == *" ${host#*=} "* ]] || missing+=("$host")
        done
        if [[ ${#missing[@]} -eq 0 ]]; then
            echo "cloud: all ${#ids[@]} hosts are Online in SSM"
            return
        fi
        if ((SECONDS >= deadline)); then
            die "not Online in SSM after ${SSM_WAIT}s: ${missing[*]} (is the instance running, with egress or the SSM endpoints? see docs/cloud.md, First run)${last_error}"
        fi
        sleep "$SSM_POLL"
    done
}

run_deploy() {
    "$PYINFRA" deploy/inventory.py deploy/deploy.py -y
}

usage() {
    echo "usage: deploy/cloud.sh up|deploy|down [pulumi args...]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
case "$command" in
    up)
        require_pulumi
        require_aws_credentials
        require_deploy_tools
        ensure_cluster_id
        pulumi up "${STACK_ARGS[@]}" --yes "$@"
        save_outputs
        wait_for_ssm
        run_deploy
        ;;
    deploy)
        require_pulumi
        require_aws_credentials
        require_deploy_tools
        save_outputs
        wait_for_ssm
        run_deploy
        ;;
    down)
        require_pulumi
        require_aws_credentials
        pulumi destroy "${STACK_ARGS[@]}" "$@"
        rm -f "$ORDERFLOW_PULUMI_OUTPUTS"
        ;;
    *)
        usage
        ;;
esac
