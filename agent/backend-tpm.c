/*
 * The TPM 2.0 backend: each bot's key is created by the TPM under the owner
 * hierarchy's storage primary, non-exportable, and kept on disk only as
 * the TPM-wrapped blob state_dir/tpm/<bot>.tss2.pem, in the "TSS2 PRIVATE
 * KEY" format that the OpenSSL tpm2 provider and tpm2-tools also read.
 *
 * Why it is built this way:
 *  - The primary is the one tpm2-openssl recreates for parent 0x40000001
 *    (its primaryEccTemplate, or the RSA one on a TPM without ECC), so
 *    `openssl ... -provider tpm2 -in <bot>.tss2.pem` loads our blobs. It is
 *    created once per connection and kept loaded: CreatePrimary costs as
 *    much as many signatures, and on a real chip RSA takes seconds.
 *  - TPMs hold very few transient objects (swtpm and the kernel resource
 *    manager: 3), so at most loaded_keys bot keys stay loaded, the least
 *    recently used one is flushed to make room, and keys are reloaded
 *    from the in-memory copy of their blob: signing never touches a file.
 *    TPM2_RC_OBJECT_MEMORY (a slot held by someone else) evicts one more.
 *  - Saved contexts do not survive a TPM reset, but blobs reloaded under a
 *    re-created primary do. So when the link breaks or the TPM forgets our
 *    handles (TCTI error, TPM2_RC_INITIALIZE, handle errors) every handle
 *    is dropped, the TCTI and ESYS contexts are made anew, Startup(CLEAR)
 *    is sent (TPM2_RC_INITIALIZE means someone already did), the primary is
 *    re-created and the operation is retried once.
 *  - Keys have an empty password, so they are created noDA: dictionary
 *    attack protection guards nothing there, and would lock every bot out
 *    after a few unclean TPM shutdowns (power cuts, a killed swtpm).
 *  - An ESYS context is not thread-safe: one mutex covers all ESYS use.
 *  - A blob file is untrusted input: it is size-capped, parsed by
 *    OpenSSL's ASN.1 templates and the bounded Tss2_MU unmarshallers with
 *    no trailing bytes, its public area is checked against the bot's
 *    configuration, and it is loaded before use: TPM2_Load verifies that
 *    the wrapped private part belongs to that public area, this TPM and
 *    this primary.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "agent/backend.h"
#include "agent/config.h"
#include "attest/evidence.h"
#include "attest/host-state.h"
#include "attest/tpm-templates.h"
#include "lib/error.h"
#include "lib/file.h"
#include "lib/limits.h"
#include "lib/log.h"

#define TPM_SUBDIR		"tpm"
#define TPM_BLOB_SUFFIX		".tss2.pem"
/* TPM2_TRANSIENT_FIRST, without the header's signed shift (UB). */
#define TPM_TRANSIENT_FIRST	((TPM2_HC)0x80000000u)
#define TPM_BLOB_PEM_NAME	"TSS2 PRIVATE KEY"
#define TPM_BLOB_OID		"2.23.133.10.1.3"	/* TCG loadableKey */
#define TPM_BLOB_MAX		(16u * 1024u)	/* real blobs are < 2 KiB */
#define TPM_MAX_LOADED		64u	/* no TPM has more object slots */
#define TPM_MAX_MEMORY_RETRY	8	/* OBJECT_MEMORY evictions per call */

/*
 * An operation saw the TPM link break or the TPM forget our objects: the
 * caller reconnects and retries. Positive, so never mistaken for a botid
 * error code, and never returned from this file.
 */
#define TPM_LOST		1

/* Attributes every bot key has; without the first three it could leave. */
#define TPM_ATTR_NON_EXPORTABLE	(TPMA_OBJECT_FIXEDTPM | \
	TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN)
#define TPM_ATTR_KEY		(TPM_ATTR_NON_EXPORTABLE | \
	TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT)
#define TPM_ATTR_FORBIDDEN	(TPMA_OBJECT_DECRYPT | TPMA_OBJECT_RESTRICTED)

struct tpm_kind {
	enum botid_key_type	 type;
	const char		*name;
	TPMI_ALG_PUBLIC		 alg;
	TPMI_ECC_CURVE		 curve;		/* ECC */
	const char		*group;		/* ECC: OpenSSL group name */
	uint16_t		 rsa_bits;	/* RSA */
	size_t			 sig_len;	/* raw signature bytes */
};

static const struct tpm_kind tpm_kinds[] = {
	{ BOTID_KEY_ECDSA_P256, "ecdsa-p256", TPM2_ALG_ECC, TPM2_ECC_NIST_P256,
	    "prime256v1", 0, 64 },
	{ BOTID_KEY_ECDSA_P384, "ecdsa-p384", TPM2_ALG_ECC, TPM2_ECC_NIST_P384,
	    "secp384r1", 0, 96 },
	{ BOTID_KEY_RSA_2048, "rsa-2048", TPM2_ALG_RSA, 0, NULL, 2048, 256 },
	{ BOTID_KEY_RSA_3072, "rsa-3072", TPM2_ALG_RSA, 0, NULL, 3072, 384 },
};

struct botid_key {
	char			 name[BOTID_MAX_KEY_NAME + 1];
	const struct tpm_kind	*kind;
	TPM2B_PUBLIC		 pub;
	TPM2B_PRIVATE		 priv;
	ESYS_TR			 handle;	/* ESYS_TR_NONE: not loaded */
	uint64_t		 used;		/* LRU clock at last use */
	uint8_t			*saved;		/* marshalled TPMS_CONTEXT */
	size_t			 saved_len;
	unsigned		 saved_gen;	/* be->generation it is for */
	/*
	 * The TPM has loaded the blob (or made the key): it is this TPM's,
	 * under this primary. A key opened unproven is not, until then.
	 */
	int			 proven;
	/* handle != ESYS_TR_NONE, for tpm_key_loaded() (no lock there). */
	atomic_int		 resident;
};

struct tpm_backend {
	struct botid_backend	 base;		/* first: we are cast from it */
	pthread_mutex_t		 lock;		/* everything below */
	char			*tcti_conf;	/* NULL: tpm2-tss default */
	char			*dir_path;	/* state_dir/tpm, for messages */
	char			*state_dir;	/* for the host keys' blobs */
	int			 dir_fd;
	TSS2_TCTI_CONTEXT	*tcti;		/* NULL: disconnected */
	ESYS_CONTEXT		*esys;
	ESYS_TR			 primary;
	struct botid_key	**loaded;	/* max_loaded slots, NULL = free */
	unsigned		 max_loaded;
	unsigned		 nloaded;
	uint64_t		 clock;
	unsigned		 generation;	/* connections made so far */
	unsigned		 tmp_seq;	/* temporary file names */
	struct botid_key	*ak;		/* attestation key, or NULL */
	struct botid_key	*hostkey;	/* host key, or NULL */
	int			 hostkey_ecc;
};

/*
 * The TPMKey ASN.1 structure of "TSS2 PRIVATE KEY" files (as written by
 * tpm2-openssl, tpm2-tss-engine and tpm2-tools):
 *   TPMKey ::= SEQUENCE { type OBJECT IDENTIFIER, emptyAuth [0] EXPLICIT
 *       BOOLEAN OPTIONAL, parent INTEGER, pubkey OCTET STRING,
 *       privkey OCTET STRING }
 */
typedef struct {
	ASN1_OBJECT		*type;
	ASN1_BOOLEAN		 empty_auth;	/* -1: absent */
	ASN1_INTEGER		*parent;
	ASN1_OCTET_STRING	*pubkey;	/* marshalled TPM2B_PUBLIC */
	ASN1_OCTET_STRING	*privkey;	/* marshalled TPM2B_PRIVATE */
} TPM_KEY_BLOB;

ASN1_SEQUENCE(TPM_KEY_BLOB) = {
	ASN1_SIMPLE(TPM_KEY_BLOB, type, ASN1_OBJECT),
	ASN1_EXP_OPT(TPM_KEY_BLOB, empty_auth, ASN1_BOOLEAN, 0),
	ASN1_SIMPLE(TPM_KEY_BLOB, parent, ASN1_INTEGER),
	ASN1_SIMPLE(TPM_KEY_BLOB, pubkey, ASN1_OCTET_STRING),
	ASN1_SIMPLE(TPM_KEY_BLOB, privkey, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(TPM_KEY_BLOB)

IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(TPM_KEY_BLOB)
IMPLEMENT_STATIC_ASN1_ENCODE_FUNCTIONS(TPM_KEY_BLOB)

/* Keys are unrestricted: Sign takes any digest with a NULL ticket. */
static const TPMT_TK_HASHCHECK tpm_null_ticket = {
	.tag = TPM2_ST_HASHCHECK,
	.hierarchy = TPM2_RH_NULL,
	.digest = { .size = 0 },
};

static const TPM2B_SENSITIVE_CREATE tpm_empty_sensitive;
static const TPM2B_DATA tpm_empty_outside_info;
static const TPML_PCR_SELECTION tpm_empty_pcrs;

static int	tpm_key_open(struct botid_backend *,
		    const struct botid_bot_config *, struct botid_key **,
		    uint8_t **, size_t *);
static int	tpm_sign(struct botid_backend *, struct botid_key *,
		    const struct botid_sign_params *, const uint8_t *, size_t,
		    uint8_t **, size_t *);
static int	tpm_key_attributes(struct botid_backend *, struct botid_key *,
		    struct botid_key_attribute *, size_t *);
static void	tpm_key_close(struct botid_backend *, struct botid_key *);
static int	tpm_key_remove(struct botid_backend *,
		    const struct botid_bot_config *);
static int	tpm_key_exists(struct botid_backend *,
		    const struct botid_bot_config *);
static int	tpm_key_open_unproven(struct botid_backend *,
		    const struct botid_bot_config *, struct botid_key **,
		    uint8_t **, size_t *);
static int	tpm_key_prove(struct botid_backend *, struct botid_key *);
static int	tpm_key_loaded(struct botid_backend *, struct botid_key *);
static void	tpm_close(struct botid_backend *);
static int	tpm_blob_read(struct tpm_backend *, struct botid_key *,
		    const char *);

static const struct botid_backend_ops tpm_ops = {
	.name = "tpm",
	.key_open = tpm_key_open,
	.key_exists = tpm_key_exists,
	.key_open_unproven = tpm_key_open_unproven,
	.key_prove = tpm_key_prove,
	.key_loaded = tpm_key_loaded,
	.sign = tpm_sign,
	.key_attributes = tpm_key_attributes,
	.key_close = tpm_key_close,
	.key_remove = tpm_key_remove,
	.close = tpm_close,
};

/* ------------------------------------------------------------------ */
/* Small helpers */

static const struct tpm_kind *
tpm_kind_find(enum botid_key_type type)
{
	size_t i;

	for (i = 0; i < sizeof(tpm_kinds) / sizeof(tpm_kinds[0]); i++)
		if (tpm_kinds[i].type == type)
			return &tpm_kinds[i];
	return NULL;
}

/* Our own copy of the digest sizes: lib/wire.c is not linked here. */
static int
tpm_hash_lookup(uint32_t hash, TPMI_ALG_HASH *alg, size_t *len)
{
	switch (hash) {
	case BOTID_HASH_SHA256:
		*alg = TPM2_ALG_SHA256;
		*len = 32;
		return 0;
	case BOTID_HASH_SHA384:
		*alg = TPM2_ALG_SHA384;
		*len = 48;
		return 0;
	case BOTID_HASH_SHA512:
		*alg = TPM2_ALG_SHA512;
		*len = 64;
		return 0;
	}
	return BOTID_ERR_UNSUPPORTED;
}

/*
 * Key names become file names: a bot name ([A-Za-z0-9._-]{1,64}, no
 * leading dot), then "~GEN" for a rotated key, then "+jwt" for a token key.
 */
static int
tpm_bot_name_valid(const char *name)
{
	const char *tilde;
	size_t i, len;

	if (name == NULL || (len = strlen(name)) == 0 ||
	    len > BOTID_MAX_KEY_NAME || name[0] == '.')
		return 0;
	/* A token key: the signing key's name, then "+jwt". */
	if (len > strlen(BOTID_TOKEN_KEY_SUFFIX) &&
	    strcmp(name + len - strlen(BOTID_TOKEN_KEY_SUFFIX),
	    BOTID_TOKEN_KEY_SUFFIX) == 0)
		len -= strlen(BOTID_TOKEN_KEY_SUFFIX);
	if ((tilde = memchr(name, '~', len)) != NULL) {
		if (tilde[1] < '1' || tilde[1] > '9' ||
		    strspn(tilde + 1, "0123456789") !=
		    len - (size_t)(tilde + 1 - name) ||
		    len - (size_t)(tilde + 1 - name) > 10)
			return 0;
		len = (size_t)(tilde - name);
	}
	if (len == 0 || len > BOTID_MAX_BOT_NAME)
		return 0;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int
tpm_rc_is_tpm_layer(TSS2_RC rc)
{
	return (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER;
}

static int
tpm_rc_is_object_memory(TSS2_RC rc)
{
	return tpm_rc_is_tpm_layer(rc) && (rc == TPM2_RC_OBJECT_MEMORY ||
	    rc == TPM2_RC_OBJECT_HANDLES);
}

/*
 * Whether rc says the link to the TPM broke or the TPM lost our objects
 * (it was reset, or someone flushed them), so that reconnecting and
 * reloading may cure it.
 */
static int
tpm_rc_is_lost(TSS2_RC rc)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK, base = rc & 0xffffu;

	if (layer == TSS2_TCTI_RC_LAYER)
		return 1;
	if (layer == TSS2_ESAPI_RC_LAYER || layer == TSS2_SYS_RC_LAYER)
		return base == TSS2_BASE_RC_IO_ERROR ||
		    base == TSS2_BASE_RC_NO_CONNECTION ||
		    base == TSS2_BASE_RC_MALFORMED_RESPONSE ||
		    base == TSS2_BASE_RC_INSUFFICIENT_RESPONSE ||
		    base == TSS2_BASE_RC_BAD_SEQUENCE;
	if (layer != TSS2_TPM_RC_LAYER)
		return 0;
	if (rc == TPM2_RC_INITIALIZE)
		return 1;
	if ((rc & TPM2_RC_FMT1) != 0)
		return (rc & 0x3fu) == (TPM2_RC_HANDLE & 0x3fu) &&
		    (rc & TPM2_RC_P) == 0 && (rc & TPM2_RC_S) == 0;
	return rc >= TPM2_RC_REFERENCE_H0 && rc <= TPM2_RC_REFERENCE_H6;
}

/*
 * Translates a failed TSS call: TPM_LOST when a reconnect may help (logged
 * at debug level: the caller decides whether it is worth more), else
 * BOTID_ERR_TPM with one log line naming the bot, the step and the TSS
 * code.
 */
static int
tpm_rc_check(TSS2_RC rc, const char *bot, const char *what)
{
	if (rc == TSS2_RC_SUCCESS)
		return 0;
	if (tpm_rc_is_lost(rc)) {
		log_debug("tpm: %s%s%s%s: TPM lost (0x%x %s)",
		    bot != NULL ? "bot '" : "", bot != NULL ? bot : "",
		    bot != NULL ? "': " : "", what, rc, Tss2_RC_Decode(rc));
		return TPM_LOST;
	}
	log_err("tpm: %s%s%s%s: 0x%x %s",
	    bot != NULL ? "bot '" : "", bot != NULL ? bot : "",
	    bot != NULL ? "': " : "", what, rc, Tss2_RC_Decode(rc));
	return BOTID_ERR_TPM;
}

/* ------------------------------------------------------------------ */
/* Connection, primary and slots. All with be->lock held. */

static void
tpm_slot_forget(struct tpm_backend *be, struct botid_key *key)
{
	unsigned i;

	for (i = 0; i < be->max_loaded; i++) {
		if (be->loaded[i] == key) {
			be->loaded[i] = NULL;
			be->nloaded--;
			break;
		}
	}
	key->handle = ESYS_TR_NONE;
	atomic_store_explicit(&key->resident, 0, memory_order_relaxed);
}

/* Flushes a loaded key; failures only cost a slot until the next reset. */
static void
tpm_key_unload(struct tpm_backend *be, struct botid_key *key)
{
	TSS2_RC rc;

	if (key->handle == ESYS_TR_NONE)
		return;
	if (be->esys != NULL &&
	    (rc = Esys_FlushContext(be->esys, key->handle)) != 0) {
		log_debug("tpm: bot '%s': flushing: 0x%x %s", key->name, rc,
		    Tss2_RC_Decode(rc));
		/* ESYS keeps its metadata when the flush fails. */
		Esys_TR_Close(be->esys, &key->handle);
	}
	tpm_slot_forget(be, key);
}

/* Drops key's saved context. */
static void
tpm_context_drop(struct botid_key *key)
{
	free(key->saved);
	key->saved = NULL;
	key->saved_len = 0;
}

/*
 * Saves a loaded key's context, marshalled: the TPMS_CONTEXT ESYS hands
 * out is 5 KiB whatever it holds, a P-256 key's is a tenth of that.
 * Failure only means the next load reads the blob.
 */
static void
tpm_context_save(struct tpm_backend *be, struct botid_key *key)
{
	TPMS_CONTEXT *ctx = NULL;
	uint8_t buf[sizeof(TPMS_CONTEXT)];
	size_t off = 0;

	tpm_context_drop(key);
	if (Esys_ContextSave(be->esys, key->handle, &ctx) != 0 ||
	    Tss2_MU_TPMS_CONTEXT_Marshal(ctx, buf, sizeof(buf), &off) != 0 ||
	    (key->saved = malloc(off)) == NULL) {
		Esys_Free(ctx);
		return;
	}
	memcpy(key->saved, buf, off);
	key->saved_len = off;
	key->saved_gen = be->generation;
	Esys_Free(ctx);
}

/* Makes room by flushing the least recently used key other than keep. */
static int
tpm_evict_lru(struct tpm_backend *be, const struct botid_key *keep)
{
	struct botid_key *victim = NULL;
	unsigned i;

	for (i = 0; i < be->max_loaded; i++) {
		struct botid_key *k = be->loaded[i];

		if (k != NULL && k != keep &&
		    (victim == NULL || k->used < victim->used))
			victim = k;
	}
	if (victim == NULL)
		return BOTID_ERR_BUSY;
	log_debug("tpm: evicting bot '%s'", victim->name);
	/*
	 * Its context, saved once per connection, comes back with
	 * ContextLoad, which costs the TPM a decryption and an HMAC where
	 * Load of the blob also checks the key pair. The context dies with
	 * a TPM reset; tpm_key_load then falls back to the blob.
	 */
	if (victim->saved == NULL || victim->saved_gen != be->generation)
		tpm_context_save(be, victim);
	tpm_key_unload(be, victim);
	return 0;
}

/*
 * Drops the connection. With flush, loaded objects are flushed first (the
 * TPM still holds them: on a TPM without a resource manager they would
 * otherwise keep their slots); without, the TPM is presumed gone or reset.
 */
static void
tpm_disconnect(struct tpm_backend *be, int flush)
{
	unsigned i;

	for (i = 0; i < be->max_loaded; i++) {
		struct botid_key *k = be->loaded[i];

		if (k == NULL)
			continue;
		if (flush)
			tpm_key_unload(be, k);
		else
			tpm_slot_forget(be, k);
	}
	if (be->esys != NULL && be->primary != ESYS_TR_NONE && flush)
		(void)Esys_FlushContext(be->esys, be->primary);
	be->primary = ESYS_TR_NONE;
	if (be->esys != NULL)
		Esys_Finalize(&be->esys);
	be->esys = NULL;
	if (be->tcti != NULL)
		Tss2_TctiLdr_Finalize(&be->tcti);
	be->tcti = NULL;
}

/* Mirrors tpm2-openssl: the ECC primary when the TPM has ECC, else RSA. */
static int
tpm_primary_template(struct tpm_backend *be, const TPM2B_PUBLIC **tmpl)
{
	TSS2_RC rc;
	int ecc, r;

	*tmpl = NULL;
	rc = tpm_templates_have_ecc(be->esys, &ecc);
	if ((r = tpm_rc_check(rc, NULL, "cannot read the TPM's algorithms")) != 0)
		return r;
	*tmpl = ecc ? &tpm_template_srk_ecc : &tpm_template_srk_rsa;
	return 0;
}

/*
 * Computes an object's TPM name from its public area: nameAlg followed by
 * the nameAlg digest of the marshalled TPMT_PUBLIC (TPM 2.0 part 1, 16).
 */
static int
tpm_public_name(const TPM2B_PUBLIC *pub, TPM2B_NAME *name)
{
	uint8_t buf[sizeof(TPMT_PUBLIC)];
	const EVP_MD *md;
	unsigned int dlen = 0;
	size_t off = 0;

	memset(name, 0, sizeof(*name));
	switch (pub->publicArea.nameAlg) {
	case TPM2_ALG_SHA1:
		md = EVP_sha1();
		break;
	case TPM2_ALG_SHA256:
		md = EVP_sha256();
		break;
	case TPM2_ALG_SHA384:
		md = EVP_sha384();
		break;
	case TPM2_ALG_SHA512:
		md = EVP_sha512();
		break;
	default:
		return BOTID_ERR_UNSUPPORTED;
	}
	if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, buf, sizeof(buf),
	    &off) != 0 || (size_t)EVP_MD_get_size(md) >
	    sizeof(name->name) - 2)
		return BOTID_ERR_INTERNAL;
	name->name[0] = (uint8_t)(pub->publicArea.nameAlg >> 8);
	name->name[1] = (uint8_t)pub->publicArea.nameAlg;
	if (EVP_Digest(buf, off, name->name + 2, &dlen, md, NULL) <= 0)
		return BOTID_ERR_INTERNAL;
	name->size = (UINT16)(dlen + 2);
	return 0;
}

static int
tpm_name_equal(const TPM2B_NAME *a, const TPM2B_NAME *b)
{
	return a->size != 0 && a->size == b->size &&
	    a->size <= sizeof(a->name) && memcmp(a->name, b->name, a->size) == 0;
}

/* Whether name is that of key (its public area); NULL key: no. */
static int
tpm_name_is_key(const TPM2B_NAME *name, const struct botid_key *key)
{
	TPM2B_NAME kn;

	return key != NULL && key->pub.size != 0 &&
	    tpm_public_name(&key->pub, &kn) == 0 && tpm_name_equal(name, &kn);
}

/*
 * Whether name is one of the bot keys whose blobs are in state_dir/tpm:
 * what an agent killed with them loaded leaves behind. The blobs are
 * read with the same checks as for signing; unreadable ones match nothing.
 */
static int
tpm_name_is_blob(struct tpm_backend *be, const TPM2B_NAME *name)
{
	static const size_t suffix_len = sizeof(TPM_BLOB_SUFFIX) - 1;
	struct botid_key *scan = NULL;
	struct dirent *de;
	DIR *d = NULL;
	size_t len;
	int fd, found = 0;

	if ((fd = dup(be->dir_fd)) == -1)
		goto out;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		goto out;
	}
	rewinddir(d);
	if ((scan = calloc(1, sizeof(*scan))) == NULL)
		goto out;
	scan->handle = ESYS_TR_NONE;
	while (!found && (de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= suffix_len ||
		    strcmp(de->d_name + len - suffix_len, TPM_BLOB_SUFFIX) != 0)
			continue;
		snprintf(scan->name, sizeof(scan->name), "%.*s",
		    (int)(len - suffix_len), de->d_name);
		memset(&scan->pub, 0, sizeof(scan->pub));
		if (tpm_blob_read(be, scan, de->d_name) == 0)
			found = tpm_name_is_key(name, scan);
	}
 out:
	if (d != NULL)
		closedir(d);
	if (scan != NULL)
		OPENSSL_cleanse(&scan->priv, sizeof(scan->priv));
	free(scan);
	return found;
}

/*
 * Whether name is the attestation or host key's: from the keys handed
 * over, or before that (at the first connection) from their public areas
 * in state_dir/attest (ak.pub, hostkey.pub: marshalled TPM2B_PUBLIC, as
 * attest/host-state.c writes them), which a killed agent may have left
 * loaded too. Unreadable files match nothing.
 */
static int
tpm_name_is_host_key(struct tpm_backend *be, const TPM2B_NAME *name)
{
	static const char *const files[] = { "attest/ak.pub",
	    "attest/hostkey.pub" };
	struct botid_key k;
	uint8_t *data = NULL;
	char *path = NULL;
	size_t i, len, off;
	int found = 0;

	if (be->ak != NULL || be->hostkey != NULL)
		return tpm_name_is_key(name, be->ak) ||
		    tpm_name_is_key(name, be->hostkey);
	for (i = 0; !found && i < sizeof(files) / sizeof(files[0]); i++) {
		memset(&k, 0, sizeof(k));
		off = 0;
		if (asprintf(&path, "%s/%s", be->state_dir, files[i]) == -1) {
			path = NULL;
			break;
		}
		if (file_read(path, sizeof(TPM2B_PUBLIC) + 16, &data,
		    &len) == 0 && Tss2_MU_TPM2B_PUBLIC_Unmarshal(data, len,
		    &off, &k.pub) == 0 && off == len)
			found = tpm_name_is_key(name, &k);
		free(data);
		data = NULL;
		free(path);
		path = NULL;
	}
	return found;
}

/* Whether TPM handle h is one this connection holds. */
static int
tpm_handle_is_live(struct tpm_backend *be, TPM2_HANDLE h)
{
	TPM2_HANDLE th;
	unsigned i;

	if (be->primary != ESYS_TR_NONE &&
	    Esys_TR_GetTpmHandle(be->esys, be->primary, &th) == 0 && th == h)
		return 1;
	for (i = 0; i < be->max_loaded; i++) {
		struct botid_key *k = be->loaded[i];

		if (k != NULL && k->handle != ESYS_TR_NONE &&
		    Esys_TR_GetTpmHandle(be->esys, k->handle, &th) == 0 &&
		    th == h)
			return 1;
	}
	return 0;
}

/*
 * Flushes the transient objects an earlier run of this agent left in the
 * TPM, and only those. Under a resource manager a connection sees none
 * but its own; without one (a bare /dev/tpm0, swtpm over TCP) it sees
 * every client's, and the ones of a process killed while holding them
 * keep their slots until someone flushes them. An object is ours when
 * its name is that of our storage primary (CreatePrimary is
 * deterministic: the dead agent's primary has the same name) or of a key
 * whose blob is in state_dir/tpm, or of the attestation or host key.
 * Another client that loaded one of these very objects cannot be told
 * apart; any other object stays. Returns how many were flushed.
 */
static unsigned
tpm_flush_orphans(struct tpm_backend *be)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = TPM2_NO;
	TPM2B_NAME *name = NULL, *primary = NULL;
	TPM2_HANDLE h;
	ESYS_TR tr;
	unsigned n = 0;
	UINT32 i;
	int ours;

	if (be->primary != ESYS_TR_NONE &&
	    Esys_TR_GetName(be->esys, be->primary, &primary) != 0)
		primary = NULL;
	if (Esys_GetCapability(be->esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, TPM2_CAP_HANDLES, TPM_TRANSIENT_FIRST,
	    TPM2_MAX_CAP_HANDLES, &more, &cap) != 0 || cap == NULL)
		goto out;
	for (i = 0; i < cap->data.handles.count &&
	    i < TPM2_MAX_CAP_HANDLES; i++) {
		h = cap->data.handles.handle[i];
		if ((h & 0xff000000u) != TPM_TRANSIENT_FIRST ||
		    tpm_handle_is_live(be, h))
			continue;
		if (Esys_TR_FromTPMPublic(be->esys, h, ESYS_TR_NONE,
		    ESYS_TR_NONE, ESYS_TR_NONE, &tr) != 0)
			continue;
		if (Esys_TR_GetName(be->esys, tr, &name) != 0) {
			(void)Esys_TR_Close(be->esys, &tr);
			continue;
		}
		ours = (primary != NULL && tpm_name_equal(name, primary)) ||
		    tpm_name_is_host_key(be, name) ||
		    tpm_name_is_blob(be, name);
		Esys_Free(name);
		name = NULL;
		if (!ours) {
			log_debug("tpm: leaving transient object 0x%08x: not "
			    "ours", h);
			(void)Esys_TR_Close(be->esys, &tr);
			continue;
		}
		if (Esys_FlushContext(be->esys, tr) == 0) {
			log_debug("tpm: flushed our transient object 0x%08x",
			    h);
			n++;
		} else
			(void)Esys_TR_Close(be->esys, &tr);
	}
 out:
	Esys_Free(primary);
	Esys_Free(cap);
	return n;
}

/*
 * Opens the TCTI and ESYS contexts, starts the TPM if nobody did, and
 * creates the storage primary. Returns 0, TPM_LOST, BOTID_ERR_UNAVAILABLE
 * (no TPM there) or BOTID_ERR_TPM; leaves be disconnected on failure.
 * Objects an earlier run left behind (killed with SIGKILL) are flushed:
 * when the primary finds no room, and once it is made.
 */
static int
tpm_connect(struct tpm_backend *be)
{
	const TPM2B_PUBLIC *tmpl;
	TSS2_RC rc;
	unsigned n;
	int r = BOTID_ERR_INTERNAL;

	if (be->esys != NULL)
		return 0;
	if ((rc = Tss2_TctiLdr_Initialize(be->tcti_conf, &be->tcti)) != 0) {
		log_err("tpm: cannot open TCTI '%s': 0x%x %s",
		    be->tcti_conf != NULL ? be->tcti_conf : "(default)", rc,
		    Tss2_RC_Decode(rc));
		be->tcti = NULL;
		r = BOTID_ERR_UNAVAILABLE;
		goto out;
	}
	if ((rc = Esys_Initialize(&be->esys, be->tcti, NULL)) != 0) {
		be->esys = NULL;
		if ((r = tpm_rc_check(rc, NULL, "Esys_Initialize failed")) == TPM_LOST)
			r = BOTID_ERR_UNAVAILABLE;
		goto out;
	}
	/* tpm2-tss's own tests do the same: INITIALIZE = already started. */
	rc = Esys_Startup(be->esys, TPM2_SU_CLEAR);
	if (rc != 0 && rc != TPM2_RC_INITIALIZE) {
		if (tpm_rc_is_lost(rc)) {
			r = TPM_LOST;
			goto out;
		}
		/*
		 * A resource manager may refuse Startup: it started the TPM
		 * itself. Anything worse shows in the next command.
		 */
		log_debug("tpm: TPM2_Startup: 0x%x %s", rc, Tss2_RC_Decode(rc));
	}
	if ((r = tpm_primary_template(be, &tmpl)) != 0)
		goto out;
	rc = Esys_CreatePrimary(be->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &tpm_empty_sensitive, tmpl,
	    &tpm_empty_outside_info, &tpm_empty_pcrs, &be->primary, NULL, NULL,
	    NULL, NULL);
	if (tpm_rc_is_object_memory(rc) && (n = tpm_flush_orphans(be)) > 0) {
		log_warn("tpm: flushed %u transient objects an earlier run "
		    "of the agent left loaded (no resource manager)", n);
		rc = Esys_CreatePrimary(be->esys, ESYS_TR_RH_OWNER,
		    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		    &tpm_empty_sensitive, tmpl, &tpm_empty_outside_info,
		    &tpm_empty_pcrs, &be->primary, NULL, NULL, NULL, NULL);
	}
	if (rc == TPM2_RC_BAD_AUTH + TPM2_RC_S + TPM2_RC_1) {
		log_err("tpm: the owner hierarchy has a password; botid needs "
		    "it empty to create its storage key");
		r = BOTID_ERR_TPM;
		goto out;
	}
	if (tpm_rc_is_object_memory(rc)) {
		log_err("tpm: no free object slot for the storage key: other "
		    "clients hold them");
		r = BOTID_ERR_UNAVAILABLE;
		goto out;
	}
	if ((r = tpm_rc_check(rc, NULL, "cannot create the storage primary")) != 0)
		goto out;
	be->generation++;
	/* A killed agent's primary is the same object as ours: free it. */
	if ((n = tpm_flush_orphans(be)) > 0)
		log_warn("tpm: flushed %u transient objects an earlier run "
		    "of the agent left loaded (no resource manager)", n);
	log_debug("tpm: connected, %s storage primary ready",
	    tmpl == &tpm_template_srk_ecc ? "ECC P-256" : "RSA-2048");
	r = 0;
 out:
	if (r != 0) {
		be->primary = ESYS_TR_NONE;
		tpm_disconnect(be, 0);
	}
	return r;
}

/*
 * Loads key unless it is loaded, evicting by LRU to keep within the cap;
 * what says what a refusal means, for the log.
 */
static int
tpm_key_load(struct tpm_backend *be, struct botid_key *key, const char *what)
{
	TPMS_CONTEXT ctx;
	size_t off;
	TSS2_RC rc;
	unsigned i, n;
	int r, tries, flushed = 0;

	if (key->handle != ESYS_TR_NONE) {
		key->used = ++be->clock;
		return 0;
	}
	while (be->nloaded >= be->max_loaded)
		if ((r = tpm_evict_lru(be, key)) != 0)
			return r;
	/* A context saved before the TPM was last reconnected is void. */
	if (key->saved != NULL && key->saved_gen != be->generation)
		tpm_context_drop(key);
	for (tries = 0; ; tries++) {
		if (key->saved != NULL) {
			off = 0;
			rc = Tss2_MU_TPMS_CONTEXT_Unmarshal(key->saved,
			    key->saved_len, &off, &ctx);
			if (rc == 0)
				rc = Esys_ContextLoad(be->esys, &ctx,
				    &key->handle);
			if (rc != 0 && !tpm_rc_is_object_memory(rc)) {
				/* Refused (a reset): the blob still loads. */
				log_debug("tpm: bot '%s': ContextLoad: 0x%x %s",
				    key->name, rc, Tss2_RC_Decode(rc));
				tpm_context_drop(key);
			}
		}
		if (key->saved == NULL)
			rc = Esys_Load(be->esys, be->primary, ESYS_TR_PASSWORD,
			    ESYS_TR_NONE, ESYS_TR_NONE, &key->priv, &key->pub,
			    &key->handle);
		if (!tpm_rc_is_object_memory(rc) ||
		    tries >= TPM_MAX_MEMORY_RETRY)
			break;
		log_debug("tpm: bot '%s': the TPM has no free object slot; "
		    "making room", key->name);
		/* None of ours left to evict: look for what we left behind. */
		if (tpm_evict_lru(be, key) != 0) {
			if (flushed || (n = tpm_flush_orphans(be)) == 0)
				break;
			flushed = 1;
			log_warn("tpm: bot '%s': flushed %u transient objects an "
			    "earlier run of the agent left loaded (no resource "
			    "manager)", key->name, n);
		}
	}
	if (rc != 0) {
		key->handle = ESYS_TR_NONE;
		if (tpm_rc_is_object_memory(rc)) {
			log_err("tpm: bot '%s': no free TPM object slot: other "
			    "clients hold them", key->name);
			return BOTID_ERR_UNAVAILABLE;
		}
		return tpm_rc_check(rc, key->name, what);
	}
	for (i = 0; i < be->max_loaded; i++) {
		if (be->loaded[i] == NULL) {
			be->loaded[i] = key;
			be->nloaded++;
			break;
		}
	}
	key->used = ++be->clock;
	key->proven = 1;
	atomic_store_explicit(&key->resident, 1, memory_order_relaxed);
	return 0;
}

/*
 * Runs op(be, key, arg) with the lock held, on a connected TPM. When the
 * TPM is lost, it reconnects and runs op once more; a second loss, or a
 * failed reconnect, gives BOTID_ERR_UNAVAILABLE.
 */
static int
tpm_call(struct tpm_backend *be, struct botid_key *key,
    int (*op)(struct tpm_backend *, struct botid_key *, void *), void *arg)
{
	int attempt, r = BOTID_ERR_INTERNAL;

	if ((errno = pthread_mutex_lock(&be->lock)) != 0) {
		log_err("tpm: pthread_mutex_lock: %s", strerror(errno));
		return BOTID_ERR_INTERNAL;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		if ((r = tpm_connect(be)) == 0 &&
		    (r = op(be, key, arg)) != TPM_LOST)
			break;
		if (r != TPM_LOST)
			break;
		/* Reset or link gone: the TPM's handles are void anyway. */
		tpm_disconnect(be, 0);
		if (attempt == 0)
			log_warn("tpm: lost the TPM (reset or link down); "
			    "reconnecting");
	}
	if (r == TPM_LOST || r == BOTID_ERR_UNAVAILABLE) {
		log_err("tpm: the TPM is unavailable%s%s%s",
		    key != NULL ? " for bot '" : "",
		    key != NULL ? key->name : "", key != NULL ? "'" : "");
		r = BOTID_ERR_UNAVAILABLE;
	}
	(void)pthread_mutex_unlock(&be->lock);
	return r;
}

/* ------------------------------------------------------------------ */
/* Blob files */

/* Serialises a key as "TSS2 PRIVATE KEY" PEM; *pemp is malloc'd. */
static int
tpm_blob_encode(const struct botid_key *key, uint8_t **pemp, size_t *lenp)
{
	uint8_t pubbuf[sizeof(TPM2B_PUBLIC)], privbuf[sizeof(TPM2B_PRIVATE)];
	size_t publen = 0, privlen = 0;
	TPM_KEY_BLOB *blob = NULL;
	unsigned char *der = NULL;
	BIO *bio = NULL;
	char *mem;
	long memlen;
	int derlen, r = BOTID_ERR_INTERNAL;

	*pemp = NULL;
	*lenp = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&key->pub, pubbuf, sizeof(pubbuf),
	    &publen) != 0 ||
	    Tss2_MU_TPM2B_PRIVATE_Marshal(&key->priv, privbuf, sizeof(privbuf),
	    &privlen) != 0)
		goto out;
	r = BOTID_ERR_CRYPTO;
	if ((blob = TPM_KEY_BLOB_new()) == NULL ||
	    (blob->type = OBJ_txt2obj(TPM_BLOB_OID, 1)) == NULL ||
	    ASN1_INTEGER_set_uint64(blob->parent, TPM2_RH_OWNER) != 1 ||
	    ASN1_OCTET_STRING_set(blob->pubkey, pubbuf, (int)publen) != 1 ||
	    ASN1_OCTET_STRING_set(blob->privkey, privbuf, (int)privlen) != 1)
		goto out;
	blob->empty_auth = 0xff;	/* DER's TRUE */
	if ((derlen = i2d_TPM_KEY_BLOB(blob, &der)) <= 0 ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio(bio, TPM_BLOB_PEM_NAME, "", der, derlen) <= 0 ||
	    (memlen = BIO_get_mem_data(bio, &mem)) <= 0)
		goto out;
	if ((*pemp = malloc((size_t)memlen)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	memcpy(*pemp, mem, (size_t)memlen);
	*lenp = (size_t)memlen;
	r = 0;
 out:
	if (r == BOTID_ERR_CRYPTO || r == BOTID_ERR_INTERNAL)
		log_err("tpm: bot '%s': cannot encode the key blob", key->name);
	TPM_KEY_BLOB_free(blob);
	OPENSSL_free(der);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

/*
 * Parses a "TSS2 PRIVATE KEY" PEM file into key->pub and key->priv.
 * Returns BOTID_ERR_INVALID, with why set, on anything malformed.
 */
static int
tpm_blob_decode(struct botid_key *key, const uint8_t *pem, size_t len,
    const char **why)
{
	char *name = NULL, *header = NULL, oid[64];
	unsigned char *der = NULL;
	const unsigned char *p;
	TPM_KEY_BLOB *blob = NULL;
	BIO *bio = NULL;
	uint64_t parent;
	size_t off;
	long derlen;
	char c;
	int r = BOTID_ERR_INVALID;

	*why = "not a " TPM_BLOB_PEM_NAME " PEM file";
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if (PEM_read_bio(bio, &name, &header, &der, &derlen) != 1 ||
	    strcmp(name, TPM_BLOB_PEM_NAME) != 0 || header[0] != '\0')
		goto out;
	while (BIO_read(bio, &c, 1) == 1) {
		if (c != '\n' && c != '\r' && c != ' ' && c != '\t') {
			*why = "data after the PEM block";
			goto out;
		}
	}
	*why = "malformed TPMKey ASN.1";
	p = der;
	if ((blob = d2i_TPM_KEY_BLOB(NULL, &p, derlen)) == NULL ||
	    p != der + derlen)
		goto out;
	*why = "not a TCG loadableKey (OID " TPM_BLOB_OID ")";
	if (OBJ_obj2txt(oid, sizeof(oid), blob->type, 1) <= 0 ||
	    strcmp(oid, TPM_BLOB_OID) != 0)
		goto out;
	*why = "the key has a password (emptyAuth is not TRUE)";
	if (blob->empty_auth == -1 || blob->empty_auth == 0)
		goto out;
	*why = "the parent is not the owner hierarchy's primary 0x40000001";
	if (ASN1_INTEGER_get_uint64(&parent, blob->parent) != 1 ||
	    parent != TPM2_RH_OWNER)
		goto out;
	*why = "malformed TPM2B_PUBLIC";
	off = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob->pubkey->data,
	    (size_t)blob->pubkey->length, &off, &key->pub) != 0 ||
	    off != (size_t)blob->pubkey->length)
		goto out;
	*why = "malformed TPM2B_PRIVATE";
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob->privkey->data,
	    (size_t)blob->privkey->length, &off, &key->priv) != 0 ||
	    off != (size_t)blob->privkey->length)
		goto out;
	*why = NULL;
	r = 0;
 out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	TPM_KEY_BLOB_free(blob);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

/*
 * Reads the bot's blob into key. BOTID_ERR_NOT_FOUND when there is none;
 * BOTID_ERR_INVALID (malformed), _CONFIG (unsafe file), _IO otherwise.
 */
static int
tpm_blob_read(struct tpm_backend *be, struct botid_key *key,
    const char *fname)
{
	uint8_t *buf = NULL;
	const char *why;
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd = -1, r = BOTID_ERR_INTERNAL;

	if ((fd = openat(be->dir_fd, fname,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) == -1) {
		if (errno == ENOENT) {
			r = BOTID_ERR_NOT_FOUND;
			goto out;
		}
		log_err("tpm: bot '%s': %s/%s: %s", key->name, be->dir_path,
		    fname, strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		log_err("tpm: bot '%s': %s/%s: fstat: %s", key->name,
		    be->dir_path, fname, strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	/* Whoever may replace the blob may swap the bot's identity. */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		log_err("tpm: bot '%s': %s/%s: refusing: not a regular file "
		    "owned by uid %lu and writable by it alone", key->name,
		    be->dir_path, fname, (unsigned long)geteuid());
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if (st.st_size <= 0 || (uint64_t)st.st_size > TPM_BLOB_MAX) {
		log_err("tpm: bot '%s': %s/%s: refusing: %lld bytes (the limit "
		    "is %u)", key->name, be->dir_path, fname,
		    (long long)st.st_size, TPM_BLOB_MAX);
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if ((buf = malloc(TPM_BLOB_MAX + 1)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	/* Read one byte past the cap, to see a file that grew meanwhile. */
	while (len <= TPM_BLOB_MAX) {
		n = read(fd, buf + len, TPM_BLOB_MAX + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_err("tpm: bot '%s': %s/%s: read: %s", key->name,
			    be->dir_path, fname, strerror(errno));
			r = BOTID_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > TPM_BLOB_MAX || len == 0) {
		log_err("tpm: bot '%s': %s/%s: refusing: size changed while "
		    "reading", key->name, be->dir_path, fname);
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if ((r = tpm_blob_decode(key, buf, len, &why)) != 0) {
		if (r == BOTID_ERR_INVALID)
			log_err("tpm: bot '%s': %s/%s: refusing the key blob: "
			    "%s", key->name, be->dir_path, fname, why);
		goto out;
	}
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	free(buf);
	return r;
}

/*
 * Writes the blob atomically and never over an existing one: a temporary
 * file (0600) is written and synced, then renamed into place without
 * replacing, and the directory synced. *raced is set when another process
 * created the bot's blob first (ours is then discarded).
 */
static int
tpm_blob_write(struct tpm_backend *be, const struct botid_key *key,
    const char *fname, int *raced)
{
	char tmp[BOTID_MAX_KEY_NAME + 64];
	uint8_t *pem = NULL;
	size_t len = 0;
	int fd = -1, made = 0, r = BOTID_ERR_INTERNAL;

	*raced = 0;
	if ((r = tpm_blob_encode(key, &pem, &len)) != 0)
		goto out;
	/* Bot names never start with '.', so this cannot be a blob's name. */
	/* Unique in this process, so that threads never share one. */
	if (snprintf(tmp, sizeof(tmp), ".%s.%ld.%u.tmp", key->name,
	    (long)getpid(), __atomic_fetch_add(&be->tmp_seq, 1,
	    __ATOMIC_RELAXED)) >= (int)sizeof(tmp)) {
		r = BOTID_ERR_INTERNAL;
		goto out;
	}
	r = BOTID_ERR_IO;
	fd = openat(be->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (fd == -1 && errno == EEXIST) {
		/* Left by a crashed process that had our pid. */
		(void)unlinkat(be->dir_fd, tmp, 0);
		fd = openat(be->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd == -1) {
		log_err("tpm: bot '%s': %s/%s: %s", key->name, be->dir_path,
		    tmp, strerror(errno));
		goto out;
	}
	made = 1;
	if (file_write_all(fd, pem, len) == -1 || fsync(fd) == -1) {
		log_err("tpm: bot '%s': %s/%s: write: %s", key->name,
		    be->dir_path, tmp, strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		log_err("tpm: bot '%s': %s/%s: close: %s", key->name,
		    be->dir_path, tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (renameat2(be->dir_fd, tmp, be->dir_fd, fname,
	    RENAME_NOREPLACE) == -1) {
		/* Filesystems without RENAME_NOREPLACE: link() fails alike. */
		if ((errno == EINVAL || errno == ENOSYS) &&
		    linkat(be->dir_fd, tmp, be->dir_fd, fname, 0) == 0)
			(void)unlinkat(be->dir_fd, tmp, 0);
		else if (errno == EEXIST) {
			*raced = 1;
			r = 0;
			goto out;
		} else {
			log_err("tpm: bot '%s': renaming %s/%s to %s: %s",
			    key->name, be->dir_path, tmp, fname,
			    strerror(errno));
			goto out;
		}
	}
	made = 0;
	if (fsync(be->dir_fd) == -1) {
		log_err("tpm: bot '%s': %s: fsync: %s", key->name,
		    be->dir_path, strerror(errno));
		goto out;
	}
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	if (made)
		(void)unlinkat(be->dir_fd, tmp, 0);
	free(pem);
	return r;
}

/* ------------------------------------------------------------------ */
/* Public areas */

/*
 * Checks a loaded blob's public area against what the bot is configured
 * for and what botid promises: non-exportable (BOTID_ERR_EXPORTABLE),
 * a signing key of the configured type with empty auth and no scheme of
 * its own (BOTID_ERR_CONFIG).
 */
static int
tpm_public_check(const struct botid_key *key)
{
	const TPMT_PUBLIC *pa = &key->pub.publicArea;
	const struct tpm_kind *k = key->kind;
	TPMA_OBJECT attr = pa->objectAttributes;

	if ((attr & TPM_ATTR_NON_EXPORTABLE) != TPM_ATTR_NON_EXPORTABLE) {
		log_err("tpm: bot '%s': refusing the key: it lacks fixedTPM, "
		    "fixedParent or sensitiveDataOrigin (attributes 0x%x), so "
		    "it may exist outside this TPM", key->name, attr);
		return BOTID_ERR_EXPORTABLE;
	}
	if ((attr & TPM_ATTR_KEY) != TPM_ATTR_KEY ||
	    (attr & TPM_ATTR_FORBIDDEN) != 0) {
		log_err("tpm: bot '%s': refusing the key: attributes 0x%x are "
		    "not those of an unrestricted signing-only key usable "
		    "without a policy", key->name, attr);
		return BOTID_ERR_CONFIG;
	}
	if (pa->type != k->alg) {
		log_err("tpm: bot '%s': the key is not an %s key, as "
		    "configured (%s)", key->name,
		    k->alg == TPM2_ALG_ECC ? "EC" : "RSA", k->name);
		return BOTID_ERR_CONFIG;
	}
	if (k->alg == TPM2_ALG_ECC) {
		const TPMS_ECC_PARMS *e = &pa->parameters.eccDetail;

		if (e->curveID != k->curve) {
			log_err("tpm: bot '%s': the key is not on the curve of "
			    "%s (TPM curve 0x%x)", key->name, k->name,
			    e->curveID);
			return BOTID_ERR_CONFIG;
		}
		if (e->scheme.scheme != TPM2_ALG_NULL ||
		    e->symmetric.algorithm != TPM2_ALG_NULL) {
			log_err("tpm: bot '%s': the key is bound to scheme "
			    "0x%x; botid needs a NULL scheme", key->name,
			    e->scheme.scheme);
			return BOTID_ERR_CONFIG;
		}
	} else {
		const TPMS_RSA_PARMS *rp = &pa->parameters.rsaDetail;

		if (rp->keyBits != k->rsa_bits ||
		    pa->unique.rsa.size != k->rsa_bits / 8) {
			log_err("tpm: bot '%s': the key has a %u-bit modulus, "
			    "not that of %s", key->name, rp->keyBits, k->name);
			return BOTID_ERR_CONFIG;
		}
		if (rp->scheme.scheme != TPM2_ALG_NULL ||
		    rp->symmetric.algorithm != TPM2_ALG_NULL) {
			log_err("tpm: bot '%s': the key is bound to scheme "
			    "0x%x; botid needs a NULL scheme", key->name,
			    rp->scheme.scheme);
			return BOTID_ERR_CONFIG;
		}
	}
	return 0;
}

/* The key's public key as DER SubjectPublicKeyInfo (*derp malloc'd). */
static int
tpm_public_spki(const struct botid_key *key, uint8_t **derp, size_t *lenp)
{
	const TPMT_PUBLIC *pa = &key->pub.publicArea;
	const struct tpm_kind *k = key->kind;
	uint8_t point[1 + 2 * TPM2_MAX_ECC_KEY_BYTES], *der = NULL, *p;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	size_t csize;
	int len, r = BOTID_ERR_CRYPTO;

	*derp = NULL;
	*lenp = 0;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (k->alg == TPM2_ALG_ECC) {
		const TPMS_ECC_POINT *q = &pa->unique.ecc;

		/* Coordinates may come without leading zeros: pad them. */
		csize = k->sig_len / 2;
		if (q->x.size > csize || q->y.size > csize ||
		    csize > TPM2_MAX_ECC_KEY_BYTES) {
			log_err("tpm: bot '%s': the key's public point does "
			    "not fit %s", key->name, k->name);
			r = BOTID_ERR_CONFIG;
			goto out;
		}
		memset(point, 0, sizeof(point));
		point[0] = POINT_CONVERSION_UNCOMPRESSED;
		memcpy(point + 1 + csize - q->x.size, q->x.buffer, q->x.size);
		memcpy(point + 1 + 2 * csize - q->y.size, q->y.buffer,
		    q->y.size);
		if (OSSL_PARAM_BLD_push_utf8_string(bld,
		    OSSL_PKEY_PARAM_GROUP_NAME, k->group, 0) != 1 ||
		    OSSL_PARAM_BLD_push_octet_string(bld,
		    OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * csize) != 1)
			goto out;
	} else {
		uint32_t exp = pa->parameters.rsaDetail.exponent;

		if ((n = BN_bin2bn(pa->unique.rsa.buffer, pa->unique.rsa.size,
		    NULL)) == NULL || (e = BN_new()) == NULL ||
		    BN_set_word(e, exp == 0 ? 65537 : exp) != 1 ||
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
			goto out;
	}
	/* fromdata checks an EC point is on the curve. */
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL,
	    k->alg == TPM2_ALG_ECC ? "EC" : "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1 ||
	    (len = i2d_PUBKEY(pkey, NULL)) <= 0)
		goto out;
	if ((der = malloc((size_t)len)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	p = der;
	if (i2d_PUBKEY(pkey, &p) != len)
		goto out;
	*derp = der;
	*lenp = (size_t)len;
	der = NULL;
	r = 0;
 out:
	if (r == BOTID_ERR_CRYPTO)
		log_err("tpm: bot '%s': cannot encode the public key",
		    key->name);
	free(der);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	ERR_clear_error();
	return r;
}

/* ------------------------------------------------------------------ */
/* Operations run through tpm_call() */

static void
tpm_key_template(const struct tpm_kind *k, TPM2B_PUBLIC *t)
{
	memset(t, 0, sizeof(*t));
	t->publicArea.type = k->alg;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	/*
	 * noDA: with an empty password there is nothing to guess, and a
	 * DA-protected key stops working (TPM2_RC_LOCKOUT) after a few
	 * unclean TPM shutdowns, a power cut or a killed swtpm.
	 */
	t->publicArea.objectAttributes = TPM_ATTR_KEY | TPMA_OBJECT_NODA;
	if (k->alg == TPM2_ALG_ECC) {
		TPMS_ECC_PARMS *e = &t->publicArea.parameters.eccDetail;

		e->symmetric.algorithm = TPM2_ALG_NULL;
		e->scheme.scheme = TPM2_ALG_NULL;
		e->curveID = k->curve;
		e->kdf.scheme = TPM2_ALG_NULL;
	} else {
		TPMS_RSA_PARMS *rp = &t->publicArea.parameters.rsaDetail;

		rp->symmetric.algorithm = TPM2_ALG_NULL;
		rp->scheme.scheme = TPM2_ALG_NULL;
		rp->keyBits = k->rsa_bits;
		rp->exponent = 0;	/* 65537 */
	}
}

static int
tpm_op_create(struct tpm_backend *be, struct botid_key *key, void *arg)
{
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC tmpl, *pub = NULL;
	TSS2_RC rc;
	int r, tries;

	tpm_key_template(key->kind, &tmpl);
	/*
	 * TPM2_Create needs a free object slot while it works: with the cap
	 * sized to the TPM's slots (primary + loaded_keys), make one first.
	 */
	if (be->nloaded >= be->max_loaded)
		(void)tpm_evict_lru(be, NULL);
	for (tries = 0; ; tries++) {
		rc = Esys_Create(be->esys, be->primary, ESYS_TR_PASSWORD,
		    ESYS_TR_NONE, ESYS_TR_NONE, &tpm_empty_sensitive, &tmpl,
		    &tpm_empty_outside_info, &tpm_empty_pcrs, &priv, &pub,
		    NULL, NULL, NULL);
		if (!tpm_rc_is_object_memory(rc) ||
		    tries >= TPM_MAX_MEMORY_RETRY ||
		    tpm_evict_lru(be, NULL) != 0)
			break;
	}
	if ((r = tpm_rc_check(rc, key->name, "cannot create the key")) != 0)
		goto out;
	key->pub = *pub;
	key->priv = *priv;
	r = 0;
 out:
	Esys_Free(priv);
	Esys_Free(pub);
	return r;
}

/* Loads an unproven key once (the proof); a proven one costs nothing. */
static int
tpm_op_prove(struct tpm_backend *be, struct botid_key *key, void *arg)
{
	char what[BOTID_MAX_PATH + 128];

	(void)arg;
	if (key->proven)
		return 0;
	snprintf(what, sizeof(what), "the TPM refuses %s/%s%s (made by "
	    "another TPM or owner seed, or damaged)", be->dir_path, key->name,
	    TPM_BLOB_SUFFIX);
	return tpm_key_load(be, key, what);
}

struct tpm_sign_args {
	TPM2B_DIGEST		 digest;
	TPMT_SIG_SCHEME		 scheme;
	TPMT_SIGNATURE		*sig;	/* Esys_Free */
};

static int
tpm_op_sign(struct tpm_backend *be, struct botid_key *key, void *arg)
{
	struct tpm_sign_args *a = arg;
	TSS2_RC rc;
	int r;

	if ((r = tpm_key_load(be, key, "cannot load the key")) != 0)
		return r;
	rc = Esys_Sign(be->esys, key->handle, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &a->digest, &a->scheme, &tpm_null_ticket, &a->sig);
	if (rc != 0) {
		a->sig = NULL;
		/* Say "unsupported" when it is the hash or scheme (no SHA-512). */
		if (tpm_rc_is_tpm_layer(rc) && (rc & TPM2_RC_FMT1) != 0 &&
		    ((rc & 0x3fu) == (TPM2_RC_HASH & 0x3fu) ||
		    (rc & 0x3fu) == (TPM2_RC_SCHEME & 0x3fu))) {
			log_err("tpm: bot '%s': the TPM cannot sign with this "
			    "hash and scheme: 0x%x %s", key->name, rc,
			    Tss2_RC_Decode(rc));
			return BOTID_ERR_UNSUPPORTED;
		}
		return tpm_rc_check(rc, key->name, "cannot sign");
	}
	return 0;
}

/* What the TPM says about a loaded key: its public area, from the chip. */
static int
tpm_op_read_public(struct tpm_backend *be, struct botid_key *key, void *arg)
{
	TPM2B_PUBLIC **pub = arg;
	TSS2_RC rc;
	int r;

	if ((r = tpm_key_load(be, key, "cannot load the key")) != 0)
		return r;
	rc = Esys_ReadPublic(be->esys, key->handle, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, pub, NULL, NULL);
	if (rc != 0) {
		*pub = NULL;
		return tpm_rc_check(rc, key->name, "cannot read the public "
		    "area");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The vtable */

/*
 * Opens the bot's key from its blob, or creates it when there is none
 * (unless lazy: BOTID_ERR_NOT_FOUND then). A blob read from the disk is
 * loaded, which proves it, unless lazy: the key is then proven by
 * tpm_key_prove() or its first load, so that opening many keys costs no
 * TPM command (the event loop serves at once). A key the TPM has just
 * made needs no proof, and is not loaded until it signs.
 */
static int
tpm_key_open_flags(struct botid_backend *bep,
    const struct botid_bot_config *bot, int lazy, struct botid_key **keyp,
    uint8_t **spki, size_t *spki_len)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;
	char fname[BOTID_MAX_KEY_NAME + sizeof(TPM_BLOB_SUFFIX)];
	struct botid_key *key = NULL;
	int raced = 0, created = 0, r = BOTID_ERR_INTERNAL;

	*keyp = NULL;
	*spki = NULL;
	*spki_len = 0;
	if (bot == NULL || !tpm_bot_name_valid(bot->name)) {
		log_err("tpm: invalid bot name");
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if ((key = calloc(1, sizeof(*key))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	key->handle = ESYS_TR_NONE;
	snprintf(key->name, sizeof(key->name), "%s", bot->name);
	snprintf(fname, sizeof(fname), "%s%s", bot->name, TPM_BLOB_SUFFIX);
	if ((key->kind = tpm_kind_find(bot->key_type)) == NULL) {
		log_err("tpm: bot '%s': unsupported key type %d", key->name,
		    (int)bot->key_type);
		r = BOTID_ERR_CONFIG;
		goto out;
	}

	r = tpm_blob_read(be, key, fname);
	if (r == BOTID_ERR_NOT_FOUND && !lazy) {
		if ((r = tpm_call(be, key, tpm_op_create, NULL)) != 0 ||
		    (r = tpm_blob_write(be, key, fname, &raced)) != 0)
			goto out;
		if (raced) {
			log_info("tpm: bot '%s': another process created its "
			    "key first; using that one", key->name);
			if ((r = tpm_blob_read(be, key, fname)) != 0)
				goto out;
		} else
			created = 1;
	} else if (r != 0)
		goto out;

	if ((r = tpm_public_check(key)) != 0)
		goto out;
	/*
	 * Loading proves the blob is this TPM's, under this primary. One the
	 * TPM has just made (the public and private parts it answered) needs
	 * no proof: loading it would only evict a key in use.
	 */
	key->proven = created;
	if (!created && !lazy &&
	    (r = tpm_call(be, key, tpm_op_prove, NULL)) != 0)
		goto out;
	if ((r = tpm_public_spki(key, spki, spki_len)) != 0)
		goto out;
	if (created)
		log_info("tpm: bot '%s': created a new %s key in the TPM (%s/%s)",
		    key->name, key->kind->name, be->dir_path, fname);
	else
		log_debug("tpm: bot '%s': %s its %s key from %s/%s",
		    key->name, lazy ? "read" : "loaded", key->kind->name,
		    be->dir_path, fname);
	*keyp = key;
	key = NULL;
	r = 0;
 out:
	tpm_key_close(bep, key);
	return r;
}

static int
tpm_key_open(struct botid_backend *bep, const struct botid_bot_config *bot,
    struct botid_key **keyp, uint8_t **spki, size_t *spki_len)
{
	return tpm_key_open_flags(bep, bot, 0, keyp, spki, spki_len);
}

static int
tpm_key_open_unproven(struct botid_backend *bep,
    const struct botid_bot_config *bot, struct botid_key **keyp,
    uint8_t **spki, size_t *spki_len)
{
	return tpm_key_open_flags(bep, bot, 1, keyp, spki, spki_len);
}

static int
tpm_key_prove(struct botid_backend *bep, struct botid_key *key)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;

	if (be == NULL || key == NULL)
		return BOTID_ERR_INVALID;
	return tpm_call(be, key, tpm_op_prove, NULL);
}

static int
tpm_key_loaded(struct botid_backend *bep, struct botid_key *key)
{
	(void)bep;
	return key != NULL &&
	    atomic_load_explicit(&key->resident, memory_order_relaxed) != 0;
}

/* A key exists where its blob does: key_open checks it in full. */
static int
tpm_key_exists(struct botid_backend *bep, const struct botid_bot_config *bot)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;
	char fname[BOTID_MAX_KEY_NAME + sizeof(TPM_BLOB_SUFFIX)];
	struct stat st;

	if (bot == NULL || !tpm_bot_name_valid(bot->name))
		return BOTID_ERR_INVALID;
	snprintf(fname, sizeof(fname), "%s%s", bot->name, TPM_BLOB_SUFFIX);
	if (fstatat(be->dir_fd, fname, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	log_err("tpm: bot '%s': %s/%s: %s", bot->name, be->dir_path, fname,
	    strerror(errno));
	return BOTID_ERR_IO;
}

static int
tpm_sign(struct botid_backend *bep, struct botid_key *key,
    const struct botid_sign_params *p, const uint8_t *digest,
    size_t digest_len, uint8_t **sigp, size_t *sig_lenp)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;
	const struct tpm_kind *k;
	struct tpm_sign_args a;
	const TPM2B_ECC_PARAMETER *er, *es;
	const TPM2B_PUBLIC_KEY_RSA *rs;
	TPMI_ALG_HASH halg;
	TPM2_ALG_ID salg;
	uint8_t *sig = NULL;
	size_t hlen, half;
	int r = BOTID_ERR_INTERNAL;

	*sigp = NULL;
	*sig_lenp = 0;
	memset(&a, 0, sizeof(a));
	if (be == NULL || key == NULL || p == NULL || digest == NULL) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	k = key->kind;
	if (tpm_hash_lookup(p->hash, &halg, &hlen) != 0) {
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	if (digest_len != hlen) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	switch (p->scheme) {
	case BOTID_SCHEME_ECDSA:
		salg = TPM2_ALG_ECDSA;
		break;
	case BOTID_SCHEME_PKCS1:
		salg = TPM2_ALG_RSASSA;
		break;
	case BOTID_SCHEME_PSS:
		salg = TPM2_ALG_RSAPSS;
		break;
	default:
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	if ((salg == TPM2_ALG_ECDSA) != (k->alg == TPM2_ALG_ECC)) {
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	a.digest.size = (UINT16)hlen;
	memcpy(a.digest.buffer, digest, hlen);
	a.scheme.scheme = salg;
	a.scheme.details.any.hashAlg = halg;

	if ((r = tpm_call(be, key, tpm_op_sign, &a)) != 0)
		goto out;

	r = BOTID_ERR_TPM;
	if (a.sig->sigAlg != salg) {
		log_err("tpm: bot '%s': the TPM answered with signature "
		    "algorithm 0x%x", key->name, a.sig->sigAlg);
		goto out;
	}
	if ((sig = calloc(1, k->sig_len)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	/* Integers may come shorter than the curve or modulus: left-pad. */
	if (salg == TPM2_ALG_ECDSA) {
		er = &a.sig->signature.ecdsa.signatureR;
		es = &a.sig->signature.ecdsa.signatureS;
		half = k->sig_len / 2;
		if (er->size > half || es->size > half) {
			log_err("tpm: bot '%s': oversized ECDSA signature",
			    key->name);
			goto out;
		}
		memcpy(sig + half - er->size, er->buffer, er->size);
		memcpy(sig + k->sig_len - es->size, es->buffer, es->size);
	} else {
		rs = &a.sig->signature.rsassa.sig;	/* rsapss alike */
		if (rs->size > k->sig_len) {
			log_err("tpm: bot '%s': oversized RSA signature",
			    key->name);
			goto out;
		}
		memcpy(sig + k->sig_len - rs->size, rs->buffer, rs->size);
	}
	*sigp = sig;
	*sig_lenp = k->sig_len;
	sig = NULL;
	r = 0;
 out:
	free(sig);
	Esys_Free(a.sig);
	return r;
}

static int
tpm_key_attributes(struct botid_backend *bep, struct botid_key *key,
    struct botid_key_attribute *attrs, size_t *n)
{
	/* The TPMA_OBJECT bits that say where a key lives and who may use it. */
	static const struct {
		TPMA_OBJECT	 bit;
		const char	*name;
	} bits[] = {
		{ TPMA_OBJECT_FIXEDTPM, "fixedTPM" },
		{ TPMA_OBJECT_STCLEAR, "stClear" },
		{ TPMA_OBJECT_FIXEDPARENT, "fixedParent" },
		{ TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin" },
		{ TPMA_OBJECT_USERWITHAUTH, "userWithAuth" },
		{ TPMA_OBJECT_ADMINWITHPOLICY, "adminWithPolicy" },
		{ TPMA_OBJECT_NODA, "noDA" },
		{ TPMA_OBJECT_ENCRYPTEDDUPLICATION, "encryptedDuplication" },
		{ TPMA_OBJECT_RESTRICTED, "restricted" },
		{ TPMA_OBJECT_DECRYPT, "decrypt" },
		{ TPMA_OBJECT_SIGN_ENCRYPT, "sign" },
	};
	struct tpm_backend *be = (struct tpm_backend *)bep;
	uint8_t got[sizeof(TPM2B_PUBLIC)], want[sizeof(TPM2B_PUBLIC)];
	size_t got_len = 0, want_len = 0;
	TPM2B_PUBLIC *pub = NULL;
	TPMA_OBJECT a;
	size_t i;
	int r = BOTID_ERR_INTERNAL;

	*n = 0;
	if (be == NULL || key == NULL || attrs == NULL)
		return BOTID_ERR_INVALID;
	if ((r = tpm_call(be, key, tpm_op_read_public, &pub)) != 0)
		goto out;
	/* A chip that answers for another object must not be believed. */
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, got, sizeof(got),
	    &got_len) != 0 ||
	    Tss2_MU_TPM2B_PUBLIC_Marshal(&key->pub, want, sizeof(want),
	    &want_len) != 0 || got_len != want_len ||
	    memcmp(got, want, got_len) != 0) {
		log_err("tpm: bot '%s': ReadPublic shows another key",
		    key->name);
		r = BOTID_ERR_TPM;
		goto out;
	}
	a = pub->publicArea.objectAttributes;
	for (i = 0; i < sizeof(bits) / sizeof(bits[0]) &&
	    i < BOTID_MAX_KEY_ATTRIBUTES; i++) {
		attrs[i].name = bits[i].name;
		attrs[i].set = (a & bits[i].bit) != 0;
	}
	*n = i;
	r = 0;
 out:
	Esys_Free(pub);
	return r;
}

static void
tpm_key_close(struct botid_backend *bep, struct botid_key *key)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;

	if (key == NULL)
		return;
	if (be != NULL && key->handle != ESYS_TR_NONE &&
	    pthread_mutex_lock(&be->lock) == 0) {
		tpm_key_unload(be, key);
		(void)pthread_mutex_unlock(&be->lock);
	}
	tpm_context_drop(key);
	free(key);
}

/*
 * A TPM key exists only as its wrapped blob (the TPM keeps no copy once
 * it is flushed): removing the blob, durably, destroys the key. Handles
 * still open on it are flushed by their tpm_key_close().
 */
static int
tpm_key_remove(struct botid_backend *bep, const struct botid_bot_config *bot)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;
	char fname[BOTID_MAX_KEY_NAME + sizeof(TPM_BLOB_SUFFIX)];

	if (be == NULL || bot == NULL || !tpm_bot_name_valid(bot->name))
		return BOTID_ERR_INVALID;
	snprintf(fname, sizeof(fname), "%s%s", bot->name, TPM_BLOB_SUFFIX);
	if (unlinkat(be->dir_fd, fname, 0) == -1) {
		if (errno == ENOENT)
			return BOTID_ERR_NOT_FOUND;
		log_err("tpm: key '%s': cannot remove %s/%s: %s", bot->name,
		    be->dir_path, fname, strerror(errno));
		return BOTID_ERR_IO;
	}
	if (fsync(be->dir_fd) == -1) {
		log_err("tpm: key '%s': %s: fsync: %s", bot->name,
		    be->dir_path, strerror(errno));
		return BOTID_ERR_IO;
	}
	log_info("tpm: key '%s' destroyed (%s/%s removed)", bot->name,
	    be->dir_path, fname);
	return 0;
}

static void
tpm_close(struct botid_backend *bep)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;

	if (be == NULL)
		return;
	if (be->loaded != NULL)
		tpm_disconnect(be, 1);
	/* Like tpm_key_close(): their saved contexts go too. */
	if (be->ak != NULL)
		tpm_context_drop(be->ak);
	if (be->hostkey != NULL)
		tpm_context_drop(be->hostkey);
	free(be->ak);
	free(be->hostkey);
	(void)pthread_mutex_destroy(&be->lock);
	if (be->dir_fd != -1)
		close(be->dir_fd);
	free(be->loaded);
	free(be->tcti_conf);
	free(be->dir_path);
	free(be->state_dir);
	free(be);
}

/*
 * Opens (creating, 0700) state_dir and state_dir/tpm, refusing a tpm/
 * directory that others could write to or that we do not own.
 */
static int
tpm_dir_open(struct tpm_backend *be, const char *state_dir)
{
	struct stat st;
	int sfd = -1, r = BOTID_ERR_IO;

	if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		log_err("tpm: mkdir %s: %s", state_dir, strerror(errno));
		goto out;
	}
	if ((sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_err("tpm: %s: %s", state_dir, strerror(errno));
		goto out;
	}
	if (mkdirat(sfd, TPM_SUBDIR, 0700) == -1 && errno != EEXIST) {
		log_err("tpm: mkdir %s: %s", be->dir_path, strerror(errno));
		goto out;
	}
	if ((be->dir_fd = openat(sfd, TPM_SUBDIR,
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		log_err("tpm: %s: %s", be->dir_path, strerror(errno));
		goto out;
	}
	if (fstat(be->dir_fd, &st) == -1) {
		log_err("tpm: %s: fstat: %s", be->dir_path, strerror(errno));
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_err("tpm: %s: refusing: not owned by uid %lu or writable "
		    "by others (chmod 700)", be->dir_path,
		    (unsigned long)geteuid());
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	r = 0;
 out:
	if (sfd != -1)
		close(sfd);
	return r;
}

int
backend_tpm_open(const char *tcti, const char *state_dir,
    unsigned loaded_keys, struct botid_backend **bep)
{
	struct tpm_backend *be = NULL;
	int r = BOTID_ERR_INTERNAL;

	*bep = NULL;
	if (state_dir == NULL || *state_dir == '\0') {
		log_err("tpm: no state directory");
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if ((be = calloc(1, sizeof(*be))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	be->base.ops = &tpm_ops;
	be->dir_fd = -1;
	be->primary = ESYS_TR_NONE;
	if ((errno = pthread_mutex_init(&be->lock, NULL)) != 0) {
		log_err("tpm: pthread_mutex_init: %s", strerror(errno));
		free(be);
		be = NULL;
		goto out;
	}
	/* A key must be loaded to sign; no TPM has more than 64 slots. */
	be->max_loaded = loaded_keys == 0 ? 1 : loaded_keys > TPM_MAX_LOADED ?
	    TPM_MAX_LOADED : loaded_keys;
	if ((be->loaded = calloc(be->max_loaded, sizeof(*be->loaded))) == NULL ||
	    (tcti != NULL && (be->tcti_conf = strdup(tcti)) == NULL) ||
	    (be->state_dir = strdup(state_dir)) == NULL ||
	    asprintf(&be->dir_path, "%s/%s", state_dir, TPM_SUBDIR) == -1) {
		be->dir_path = NULL;
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = tpm_dir_open(be, state_dir)) != 0)
		goto out;
	if ((r = pthread_mutex_lock(&be->lock)) != 0) {
		log_err("tpm: pthread_mutex_lock: %s", strerror(r));
		r = BOTID_ERR_INTERNAL;
		goto out;
	}
	r = tpm_connect(be);
	(void)pthread_mutex_unlock(&be->lock);
	if (r == TPM_LOST) {
		log_err("tpm: the TPM at '%s' is unavailable",
		    tcti != NULL ? tcti : "(default)");
		r = BOTID_ERR_UNAVAILABLE;
	}
	if (r != 0)
		goto out;
	*bep = &be->base;
	be = NULL;
	r = 0;
 out:
	tpm_close(be != NULL ? &be->base : NULL);
	return r;
}

/* ------------------------------------------------------------------ */
/* Attestation: the AK certifies bot keys, the host key vouches for others */

int
backend_tpm_attest_keys(struct botid_backend *bep, const struct host_state *hs)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;
	struct botid_key *ak = NULL, *hk = NULL;
	int r = BOTID_ERR_ALLOC;

	if ((ak = calloc(1, sizeof(*ak))) == NULL ||
	    (hk = calloc(1, sizeof(*hk))) == NULL)
		goto out;
	ak->handle = hk->handle = ESYS_TR_NONE;
	snprintf(ak->name, sizeof(ak->name), "(attestation key)");
	snprintf(hk->name, sizeof(hk->name), "(host key)");
	ak->pub = hs->ak_pub;
	ak->priv = hs->ak_priv;
	hk->pub = hs->hk_pub;
	hk->priv = hs->hk_priv;
	if ((errno = pthread_mutex_lock(&be->lock)) != 0) {
		r = BOTID_ERR_INTERNAL;
		goto out;
	}
	if (be->ak != NULL || be->hostkey != NULL) {
		(void)pthread_mutex_unlock(&be->lock);
		r = BOTID_ERR_INTERNAL;	/* set once per backend */
		goto out;
	}
	/* Certify needs the AK and a bot key loaded at once. */
	if (be->max_loaded < 2) {
		struct botid_key **l = realloc(be->loaded, 2 * sizeof(*l));

		if (l == NULL) {
			(void)pthread_mutex_unlock(&be->lock);
			goto out;
		}
		l[1] = NULL;
		be->loaded = l;
		be->max_loaded = 2;
		log_info("tpm: keeping 2 keys loaded: attestation needs both "
		    "the attestation key and a bot key");
	}
	be->ak = ak;
	be->hostkey = hk;
	be->hostkey_ecc = hs->hk_pub.publicArea.type == TPM2_ALG_ECC;
	ak = hk = NULL;
	(void)pthread_mutex_unlock(&be->lock);
	r = 0;
 out:
	free(ak);
	free(hk);
	return r;
}

int
backend_tpm_key_public(struct botid_key *key, uint8_t **pub, size_t *len)
{
	uint8_t buf[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;

	*pub = NULL;
	*len = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&key->pub, buf, sizeof(buf),
	    &off) != 0)
		return BOTID_ERR_INTERNAL;
	if ((*pub = malloc(off)) == NULL)
		return BOTID_ERR_ALLOC;
	memcpy(*pub, buf, off);
	*len = off;
	return 0;
}

struct tpm_certify_args {
	const uint8_t	*nonce;
	size_t		 nonce_len;
	uint8_t		*attest;
	size_t		 attest_len;
	uint8_t		*sig;
	size_t		 sig_len;
};

static int
tpm_op_certify(struct tpm_backend *be, struct botid_key *key, void *arg)
{
	struct tpm_certify_args *a = arg;
	int r;

	if ((r = tpm_key_load(be, key, "cannot load the key")) != 0 ||
	    (r = tpm_key_load(be, be->ak, "the TPM refuses the attestation "
	    "key (made by another TPM or owner seed: run botid provision "
	    "again)")) != 0)
		return r;
	/* Loading the AK may not evict key: it was the most recent. */
	if (key->handle == ESYS_TR_NONE)
		return BOTID_ERR_INTERNAL;
	return evidence_certify(be->esys, be->ak->handle, key->handle,
	    a->nonce, a->nonce_len, &a->attest, &a->attest_len, &a->sig,
	    &a->sig_len);
}

int
backend_tpm_certify(struct botid_backend *bep, struct botid_key *key,
    const uint8_t *nonce, size_t nonce_len, uint8_t **attest,
    size_t *attest_len, uint8_t **sig, size_t *sig_len)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;
	struct tpm_certify_args a;
	int r;

	*attest = *sig = NULL;
	*attest_len = *sig_len = 0;
	if (be->ak == NULL)
		return BOTID_ERR_NOT_FOUND;
	memset(&a, 0, sizeof(a));
	a.nonce = nonce;
	a.nonce_len = nonce_len;
	if ((r = tpm_call(be, key, tpm_op_certify, &a)) != 0) {
		free(a.attest);
		free(a.sig);
		return r;
	}
	*attest = a.attest;
	*attest_len = a.attest_len;
	*sig = a.sig;
	*sig_len = a.sig_len;
	return 0;
}

struct tpm_quote_args {
	uint16_t	 bank;
	uint32_t	 mask;
	const uint8_t	*nonce;
	size_t		 nonce_len;
	uint8_t		*attest, *sig, *values;
	size_t		 attest_len, sig_len, values_len;
};

static int
tpm_op_quote(struct tpm_backend *be, struct botid_key *key, void *arg)
{
	struct tpm_quote_args *a = arg;
	int r;

	(void)key;
	if ((r = tpm_key_load(be, be->ak, "the TPM refuses the attestation "
	    "key (made by another TPM or owner seed: run botid provision "
	    "again)")) != 0)
		return r;
	return evidence_quote(be->esys, be->ak->handle, a->bank, a->mask,
	    a->nonce, a->nonce_len, &a->attest, &a->attest_len, &a->sig,
	    &a->sig_len, &a->values, &a->values_len);
}

int
backend_tpm_quote(struct botid_backend *bep, uint16_t bank, uint32_t mask,
    const uint8_t *nonce, size_t nonce_len, uint8_t **attest,
    size_t *attest_len, uint8_t **sig, size_t *sig_len, uint8_t **values,
    size_t *values_len)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;
	struct tpm_quote_args a;
	int r;

	*attest = *sig = *values = NULL;
	*attest_len = *sig_len = *values_len = 0;
	if (be->ak == NULL)
		return BOTID_ERR_NOT_FOUND;
	memset(&a, 0, sizeof(a));
	a.bank = bank;
	a.mask = mask;
	a.nonce = nonce;
	a.nonce_len = nonce_len;
	if ((r = tpm_call(be, be->ak, tpm_op_quote, &a)) != 0) {
		free(a.attest);
		free(a.sig);
		free(a.values);
		return r;
	}
	*attest = a.attest;
	*attest_len = a.attest_len;
	*sig = a.sig;
	*sig_len = a.sig_len;
	*values = a.values;
	*values_len = a.values_len;
	return 0;
}

struct tpm_host_sign_args {
	const uint8_t	*digest;
	uint8_t		*sig;
	size_t		 sig_len;
};

static int
tpm_op_host_sign(struct tpm_backend *be, struct botid_key *key, void *arg)
{
	struct tpm_host_sign_args *a = arg;
	int r;

	if ((r = tpm_key_load(be, key, "the TPM refuses the host key (made "
	    "by another TPM or owner seed: run botid provision again)")) != 0)
		return r;
	return evidence_sign(be->esys, key->handle, be->hostkey_ecc,
	    a->digest, &a->sig, &a->sig_len);
}

int
backend_tpm_host_sign(struct botid_backend *bep, const uint8_t digest[32],
    uint8_t **sig, size_t *sig_len)
{
	struct tpm_backend *be = (struct tpm_backend *)bep;
	struct tpm_host_sign_args a;
	int r;

	*sig = NULL;
	*sig_len = 0;
	if (be->hostkey == NULL)
		return BOTID_ERR_NOT_FOUND;
	memset(&a, 0, sizeof(a));
	a.digest = digest;
	if ((r = tpm_call(be, be->hostkey, tpm_op_host_sign, &a)) != 0) {
		free(a.sig);
		return r;
	}
	*sig = a.sig;
	*sig_len = a.sig_len;
	return 0;
}
