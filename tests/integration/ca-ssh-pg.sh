#!/bin/bash
# ca-ssh.sh with botid-ca on PostgreSQL (pg-common.sh): SSH certificates and
# the revoked keys come from the same queries on the other backend.
set -euo pipefail
BOTID_CA_SSH_PG=1 exec bash "$top_srcdir/tests/integration/ca-ssh.sh"
