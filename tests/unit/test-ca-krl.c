/*
 * Unit tests for ca/ca-krl.c: a KRL byte for byte against a vector
 * written from OpenSSH's PROTOCOL.krl, serials sorted and each once and
 * never 0, keys sorted and each once, a header alone when nothing is
 * revoked, the digest independent of order, refused key lines, and the
 * size limit. ca-ssh.sh has ssh-keygen and sshd read the CA's KRLs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ca/ca-krl.h"
#include "lib/base64.h"
#include "lib/botid.h"
#include "lib/buf.h"
#include "lib/limits.h"

/* PROTOCOL.krl: header (version 7, date 1000, comment "c"), serial list. */
static const char vector_hex[] =
    "5353484b524c0a0000000001000000000000000700000000000003e800000000"
    "000000000000000000000001630100000048000000330000000b7373682d6564"
    "3235353139000000202222222222222222222222222222222222222222222222"
    "2222222222222222220000000020000000080102030405060708020000003700"
    "0000330000000b7373682d656432353531390000002011111111111111111111"
    "11111111111111111111111111111111111111111111";

#define HEADER_LEN	(8 + 4 + 8 + 8 + 8 + 4 + 4)	/* empty comment */

/* An ssh-ed25519 blob whose 32 key bytes are fill, into blob[51]. */
static void
ed25519_blob(uint8_t fill, uint8_t blob[51])
{
	struct botid_buf b;
	uint8_t key[32];

	memset(key, fill, sizeof(key));
	buf_init(&b, 51);
	assert_int_equal(buf_put_string(&b, "ssh-ed25519", 11), 0);
	assert_int_equal(buf_put_string(&b, key, sizeof(key)), 0);
	assert_int_equal(buf_len(&b), 51);
	memcpy(blob, buf_ptr(&b), 51);
	buf_reset(&b);
}

/* "ssh-ed25519 BASE64 comment" of that blob (malloc'd). */
static char *
ed25519_line(uint8_t fill)
{
	uint8_t blob[51];
	char *b64 = NULL, *line;

	ed25519_blob(fill, blob);
	assert_int_equal(base64_encode(blob, sizeof(blob), &b64), 0);
	assert_int_not_equal(asprintf(&line, "ssh-ed25519 %s bot", b64), -1);
	free(b64);
	return line;
}

static void
add_ed25519(struct ca_krl *krl, uint64_t serial, uint8_t fill)
{
	char *line = ed25519_line(fill);

	assert_int_equal(ca_krl_add(krl, serial, line), 0);
	free(line);
}

static void
test_vector(void **state)
{
	struct ca_krl *krl = NULL;
	uint8_t ca[51], *out = NULL, want[sizeof(vector_hex) / 2];
	size_t len = 0, i;
	unsigned v;

	(void)state;
	for (i = 0; i < sizeof(want); i++) {
		assert_int_equal(sscanf(vector_hex + 2 * i, "%2x", &v), 1);
		want[i] = (uint8_t)v;
	}
	ed25519_blob(0x22, ca);
	assert_int_equal(ca_krl_new(&krl), 0);
	add_ed25519(krl, 0x0102030405060708ULL, 0x11);
	assert_int_equal(ca_krl_encode(krl, ca, sizeof(ca), 7, 1000, "c",
	    &out, &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(out, want, len);
	free(out);
	ca_krl_free(krl);
}

/* Reads a KRL back, checking the order and uniqueness of its entries. */
static void
parse_back(const uint8_t *p, size_t len, const uint8_t *ca, size_t ca_len,
    uint64_t *serials, size_t *nserials, size_t *nkeys)
{
	struct botid_buf b, s, l;
	const uint8_t *data, *blob, *prev = NULL;
	size_t n, blob_len, prev_len = 0;
	uint64_t u64, last = 0;
	uint32_t u32;
	uint8_t type;

	*nserials = *nkeys = 0;
	buf_init_view(&b, p, len);
	assert_int_equal(buf_get_u64(&b, &u64), 0);
	assert_true(u64 == 0x5353484b524c0a00ULL);
	assert_int_equal(buf_get_u32(&b, &u32), 0);
	assert_int_equal(u32, 1);
	assert_int_equal(buf_get_u64(&b, &u64), 0);	/* version */
	assert_int_equal(buf_get_u64(&b, &u64), 0);	/* date */
	assert_int_equal(buf_get_u64(&b, &u64), 0);	/* flags */
	assert_true(u64 == 0);
	assert_int_equal(buf_get_string_direct(&b, &data, &n, 0), 0);
	assert_int_equal(buf_get_string_direct(&b, &data, &n, 64), 0);
	while (buf_len(&b) > 0) {
		assert_int_equal(buf_get_u8(&b, &type), 0);
		assert_int_equal(buf_get_string_direct(&b, &data, &n,
		    BOTID_MAX_KRL), 0);
		buf_init_view(&s, data, n);
		if (type == 1) {
			assert_int_equal(buf_get_string_direct(&s, &blob,
			    &blob_len, 4096), 0);
			assert_int_equal(blob_len, ca_len);
			assert_memory_equal(blob, ca, ca_len);
			assert_int_equal(buf_get_string_direct(&s, &blob,
			    &blob_len, 0), 0);
			assert_int_equal(buf_get_u8(&s, &type), 0);
			assert_int_equal(type, 0x20);
			assert_int_equal(buf_get_string_direct(&s, &data, &n,
			    BOTID_MAX_KRL), 0);
			assert_int_equal(buf_len(&s), 0);
			buf_init_view(&l, data, n);
			while (buf_len(&l) > 0) {
				assert_int_equal(buf_get_u64(&l, &u64), 0);
				/* Sorted, each once, never 0. */
				assert_true(u64 > last);
				last = u64;
				serials[(*nserials)++] = u64;
			}
		} else {
			assert_int_equal(type, 2);
			while (buf_len(&s) > 0) {
				assert_int_equal(buf_get_string_direct(&s,
				    &blob, &blob_len, 4096), 0);
				if (prev != NULL)
					assert_true(blob_len != prev_len ||
					    memcmp(prev, blob, blob_len) < 0);
				prev = blob;
				prev_len = blob_len;
				(*nkeys)++;
			}
		}
	}
}

static void
test_sorted_once(void **state)
{
	struct ca_krl *a = NULL, *b = NULL;
	uint8_t ca[51], da[CA_KRL_DIGEST_LEN], db[CA_KRL_DIGEST_LEN];
	uint8_t *out = NULL;
	uint64_t serials[8];
	size_t len = 0, ns, nk;

	(void)state;
	ed25519_blob(0x22, ca);
	assert_int_equal(ca_krl_new(&a), 0);
	assert_int_equal(ca_krl_new(&b), 0);
	/* Two certificates of one key, serial 0 (key only), a repeat. */
	add_ed25519(a, 9, 0x33);
	add_ed25519(a, 3, 0x11);
	add_ed25519(a, 0, 0x44);
	add_ed25519(a, 5, 0x11);
	add_ed25519(a, 9, 0x33);
	add_ed25519(b, 5, 0x11);
	add_ed25519(b, 0, 0x44);
	add_ed25519(b, 9, 0x33);
	add_ed25519(b, 3, 0x11);
	assert_int_equal(ca_krl_digest(a, da), 0);
	assert_int_equal(ca_krl_digest(b, db), 0);
	assert_memory_equal(da, db, sizeof(da));
	assert_int_equal(ca_krl_encode(a, ca, sizeof(ca), 1, 2, "botid-ca",
	    &out, &len), 0);
	parse_back(out, len, ca, sizeof(ca), serials, &ns, &nk);
	assert_int_equal(ns, 3);
	assert_true(serials[0] == 3 && serials[1] == 5 && serials[2] == 9);
	assert_int_equal(nk, 3);
	free(out);
	/* One more revocation changes the digest. */
	add_ed25519(b, 11, 0x55);
	assert_int_equal(ca_krl_digest(b, db), 0);
	assert_memory_not_equal(da, db, sizeof(da));
	ca_krl_free(a);
	ca_krl_free(b);
}

static void
test_empty(void **state)
{
	struct ca_krl *krl = NULL;
	uint8_t ca[51], *out = NULL;
	size_t len = 0;

	(void)state;
	ed25519_blob(0x22, ca);
	assert_int_equal(ca_krl_new(&krl), 0);
	assert_int_equal(ca_krl_encode(krl, ca, sizeof(ca), 1, 2, NULL, &out,
	    &len), 0);
	assert_int_equal(len, HEADER_LEN);
	free(out);
	/* A key revoked with serial 0 only: no certificates section. */
	add_ed25519(krl, 0, 0x11);
	assert_int_equal(ca_krl_encode(krl, ca, sizeof(ca), 1, 2, NULL, &out,
	    &len), 0);
	assert_int_equal(len, HEADER_LEN + 1 + 4 + 4 + 51);
	assert_int_equal(out[HEADER_LEN], 2);
	free(out);
	assert_int_equal(ca_krl_encode(krl, ca, 0, 1, 2, NULL, &out, &len),
	    BOTID_ERR_INVALID);
	assert_null(out);
	assert_int_equal(len, 0);
	ca_krl_free(krl);
}

static void
test_bad_lines(void **state)
{
	static const char *const bad[] = {
		"",
		"ssh-ed25519",
		"ssh-ed25519 ",
		" AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERERERERER"
		    "ERERERER",
		"ssh-ed25519 !!!!",
		"ssh-ed25519 AAAA AAAA",	/* a blob of 3 bytes */
		/* an ssh-ed25519 blob under another name */
		"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERER"
		    "ERERERERERERER",
		/* a certificate's type, named as such */
		"ssh-ed25519-cert-v01@openssh.com "
		    "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIBE"
		    "REREREREREREREREREREREREREREREREREREREREREREREREREQ==",
	};
	struct ca_krl *krl = NULL;
	uint8_t ca[51], *out = NULL;
	char *line;
	size_t i, len = 0;

	(void)state;
	ed25519_blob(0x22, ca);
	assert_int_equal(ca_krl_new(&krl), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ca_krl_add(krl, 1, bad[i]), BOTID_ERR_INVALID);
	/* A base64 part longer than the largest key blob. */
	assert_non_null(line = malloc(16 + 4 * BOTID_SSH_MAX_KEY_BLOB));
	strcpy(line, "ssh-rsa ");
	memset(line + 8, 'A', 4 * BOTID_SSH_MAX_KEY_BLOB);
	line[8 + 4 * BOTID_SSH_MAX_KEY_BLOB] = '\0';
	assert_int_equal(ca_krl_add(krl, 1, line), BOTID_ERR_INVALID);
	free(line);
	/* Nothing refused was kept. */
	assert_int_equal(ca_krl_encode(krl, ca, sizeof(ca), 1, 2, NULL, &out,
	    &len), 0);
	assert_int_equal(len, HEADER_LEN);
	free(out);
	ca_krl_free(krl);
}

/* Past BOTID_MAX_KRL the list refuses more rather than grow. */
static void
test_too_large(void **state)
{
	struct botid_buf b;
	struct ca_krl *krl = NULL;
	uint8_t body[BOTID_SSH_MAX_KEY_BLOB - 15];
	char *b64 = NULL, *line = NULL;
	size_t added = 0;
	int r;

	(void)state;
	buf_init(&b, BOTID_SSH_MAX_KEY_BLOB);
	memset(body, 0x5a, sizeof(body));
	assert_int_equal(buf_put_string(&b, "ssh-rsa", 7), 0);
	assert_int_equal(buf_put_string(&b, body, sizeof(body)), 0);
	assert_int_equal(base64_encode(buf_ptr(&b), buf_len(&b), &b64), 0);
	assert_int_not_equal(asprintf(&line, "ssh-rsa %s", b64), -1);
	assert_int_equal(ca_krl_new(&krl), 0);
	while ((r = ca_krl_add(krl, added + 1, line)) == 0)
		added++;
	assert_int_equal(r, BOTID_ERR_TOO_LARGE);
	assert_true(added * (8 + 4 + buf_len(&b)) <= BOTID_MAX_KRL);
	assert_true((added + 1) * (8 + 4 + buf_len(&b)) > BOTID_MAX_KRL);
	free(b64);
	free(line);
	buf_reset(&b);
	ca_krl_free(krl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_sorted_once),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_too_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
