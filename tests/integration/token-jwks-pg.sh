#!/bin/bash
# token-jwks.sh with botid-ca on PostgreSQL (pg-common.sh): the JWK Set
# and its revocation come from the same queries on the other backend.
set -euo pipefail
BOTID_TOKEN_JWKS_PG=1 exec bash "$top_srcdir/tests/integration/token-jwks.sh"
