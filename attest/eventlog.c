/*
 * TCG PC Client event log replay (eventlog.h). The log comes from the
 * network: every field is read with lib/buf.c's bounded getters, every
 * count and size is capped by a named limit before it is used, and a
 * record of an algorithm the header did not declare ends the parse, since
 * its digest size would be a guess.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "attest/eventlog.h"
#include "lib/botid.h"
#include "lib/buf.h"
#include "lib/limits.h"

#define EV_NO_ACTION	0x00000003u
#define ALG_SHA1	0x0004u
#define ALG_SHA256	0x000bu
#define SPEC_ID_SIG	"Spec ID Event03"	/* and its NUL: 16 bytes */

/* Integers in the event log are little-endian, unlike the TPM's. */
static int
get_le32(struct botid_buf *b, uint32_t *v)
{
	uint8_t x[4];
	int r;

	if ((r = buf_get(b, x, sizeof(x))) != 0)
		return r;
	*v = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 |
	    (uint32_t)x[3] << 24;
	return 0;
}

static int
get_le16(struct botid_buf *b, uint16_t *v)
{
	uint8_t x[2];
	int r;

	if ((r = buf_get(b, x, sizeof(x))) != 0)
		return r;
	*v = (uint16_t)(x[0] | x[1] << 8);
	return 0;
}

struct alg {
	uint16_t	id;
	uint16_t	size;
};

/*
 * The first record: TCG_PCR_EVENT (SHA-1 format) carrying the Spec ID
 * event, which lists the digest algorithms and sizes of the records after.
 */
static int
spec_id_parse(struct botid_buf *b, struct alg *algs, uint32_t *nalgs,
    const char **why)
{
	struct botid_buf ev;
	const uint8_t *p, *data;
	uint32_t pcr, type, size, i, n;
	uint8_t vendor;
	int sha256 = 0;

	*why = "malformed Spec ID event";
	if (get_le32(b, &pcr) != 0 || get_le32(b, &type) != 0 ||
	    buf_get_direct(b, &p, 20) != 0 || get_le32(b, &size) != 0 ||
	    size > BOTID_MAX_EVENTLOG_EVENT ||
	    buf_get_direct(b, &data, size) != 0)
		return BOTID_ERR_PROTOCOL;
	if (pcr != 0 || type != EV_NO_ACTION || size < 16 ||
	    memcmp(data, SPEC_ID_SIG, 16) != 0) {
		*why = "not a crypto-agile (TCG 2.0) event log";
		return BOTID_ERR_UNSUPPORTED;
	}
	buf_init_view(&ev, data + 16, size - 16);
	/* platformClass, spec version minor/major, errata, uintnSize */
	if (buf_get_direct(&ev, &p, 8) != 0 || get_le32(&ev, &n) != 0)
		return BOTID_ERR_PROTOCOL;
	if (n == 0 || n > BOTID_MAX_EVENTLOG_ALGS)
		return BOTID_ERR_TOO_LARGE;
	for (i = 0; i < n; i++) {
		if (get_le16(&ev, &algs[i].id) != 0 ||
		    get_le16(&ev, &algs[i].size) != 0 ||
		    algs[i].size == 0 || algs[i].size > EVP_MAX_MD_SIZE)
			return BOTID_ERR_PROTOCOL;
		if (algs[i].id == ALG_SHA256) {
			if (algs[i].size != EVENTLOG_SHA256)
				return BOTID_ERR_PROTOCOL;
			sha256 = 1;
		}
	}
	if (buf_get_u8(&ev, &vendor) != 0 || buf_consume(&ev, vendor) != 0 ||
	    buf_len(&ev) != 0)
		return BOTID_ERR_PROTOCOL;
	if (!sha256) {
		*why = "the event log has no SHA-256 bank";
		return BOTID_ERR_UNSUPPORTED;
	}
	*nalgs = n;
	*why = NULL;
	return 0;
}

static int
extend(uint8_t pcr[EVENTLOG_SHA256], const uint8_t *digest)
{
	uint8_t in[2 * EVENTLOG_SHA256];
	unsigned int len = 0;

	memcpy(in, pcr, EVENTLOG_SHA256);
	memcpy(in + EVENTLOG_SHA256, digest, EVENTLOG_SHA256);
	if (EVP_Digest(in, sizeof(in), pcr, &len, EVP_sha256(), NULL) != 1 ||
	    len != EVENTLOG_SHA256)
		return BOTID_ERR_CRYPTO;
	return 0;
}

int
eventlog_replay(const uint8_t *log, size_t len,
    uint8_t pcrs[EVENTLOG_PCRS][EVENTLOG_SHA256], uint32_t *touched,
    const char **why)
{
	struct alg algs[BOTID_MAX_EVENTLOG_ALGS];
	struct botid_buf b;
	const uint8_t *p, *sha256;
	uint32_t nalgs = 0, pcr, type, count, size, events = 0, i, k;
	uint16_t id;
	int r;

	memset(pcrs, 0, EVENTLOG_PCRS * EVENTLOG_SHA256);
	*touched = 0;
	*why = NULL;
	if (len > BOTID_MAX_EVENTLOG) {
		*why = "event log too large";
		return BOTID_ERR_TOO_LARGE;
	}
	buf_init_view(&b, log, len);
	if ((r = spec_id_parse(&b, algs, &nalgs, why)) != 0)
		return r;
	*why = "malformed event record";
	while (buf_len(&b) > 0) {
		if (++events > BOTID_MAX_EVENTLOG_EVENTS) {
			*why = "too many events in the event log";
			return BOTID_ERR_TOO_LARGE;
		}
		if (get_le32(&b, &pcr) != 0 || get_le32(&b, &type) != 0 ||
		    get_le32(&b, &count) != 0)
			return BOTID_ERR_PROTOCOL;
		if (count != nalgs)
			return BOTID_ERR_PROTOCOL;
		sha256 = NULL;
		for (i = 0; i < count; i++) {
			if (get_le16(&b, &id) != 0)
				return BOTID_ERR_PROTOCOL;
			for (k = 0; k < nalgs && algs[k].id != id; k++)
				;
			if (k == nalgs) {
				*why = "an event's algorithm is not declared";
				return BOTID_ERR_PROTOCOL;
			}
			if (buf_get_direct(&b, &p, algs[k].size) != 0)
				return BOTID_ERR_PROTOCOL;
			if (id == ALG_SHA256)
				sha256 = p;
		}
		if (get_le32(&b, &size) != 0 ||
		    size > BOTID_MAX_EVENTLOG_EVENT ||
		    buf_get_direct(&b, &p, size) != 0)
			return BOTID_ERR_PROTOCOL;
		if (sha256 == NULL) {
			*why = "an event has no SHA-256 digest";
			return BOTID_ERR_PROTOCOL;
		}
		if (type == EV_NO_ACTION)
			continue;
		if (pcr >= EVENTLOG_PCRS) {
			*why = "an event names a PCR above 23";
			return BOTID_ERR_PROTOCOL;
		}
		if ((r = extend(pcrs[pcr], sha256)) != 0) {
			*why = "cannot hash";
			return r;
		}
		*touched |= 1u << pcr;
	}
	*why = NULL;
	return 0;
}
