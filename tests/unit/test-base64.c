/*
 * Unit tests for lib/base64.c (RFC 4648 vectors, strictness, limits) and
 * lib/file.c (capped reads, atomic replacement).
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

#include "lib/base64.h"
#include "lib/error.h"
#include "lib/file.h"

static const struct {
	const char	*plain;
	const char	*coded;
} vectors[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void
test_rfc4648_vectors(void **state)
{
	uint8_t *d;
	size_t i, n;
	char *s;

	(void)state;
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t len = strlen(vectors[i].plain);

		assert_int_equal(base64_encode((const uint8_t *)vectors[i].plain,
		    len, &s), 0);
		assert_string_equal(s, vectors[i].coded);
		free(s);
		assert_int_equal(base64_decode(vectors[i].coded, 64, &d, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(d, vectors[i].plain, len);
		free(d);
	}
}

static void
test_refuses_non_strict(void **state)
{
	static const char *bad[] = {
		"Zg=", "Zg", "Z", "Zm9v\n", " Zm9v", "Zm9v====", "Z===",
		"Zm=v", "Zm9v!A==", "Zm\r9v", "=Zm9", "Zm9v-_==",
	};
	uint8_t *d = (uint8_t *)1;
	size_t i, n = 7;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(base64_decode(bad[i], 64, &d, &n),
		    BOTID_ERR_INVALID);
		assert_null(d);
		assert_int_equal(n, 0);
		d = (uint8_t *)1;
	}
}

static void
test_decode_limit(void **state)
{
	uint8_t *d;
	size_t n;

	(void)state;
	assert_int_equal(base64_decode("Zm9vYmFy", 6, &d, &n), 0);
	free(d);
	assert_int_equal(base64_decode("Zm9vYmFy", 5, &d, &n),
	    BOTID_ERR_TOO_LARGE);
	assert_int_equal(base64_decode("Zm9vYmE=", 5, &d, &n), 0);
	assert_int_equal(n, 5);
	free(d);
}

static void
test_file_atomic_and_capped(void **state)
{
	char dir[] = "/tmp/botid-test-file-XXXXXX", path[64];
	struct stat st;
	uint8_t *d;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(file_read(path, 10, &d, &n), BOTID_ERR_NOT_FOUND);
	assert_int_equal(file_write_atomic(path, "hello", 5, 0600), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(file_write_atomic(path, "bye", 3, 0600), 0);
	assert_int_equal(file_read(path, 10, &d, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal((char *)d, "bye");
	free(d);
	assert_int_equal(file_read(path, 2, &d, &n), BOTID_ERR_TOO_LARGE);
	assert_null(d);
	/* No temporary file is left behind. */
	snprintf(path, sizeof(path), "%s/f.%ld.tmp", dir, (long)getpid());
	assert_int_equal(access(path, F_OK), -1);
	/* A directory is not a file to read. */
	assert_int_equal(file_read(dir, 10, &d, &n), BOTID_ERR_IO);
	/* Writing where no directory exists fails cleanly. */
	snprintf(path, sizeof(path), "%s/no/such", dir);
	assert_int_equal(file_write_atomic(path, "x", 1, 0600), BOTID_ERR_IO);
	snprintf(path, sizeof(path), "%s/f", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_refuses_non_strict),
		cmocka_unit_test(test_decode_limit),
		cmocka_unit_test(test_file_atomic_and_capped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
