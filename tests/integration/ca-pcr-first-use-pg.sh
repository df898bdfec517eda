#!/bin/bash
# ca-pcr-first-use.sh with botid-ca on PostgreSQL (pg-common.sh): golden
# values, refusals and approve-boot through the other backend's queries.
set -euo pipefail
BOTID_PCR_PG=1 exec bash "$top_srcdir/tests/integration/ca-pcr-first-use.sh"
