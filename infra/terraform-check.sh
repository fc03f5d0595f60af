#!/usr/bin/env bash
# Static checks of terraform/: formatting (terraform fmt) and security (checkov).
# Provider downloads are impossible in CI, so `terraform init`/`validate` cannot run;
# these and tests/e2e/terraform_manifest.rs (wiring vs infra/functions.toml) stand in.
# A checkov finding is either fixed or skipped in place with
# `#checkov:skip=CKV_...:<reason>` next to the resource.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

terraform=/usr/local/bin/terraform
if [[ ! -x "$terraform" ]]; then
    echo "terraform-check: $terraform is missing (Terraform 1.11 is expected on the machine image)" >&2
    exit 1
fi

# No CLI configuration is needed for fmt; this keeps Terraform from warning about a missing ~/.terraformrc.
[[ -f "${TF_CLI_CONFIG_FILE:-$HOME/.terraformrc}" ]] || export TF_CLI_CONFIG_FILE=/dev/null

echo "== terraform fmt -check -recursive terraform/"
if ! "$terraform" fmt -check -recursive -diff terraform/; then
    echo "terraform-check: run \`terraform fmt -recursive terraform/\`" >&2
    exit 1
fi

venv="$root/infra/.venv-checkov"
if [[ ! -x "$venv/bin/checkov" ]]; then
    echo "== installing checkov into infra/.venv-checkov"
    python3 -m venv "$venv"
    # Keep the virtualenv out of git without touching the repository's .gitignore.
    printf '*\n' > "$venv/.gitignore"
    "$venv/bin/pip" install --quiet --disable-pip-version-check checkov
fi
[[ -f "$venv/.gitignore" ]] || printf '*\n' > "$venv/.gitignore"

echo "== checkov -d terraform"
"$venv/bin/checkov" -d terraform --skip-download --quiet --compact
echo "terraform-check: ok"
