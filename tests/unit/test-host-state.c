/*
 * Unit tests for attest/host-state.c: the provisioning state round-trips,
 * and damaged or unsafe state (truncated blobs, trailing bytes, a host.json
 * with unknown members, host.json without keys, a world-writable
 * directory) is refused with the file named.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <tss2/tss2_mu.h>

#include "attest/host-state.h"
#include "attest/tpm-templates.h"
#include "lib/error.h"
#include "lib/file.h"

struct fixture {
	char	dir[64];
	char	attest[96];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/botid-test-hs-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->attest, sizeof(f->attest), "%s/attest", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Saves keys made from the templates (the private parts are dummies). */
static void
save_keys(struct fixture *f)
{
	struct host_state hs;
	char err[256];

	assert_int_equal(host_state_load(f->dir, &hs, err, sizeof(err)), 0);
	assert_false(hs.have_keys);
	assert_false(hs.enrolled);
	hs.ak_pub = tpm_template_ak_ecc;
	hs.hk_pub = tpm_template_hostkey_ecc;
	hs.ak_priv.size = 3;
	memcpy(hs.ak_priv.buffer, "abc", 3);
	hs.hk_priv.size = 2;
	memcpy(hs.hk_priv.buffer, "de", 2);
	assert_int_equal(host_state_save_keys(&hs, err, sizeof(err)), 0);
	host_state_free(&hs);
}

static void
test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct host_state hs;
	struct stat st;
	char err[256];

	save_keys(f);
	assert_int_equal(stat(f->attest, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(host_state_load(f->dir, &hs, err, sizeof(err)), 0);
	assert_true(hs.have_keys);
	assert_false(hs.enrolled);
	assert_int_equal(hs.ak_pub.publicArea.objectAttributes,
	    tpm_template_ak_ecc.publicArea.objectAttributes);
	assert_int_equal(hs.hk_priv.size, 2);
	assert_int_equal(host_state_save_enrolment(&hs, "0123456789abcdef",
	    "spiffe://td/host/0123456789abcdef", "https://ca:1",
	    "BUNDLE\n", "CERT\n", err, sizeof(err)), 0);
	host_state_free(&hs);
	assert_int_equal(host_state_load(f->dir, &hs, err, sizeof(err)), 0);
	assert_true(hs.enrolled);
	assert_string_equal(hs.host_id, "0123456789abcdef");
	assert_string_equal(hs.ca_url, "https://ca:1");
	host_state_free(&hs);
}

static void
test_truncated_and_trailing_blobs(void **state)
{
	struct fixture *f = *state;
	struct host_state hs;
	uint8_t *data;
	size_t len, cut;
	char path[160], err[256];

	save_keys(f);
	snprintf(path, sizeof(path), "%s/ak.pub", f->attest);
	assert_int_equal(file_read(path, 4096, &data, &len), 0);
	for (cut = 1; cut < len; cut++) {
		assert_int_equal(file_write_atomic(path, data, cut, 0600), 0);
		assert_int_equal(host_state_load(f->dir, &hs, err,
		    sizeof(err)), BOTID_ERR_CONFIG);
		assert_non_null(strstr(err, "ak.pub"));
		host_state_free(&hs);
	}
	data = realloc(data, len + 1);
	assert_non_null(data);
	data[len] = 0;
	assert_int_equal(file_write_atomic(path, data, len + 1, 0600), 0);
	assert_int_equal(host_state_load(f->dir, &hs, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	host_state_free(&hs);
	free(data);
}

static void
test_bad_host_json(void **state)
{
	static const char *bad[] = {
		"{\"host_id\":\"a\",\"spiffe_id\":\"b\"}",
		"{\"host_id\":\"a\",\"spiffe_id\":\"b\",\"ca_url\":\"c\",\"x\":1}",
		"{\"host_id\":1,\"spiffe_id\":\"b\",\"ca_url\":\"c\"}",
		"{\"host_id\":\"a\",\"host_id\":\"a\",\"spiffe_id\":\"b\",\"ca_url\":\"c\"}",
		"[]", "", "{",
	};
	struct fixture *f = *state;
	struct host_state hs;
	char path[160], err[256];
	size_t i;

	save_keys(f);
	snprintf(path, sizeof(path), "%s/host.json", f->attest);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(file_write_atomic(path, bad[i], strlen(bad[i]),
		    0644), 0);
		assert_int_equal(host_state_load(f->dir, &hs, err,
		    sizeof(err)), BOTID_ERR_CONFIG);
		assert_non_null(strstr(err, "host.json"));
		host_state_free(&hs);
	}
	/* Enrolled, but the key blobs are gone. */
	snprintf(path, sizeof(path), "%s/host.json", f->attest);
	assert_int_equal(file_write_atomic(path,
	    "{\"host_id\":\"a\",\"spiffe_id\":\"b\",\"ca_url\":\"c\"}", 44,
	    0644), 0);
	snprintf(path, sizeof(path), "%s/hostkey.priv", f->attest);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(host_state_load(f->dir, &hs, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	host_state_free(&hs);
}

static void
test_unsafe_directory(void **state)
{
	struct fixture *f = *state;
	struct host_state hs;
	char err[256];

	save_keys(f);
	assert_int_equal(chmod(f->attest, 0777), 0);
	assert_int_equal(host_state_load(f->dir, &hs, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	assert_non_null(strstr(err, "refusing"));
	host_state_free(&hs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_trailing_blobs,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_host_json, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_directory, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
