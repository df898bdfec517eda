/*
 * The TCG PC Client event log (binary_bios_measurements, crypto-agile
 * format: a SHA-1 format Spec ID event, then TCG_PCR_EVENT2 records),
 * parsed from untrusted bytes with lib/buf.c and replayed into the PCR
 * values it claims, for botid-ca to compare with a quote.
 */
#ifndef BOTID_ATTEST_EVENTLOG_H
#define BOTID_ATTEST_EVENTLOG_H

#include <stddef.h>
#include <stdint.h>

#define EVENTLOG_PCRS		24
#define EVENTLOG_SHA256		32

/*
 * Replays log (len bytes, at most BOTID_MAX_EVENTLOG) in the SHA-256 bank:
 * pcrs[i] starts at zero and becomes SHA-256(pcrs[i] || digest) for each
 * event of PCR i, EV_NO_ACTION events excepted; *touched gets bit i for
 * every PCR an event extended. Every record must carry a SHA-256 digest
 * and the algorithms the Spec ID event declares, and nothing may follow
 * the last record. On failure *why says what is wrong in one line.
 * Errors: BOTID_ERR_PROTOCOL (malformed), _TOO_LARGE (over a limit),
 * _UNSUPPORTED (not crypto-agile, no SHA-256), _CRYPTO.
 */
int	eventlog_replay(const uint8_t *log, size_t len,
	    uint8_t pcrs[EVENTLOG_PCRS][EVENTLOG_SHA256], uint32_t *touched,
	    const char **why);

#endif /* BOTID_ATTEST_EVENTLOG_H */
