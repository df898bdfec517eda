/*
 * libFuzzer harness for lib/auditlog.c: the input is an audit log file as
 * an attacker who can write it leaves it, verified as one file, as two
 * (split where its first byte says), with an anchor, its last line read
 * as the agent does at start, and each line taken as a checkpoint to
 * anchor as the CA does. Nothing may crash, and what verifies must add up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "lib/auditlog.h"
#include "lib/error.h"
#include "tests/fuzz/fuzz.h"

static void
verify_parts(EVP_PKEY *key, const uint8_t *data, size_t size, size_t split)
{
	struct auditlog_verifier *v = NULL;
	struct auditlog_summary s;
	char err[512];
	int r;

	err[0] = '\0';
	FUZZ_CHECK(auditlog_verifier_new(key, &v) == 0);
	r = auditlog_verify_data(v, "a", data, split, err, sizeof(err));
	if (r == 0)
		r = auditlog_verify_data(v, "b", data + split, size - split,
		    err, sizeof(err));
	if (auditlog_verify_end(v, 0, &s, err, sizeof(err)) == 0) {
		FUZZ_CHECK(r == 0);
		FUZZ_CHECK(s.entries > 0 && s.last_seq >= s.first_seq);
		FUZZ_CHECK(s.last_seq - s.first_seq + 1 == s.entries);
		FUZZ_CHECK(s.unsealed <= s.entries);
		FUZZ_CHECK(s.checkpoints <= s.entries);
		FUZZ_CHECK(key == NULL || s.signed_checkpoints ==
		    s.checkpoints);
	} else
		FUZZ_CHECK(err[0] != '\0');
	auditlog_verifier_free(v);
}

static EVP_PKEY *key;

/* The key checkpoints are checked against: no input is signed by it. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FUZZ_CHECK((key = EVP_EC_gen("P-256")) != NULL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auditlog_tail_info t;
	struct auditlog_anchor a;
	struct auditlog_verifier *v = NULL;
	struct auditlog_summary s;
	uint8_t hash[AUDITLOG_HASH_LEN];
	uint64_t seq;
	const uint8_t *nl;
	char err[512];
	size_t off = 0;
	int fd, partial;

	/* Each line as the CA takes a checkpoint; unsigned with the key. */
	while (off < size && (nl = memchr(data + off, '\n',
	    size - off)) != NULL) {
		if (auditlog_checkpoint_check(data + off,
		    (size_t)(nl - data - off), NULL, &a) == 0) {
			FUZZ_CHECK(a.seq > a.sealed_seq);
			/* An anchor the log must reach. */
			FUZZ_CHECK(auditlog_verifier_new(NULL, &v) == 0);
			FUZZ_CHECK(auditlog_verifier_set_anchor(v, &a,
			    "ca") == 0);
			(void)auditlog_verify_data(v, "a", data, size, err,
			    sizeof(err));
			if (auditlog_verify_end(v, 0, &s, err,
			    sizeof(err)) == 0)
				FUZZ_CHECK(s.have_number &&
				    s.last_number >= a.number);
			auditlog_verifier_free(v);
			v = NULL;
		}
		FUZZ_CHECK(auditlog_checkpoint_check(data + off,
		    (size_t)(nl - data - off), key, &a) != 0);
		off = (size_t)(nl - data) + 1;
	}
	verify_parts(NULL, data, size, size);
	verify_parts(key, data, size, size);
	if (size > 0)
		verify_parts(NULL, data, size, data[0] % size);
	if ((fd = memfd_create("audit", MFD_CLOEXEC)) == -1)
		return 0;
	if (write(fd, data, size) == (ssize_t)size &&
	    auditlog_tail(fd, &seq, hash, &partial) == 0) {
		FUZZ_CHECK(!partial && size > 0 && data[size - 1] == '\n');
		FUZZ_CHECK(auditlog_tail_check(fd, key, &t, &partial) == 0);
		FUZZ_CHECK(t.seq == seq && !t.sig_ok);
	}
	close(fd);
	return 0;
}
