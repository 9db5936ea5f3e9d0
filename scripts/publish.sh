#!/usr/bin/env bash
# Publishes what scripts/package.sh built in dist/ to PyPI and the npm registry:
#
#   PYPI_TOKEN=pypi-... NPM_TOKEN=npm_... scripts/publish.sh
#   scripts/publish.sh --dry-run        checks the wheels (twine check) and packs the npm
#                                       packages (npm publish --dry-run); needs no token
#
# The tokens are read from the environment only, and handed to twine and npm in their own
# environment and a temporary npmrc that is removed afterwards: nothing in the repository holds
# one. npm takes the tarballs as ./dist/... (dist/... would name a GitHub repository). The npm
# packages for each platform go first, so the main package never names an optional
# dependency that is not there yet. The release tarballs (dist/cloud_sync-*.tar.gz) and
# dist/SHA256SUMS are attached to the release on the code host by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh

dry_run=
[ "${1:-}" != --dry-run ] || dry_run=1
shopt -s nullglob
wheels=(dist/*.whl)
platform_tgz=(dist/sqlite-cloud-sync-linux-*.tgz)
main_tgz=(dist/sqlite-cloud-sync-[0-9]*.tgz)
if [ ${#wheels[@]} -eq 0 ] || [ ${#platform_tgz[@]} -eq 0 ] || [ ${#main_tgz[@]} -ne 1 ]; then
    echo "publish: dist/ is incomplete: run scripts/package.sh first" >&2
    exit 1
fi
if [ -z "$dry_run" ] && { [ -z "${PYPI_TOKEN:-}" ] || [ -z "${NPM_TOKEN:-}" ]; }; then
    echo "publish: set PYPI_TOKEN and NPM_TOKEN (or pass --dry-run)" >&2
    exit 1
fi

tools=$(cloud_sync_install_package_deps)
"$tools/bin/pip" install -q --disable-pip-version-check twine
npmrc=$(mktemp)
trap 'rm -f -- "$npmrc"' EXIT
# npm reads ${NPM_TOKEN} from its environment when it reads this file.
# shellcheck disable=SC2016
printf '//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n' >"$npmrc"

if [ -n "$dry_run" ]; then
    "$tools/bin/twine" check --strict "${wheels[@]}"
    for package in "${platform_tgz[@]}" "${main_tgz[@]}"; do
        npm publish --dry-run --userconfig "$npmrc" "./$package"
    done
    exit 0
fi
TWINE_USERNAME=__token__ TWINE_PASSWORD=$PYPI_TOKEN \
    "$tools/bin/twine" upload --non-interactive "${wheels[@]}"
for package in "${platform_tgz[@]}" "${main_tgz[@]}"; do
    npm publish --access public --userconfig "$npmrc" "./$package"
done
