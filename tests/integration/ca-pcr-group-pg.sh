#!/bin/bash
# ca-pcr-group.sh with botid-ca on PostgreSQL (pg-common.sh): the host
# group columns of tokens and hosts, moves and refusals through the other
# backend's queries.
set -euo pipefail
BOTID_PCR_PG=1 exec bash "$top_srcdir/tests/integration/ca-pcr-group.sh"
