/*
 * What every libFuzzer harness of tests/fuzz/ shares: the entry points
 * libFuzzer calls, and FUZZ_CHECK, which turns a broken promise of the
 * code under test into a crash the fuzzer reports.
 */
#ifndef BOTID_TESTS_FUZZ_H
#define BOTID_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond) do {						\
	if (!(cond))							\
		abort();						\
} while (0)

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* BOTID_TESTS_FUZZ_H */
