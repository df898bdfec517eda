/*
 * libFuzzer harness for the TCG event log botid-ca replays
 * (attest/eventlog.c): any bytes may be refused; nothing may crash, read
 * past the input, or succeed without saying which PCRs it extended
 * consistently with the replayed values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/eventlog.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zero[EVENTLOG_SHA256];
	uint8_t pcrs[EVENTLOG_PCRS][EVENTLOG_SHA256];
	uint32_t touched = 0;
	const char *why = NULL;
	int i;

	if (eventlog_replay(data, size, pcrs, &touched, &why) != 0) {
		FUZZ_CHECK(why != NULL);
		return 0;
	}
	FUZZ_CHECK(why == NULL);
	/* A PCR no event touched is still all zero. */
	for (i = 0; i < EVENTLOG_PCRS; i++)
		if (!(touched & (1u << i)))
			FUZZ_CHECK(memcmp(pcrs[i], zero, sizeof(zero)) == 0);
	return 0;
}
