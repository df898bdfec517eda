#!/bin/bash
# ca-key-binding.sh with botid-ca on PostgreSQL (pg-common.sh): the key
# binding and the purge's kept rows come from the same queries there.
set -euo pipefail
BOTID_KEY_BINDING_PG=1 exec bash "$top_srcdir/tests/integration/ca-key-binding.sh"
