/*
 * botid-ca's KRL encoder (ca-krl.h). sshd's parser (OpenSSH krl.c) takes
 * the sections in any order and merges repeats, but refuses serial 0, an
 * unknown section and any byte left over in one: so serials are sorted,
 * each once and never 0, and each section's length is written after its
 * content through the bounded buffer, never computed apart from it.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ca/ca-krl.h"
#include "lib/base64.h"
#include "lib/botid.h"
#include "lib/buf.h"
#include "lib/limits.h"

#define KRL_MAGIC			0x5353484b524c0a00ULL	/* SSHKRL\n\0 */
#define KRL_FORMAT_VERSION		1u
#define KRL_SECTION_CERTIFICATES	1u
#define KRL_SECTION_EXPLICIT_KEY	2u
#define KRL_SECTION_CERT_SERIAL_LIST	0x20u
#define KRL_CERT_SUFFIX			"-cert-v01@openssh.com"
#define KRL_MAX_KEY_TYPE		64u
/* Base64 of the largest key blob we accept, padded. */
#define KRL_MAX_KEY_BASE64	((BOTID_SSH_MAX_KEY_BLOB + 2u) / 3u * 4u)

struct krl_key {
	uint8_t	*blob;
	size_t	 len;
};

struct ca_krl {
	uint64_t	*serials;
	size_t		 nserials, serials_cap;
	struct krl_key	*keys;
	size_t		 nkeys, keys_cap;
	size_t		 bytes;		/* what the entries take encoded */
	int		 sorted;	/* sorted, each once, since last add */
};

int
ca_krl_new(struct ca_krl **krlp)
{
	*krlp = calloc(1, sizeof(**krlp));
	return *krlp != NULL ? 0 : BOTID_ERR_ALLOC;
}

void
ca_krl_free(struct ca_krl *krl)
{
	size_t i;

	if (krl == NULL)
		return;
	for (i = 0; i < krl->nkeys; i++)
		free(krl->keys[i].blob);
	free(krl->keys);
	free(krl->serials);
	free(krl);
}

/*
 * The blob of "TYPE BASE64[ COMMENT]": strict base64 of at most
 * BOTID_SSH_MAX_KEY_BLOB bytes whose first string is TYPE, a plain key's.
 */
static int
krl_key_blob(const char *line, uint8_t **blob, size_t *blob_len)
{
	struct botid_buf b, k;
	const uint8_t *type, *b64, *blob_type;
	size_t type_len, b64_len, blob_type_len, len = 0;
	size_t suffix = strlen(KRL_CERT_SUFFIX);
	char *text = NULL;
	uint8_t *data = NULL;
	int r = BOTID_ERR_INVALID;

	*blob = NULL;
	*blob_len = 0;
	buf_init_view(&b, line, strlen(line));
	if (buf_find_byte(&b, ' ', &type_len) != 0 || type_len == 0 ||
	    type_len > KRL_MAX_KEY_TYPE ||
	    buf_get_direct(&b, &type, type_len) != 0 ||
	    buf_consume(&b, 1) != 0)
		goto out;
	if (buf_find_byte(&b, ' ', &b64_len) != 0)
		b64_len = buf_len(&b);
	if (b64_len == 0 || b64_len > KRL_MAX_KEY_BASE64 ||
	    buf_get_direct(&b, &b64, b64_len) != 0)
		goto out;
	if ((text = strndup((const char *)b64, b64_len)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = base64_decode(text, BOTID_SSH_MAX_KEY_BLOB, &data,
	    &len)) != 0) {
		r = r == BOTID_ERR_ALLOC ? r : BOTID_ERR_INVALID;
		goto out;
	}
	r = BOTID_ERR_INVALID;
	buf_init_view(&k, data, len);
	if (buf_get_string_direct(&k, &blob_type, &blob_type_len,
	    KRL_MAX_KEY_TYPE) != 0 || blob_type_len != type_len ||
	    memcmp(blob_type, type, type_len) != 0 || buf_len(&k) == 0)
		goto out;
	/* A certificate in the explicit key section would revoke nothing. */
	if (type_len >= suffix && memcmp(type + type_len - suffix,
	    KRL_CERT_SUFFIX, suffix) == 0)
		goto out;
	*blob = data;
	*blob_len = len;
	data = NULL;
	r = 0;
 out:
	free(text);
	free(data);
	return r;
}

int
ca_krl_add(struct ca_krl *krl, uint64_t serial, const char *key_line)
{
	uint8_t *blob = NULL;
	size_t blob_len = 0, need;
	void *grown;
	int r;

	if ((r = krl_key_blob(key_line, &blob, &blob_len)) != 0)
		goto out;
	need = 4 + blob_len + (serial != 0 ? 8 : 0);
	if (krl->bytes > BOTID_MAX_KRL || need > BOTID_MAX_KRL - krl->bytes) {
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	if (krl->nkeys == krl->keys_cap) {
		if ((grown = reallocarray(krl->keys, krl->keys_cap * 2 + 8,
		    sizeof(*krl->keys))) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		krl->keys = grown;
		krl->keys_cap = krl->keys_cap * 2 + 8;
	}
	if (serial != 0 && krl->nserials == krl->serials_cap) {
		if ((grown = reallocarray(krl->serials,
		    krl->serials_cap * 2 + 8, sizeof(*krl->serials))) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		krl->serials = grown;
		krl->serials_cap = krl->serials_cap * 2 + 8;
	}
	krl->keys[krl->nkeys].blob = blob;
	krl->keys[krl->nkeys++].len = blob_len;
	blob = NULL;
	if (serial != 0)
		krl->serials[krl->nserials++] = serial;
	krl->bytes += need;
	krl->sorted = 0;
	r = 0;
 out:
	free(blob);
	return r;
}

static int
serial_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Byte order, a key that is a prefix of another first. */
static int
key_cmp(const void *a, const void *b)
{
	const struct krl_key *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c;

	if ((c = memcmp(x->blob, y->blob, n)) != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Sorts both lists and drops repeats: one bot key in many certificates. */
static void
krl_sort(struct ca_krl *krl)
{
	size_t i, n;

	if (krl->sorted)
		return;
	if (krl->nserials > 0) {
		qsort(krl->serials, krl->nserials, sizeof(*krl->serials),
		    serial_cmp);
		for (i = n = 1; i < krl->nserials; i++)
			if (krl->serials[i] != krl->serials[n - 1])
				krl->serials[n++] = krl->serials[i];
		krl->nserials = n;
	}
	if (krl->nkeys > 0) {
		qsort(krl->keys, krl->nkeys, sizeof(*krl->keys), key_cmp);
		for (i = n = 1; i < krl->nkeys; i++) {
			if (key_cmp(&krl->keys[i], &krl->keys[n - 1]) != 0)
				krl->keys[n++] = krl->keys[i];
			else
				free(krl->keys[i].blob);
		}
		krl->nkeys = n;
	}
	krl->sorted = 1;
}

/* A section's type and a length filled in by krl_section_end(). */
static int
krl_section_begin(struct botid_buf *b, uint8_t type, size_t *pos)
{
	int r;

	if ((r = buf_put_u8(b, type)) != 0)
		return r;
	*pos = buf_len(b);
	return buf_put_u32(b, 0);
}

static int
krl_section_end(struct botid_buf *b, size_t pos)
{
	size_t n = buf_len(b) - pos;

	if (n < 4 || n - 4 > UINT32_MAX)
		return BOTID_ERR_INTERNAL;
	return buf_poke_u32(b, pos, (uint32_t)(n - 4));
}

/* The sections after the header; an empty ca_key only for the digest. */
static int
krl_put_sections(struct ca_krl *krl, const uint8_t *ca_key, size_t ca_key_len,
    struct botid_buf *b)
{
	size_t i, outer, inner;
	int r;

	krl_sort(krl);
	if (krl->nserials > 0) {
		if ((r = krl_section_begin(b, KRL_SECTION_CERTIFICATES,
		    &outer)) != 0 ||
		    (r = buf_put_string(b, ca_key, ca_key_len)) != 0 ||
		    (r = buf_put_string(b, NULL, 0)) != 0 ||	/* reserved */
		    (r = krl_section_begin(b, KRL_SECTION_CERT_SERIAL_LIST,
		    &inner)) != 0)
			return r;
		for (i = 0; i < krl->nserials; i++)
			if ((r = buf_put_u64(b, krl->serials[i])) != 0)
				return r;
		if ((r = krl_section_end(b, inner)) != 0 ||
		    (r = krl_section_end(b, outer)) != 0)
			return r;
	}
	if (krl->nkeys > 0) {
		if ((r = krl_section_begin(b, KRL_SECTION_EXPLICIT_KEY,
		    &outer)) != 0)
			return r;
		for (i = 0; i < krl->nkeys; i++)
			if ((r = buf_put_string(b, krl->keys[i].blob,
			    krl->keys[i].len)) != 0)
				return r;
		if ((r = krl_section_end(b, outer)) != 0)
			return r;
	}
	return 0;
}

int
ca_krl_digest(struct ca_krl *krl, uint8_t digest[CA_KRL_DIGEST_LEN])
{
	struct botid_buf b;
	unsigned int n = 0;
	int r;

	buf_init(&b, BOTID_MAX_KRL);
	if ((r = krl_put_sections(krl, NULL, 0, &b)) != 0)
		goto out;
	if (EVP_Digest(buf_ptr(&b), buf_len(&b), digest, &n, EVP_sha256(),
	    NULL) != 1 || n != CA_KRL_DIGEST_LEN) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	r = 0;
 out:
	buf_reset(&b);
	return r;
}

int
ca_krl_encode(struct ca_krl *krl, const uint8_t *ca_key, size_t ca_key_len,
    uint64_t version, uint64_t date, const char *comment, uint8_t **out,
    size_t *out_len)
{
	struct botid_buf b;
	int r;

	*out = NULL;
	*out_len = 0;
	buf_init(&b, BOTID_MAX_KRL);
	if (ca_key == NULL || ca_key_len == 0) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if (comment == NULL)
		comment = "";
	if ((r = buf_put_u64(&b, KRL_MAGIC)) != 0 ||
	    (r = buf_put_u32(&b, KRL_FORMAT_VERSION)) != 0 ||
	    (r = buf_put_u64(&b, version)) != 0 ||
	    (r = buf_put_u64(&b, date)) != 0 ||
	    (r = buf_put_u64(&b, 0)) != 0 ||			/* flags */
	    (r = buf_put_string(&b, NULL, 0)) != 0 ||		/* reserved */
	    (r = buf_put_string(&b, comment, strlen(comment))) != 0 ||
	    (r = krl_put_sections(krl, ca_key, ca_key_len, &b)) != 0)
		goto out;
	if ((*out = malloc(buf_len(&b))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	memcpy(*out, buf_ptr(&b), buf_len(&b));
	*out_len = buf_len(&b);
	r = 0;
 out:
	buf_reset(&b);
	return r;
}
