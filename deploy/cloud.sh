#!/usr/bin/env bash
# orderflow on AWS, end to end (called by `make cloud-up` / `make cloud-down`; see docs/cloud.md).
#
#   deploy/cloud.sh up   [pulumi up args]       pulumi up --yes, save outputs, pyinfra deploy
#   deploy/cloud.sh deploy                      save outputs, pyinfra deploy (infra unchanged)
#   deploy/cloud.sh down [pulumi destroy args]  pulumi destroy (asks unless given --yes)
#
# Environment: PULUMI_STACK (stack to use, default: the selected one), PYINFRA (pyinfra
# command, default: pyinfra on PATH), ORDERFLOW_PULUMI_OUTPUTS (outputs file, default
# .pulumi-outputs.json at the repo root; deploy/inventory.py reads the same variable).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export ORDERFLOW_PULUMI_OUTPUTS="${ORDERFLOW_PULUMI_OUTPUTS:-$ROOT/.pulumi-outputs.json}"
PYINFRA="${PYINFRA:-pyinfra}"
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

save_outputs() {
    local tmp="$ORDERFLOW_PULUMI_OUTPUTS.tmp"
    pulumi stack "${STACK_ARGS[@]}" output --json >"$tmp"
    mv "$tmp" "$ORDERFLOW_PULUMI_OUTPUTS"
    echo "cloud: outputs saved to $ORDERFLOW_PULUMI_OUTPUTS"
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
        pulumi up "${STACK_ARGS[@]}" --yes "$@"
        save_outputs
        run_deploy
        ;;
    deploy)
        require_pulumi
        require_aws_credentials
        require_deploy_tools
        save_outputs
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
