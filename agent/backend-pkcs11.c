/*
 * The PKCS#11 backend: each bot's key pair lives on a token (an HSM, a
 * smart card, SoftHSM2), generated there sensitive and never extractable,
 * found again by its label "botid:<bot>" at every start, and used for
 * signing from a pool of sessions shared by the agent's worker threads.
 *
 * libp11 loads the module, initialises it and finds the token by label.
 * Everything else goes through the module's own function list, because
 * libp11 0.4.12 gets in the way there:
 *  - it exposes no object handles and no attribute reads, so it can
 *    neither generate a key with CKA_EXTRACTABLE=false nor prove that a
 *    key found on the token is, and always was, sensitive and
 *    non-extractable;
 *  - its signing path is legacy RSA_METHOD/EC_KEY_METHOD objects behind
 *    EVP_PKEY (ECDSA_SIG and BIGNUM allocations per signature; PSS through
 *    CKM_RSA_PKCS_PSS only via its engine's EVP_PKEY_METHOD, otherwise
 *    padded in software for raw CKM_RSA_X_509) over its own pool of at
 *    most 16 sessions per slot;
 *  - PKCS11_login keeps a copy of the PIN for the life of the process (to
 *    log in again after fork), where we wipe ours right after C_Login;
 *  - releasing its slot list closes every session of every slot, and its
 *    PKCS11_update_slots frees slot data still in use (fixed in 0.4.13),
 *    so the slot list is kept for the life of the module and never
 *    refreshed.
 * Both views share one library instance: we dlopen the path libp11 loaded
 * with RTLD_NOLOAD, and C_Initialize answers CKR_CRYPTOKI_ALREADY_INITIALIZED.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libp11.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "agent/backend.h"
#include "lib/buf.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/wire.h"

/*
 * Last: p11-kit's pkcs11.h defines compatibility macros for common words
 * (value, count, params, reserved...) that would rename members of the
 * headers above.
 */
#include <p11-kit/pkcs11.h>

/* Sessions one backend may hold; far above what two workers per core need. */
#define PKCS11_MAX_SESSIONS	256u
/* "botid:" and a bot name. */
#define PKCS11_LABEL_PREFIX	"botid:"
#define PKCS11_MAX_LABEL	(sizeof(PKCS11_LABEL_PREFIX) + BOTID_MAX_KEY_NAME)
/* Bytes of a fresh CKA_ID; random, so an orphaned public key never matches. */
#define PKCS11_ID_LEN		16u
/* Bounds on attributes read from the token, which we do not trust. */
#define PKCS11_MAX_ID		256u
#define PKCS11_MAX_EC_POINT	256u
#define PKCS11_MAX_EC_PARAMS	64u
#define PKCS11_MAX_MODULUS	512u	/* RSA-4096 */
#define PKCS11_MAX_EXPONENT	16u

/* DER OIDs as CKA_EC_PARAMS carries them (namedCurve). */
static const uint8_t pkcs11_oid_p256[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
};
static const uint8_t pkcs11_oid_p384[] = {
	0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22
};
static const uint8_t pkcs11_rsa_exponent[] = { 0x01, 0x00, 0x01 };

/* What each configured key type means on a token. */
struct pkcs11_key_kind {
	enum botid_key_type	 type;
	const char		*name;
	CK_KEY_TYPE		 ck_type;
	CK_ULONG		 bits;		/* RSA modulus, EC field */
	const uint8_t		*ec_params;	/* NULL for RSA */
	size_t			 ec_params_len;
	const char		*group;		/* OpenSSL group name */
};

static const struct pkcs11_key_kind pkcs11_kinds[] = {
	{ BOTID_KEY_ECDSA_P256, "ecdsa-p256", CKK_EC, 256, pkcs11_oid_p256,
	    sizeof(pkcs11_oid_p256), "prime256v1" },
	{ BOTID_KEY_ECDSA_P384, "ecdsa-p384", CKK_EC, 384, pkcs11_oid_p384,
	    sizeof(pkcs11_oid_p384), "secp384r1" },
	{ BOTID_KEY_RSA_2048, "rsa-2048", CKK_RSA, 2048, NULL, 0, NULL },
	{ BOTID_KEY_RSA_3072, "rsa-3072", CKK_RSA, 3072, NULL, 0, NULL },
};

/*
 * DigestInfo headers (RFC 8017 9.2 note 1): CKM_RSA_PKCS pads whatever it
 * is given, so the hash OID must be in front of the digest.
 */
static const uint8_t pkcs11_di_sha256[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
	0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20
};
static const uint8_t pkcs11_di_sha384[] = {
	0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
	0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30
};
static const uint8_t pkcs11_di_sha512[] = {
	0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
	0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40
};

/*
 * One loaded module, shared by every backend (token) that names the same
 * file: a second C_Initialize would only say "already initialised", and
 * the first close's C_Finalize would pull the module from under the rest.
 */
struct pkcs11_module {
	struct pkcs11_module	*next;
	char			*path;
	int			 have_stat;
	dev_t			 dev;
	ino_t			 ino;
	PKCS11_CTX		*ctx;
	PKCS11_SLOT		*slots;		/* kept until unload: see top */
	unsigned int		 nslots;
	void			*dl;
	CK_FUNCTION_LIST_PTR	 fl;
	int			 loaded;	/* by libp11 */
	int			 finalize;	/* our C_Initialize counted */
	unsigned		 refs;
	struct pkcs11_backend	*backends;	/* open on this module */
};

struct pkcs11_backend {
	struct botid_backend	 be;		/* first: callers hold &be */
	struct pkcs11_module	*mod;
	struct pkcs11_backend	*next;		/* on mod->backends */
	CK_FUNCTION_LIST_PTR	 fl;
	CK_SLOT_ID		 slot;
	char			*token;		/* label, for log lines */
	int			 logged_in;	/* our C_Login succeeded */
	/* Session pool: idle handles; CK_INVALID_HANDLE means reopen. */
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	int			 sync_ready;
	CK_SESSION_HANDLE	*idle;
	size_t			 nidle;
	size_t			 nsessions;
	size_t			 nkeys;		/* open botid_key handles */
};

struct botid_key {
	char				*bot;		/* for log lines */
	const struct pkcs11_key_kind	*kind;
	CK_OBJECT_HANDLE		 priv;
	CK_OBJECT_HANDLE		 pub;
	size_t				 sig_len;
};

static pthread_mutex_t pkcs11_modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pkcs11_module *pkcs11_modules;

static const struct botid_backend_ops pkcs11_ops;

static const char *
pkcs11_rv_name(CK_RV rv)
{
	switch (rv) {
#define PKCS11_RV(x)	case x: return #x
	PKCS11_RV(CKR_OK);
	PKCS11_RV(CKR_HOST_MEMORY);
	PKCS11_RV(CKR_SLOT_ID_INVALID);
	PKCS11_RV(CKR_GENERAL_ERROR);
	PKCS11_RV(CKR_FUNCTION_FAILED);
	PKCS11_RV(CKR_ARGUMENTS_BAD);
	PKCS11_RV(CKR_CANT_LOCK);
	PKCS11_RV(CKR_ATTRIBUTE_SENSITIVE);
	PKCS11_RV(CKR_ATTRIBUTE_TYPE_INVALID);
	PKCS11_RV(CKR_ATTRIBUTE_VALUE_INVALID);
	PKCS11_RV(CKR_DATA_INVALID);
	PKCS11_RV(CKR_DATA_LEN_RANGE);
	PKCS11_RV(CKR_DEVICE_ERROR);
	PKCS11_RV(CKR_DEVICE_MEMORY);
	PKCS11_RV(CKR_DEVICE_REMOVED);
	PKCS11_RV(CKR_FUNCTION_CANCELED);
	PKCS11_RV(CKR_FUNCTION_NOT_SUPPORTED);
	PKCS11_RV(CKR_KEY_HANDLE_INVALID);
	PKCS11_RV(CKR_KEY_SIZE_RANGE);
	PKCS11_RV(CKR_KEY_TYPE_INCONSISTENT);
	PKCS11_RV(CKR_KEY_FUNCTION_NOT_PERMITTED);
	PKCS11_RV(CKR_MECHANISM_INVALID);
	PKCS11_RV(CKR_MECHANISM_PARAM_INVALID);
	PKCS11_RV(CKR_OBJECT_HANDLE_INVALID);
	PKCS11_RV(CKR_OPERATION_ACTIVE);
	PKCS11_RV(CKR_OPERATION_NOT_INITIALIZED);
	PKCS11_RV(CKR_PIN_INCORRECT);
	PKCS11_RV(CKR_PIN_INVALID);
	PKCS11_RV(CKR_PIN_LEN_RANGE);
	PKCS11_RV(CKR_PIN_EXPIRED);
	PKCS11_RV(CKR_PIN_LOCKED);
	PKCS11_RV(CKR_SESSION_CLOSED);
	PKCS11_RV(CKR_SESSION_COUNT);
	PKCS11_RV(CKR_SESSION_HANDLE_INVALID);
	PKCS11_RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	PKCS11_RV(CKR_SESSION_READ_ONLY);
	PKCS11_RV(CKR_SESSION_EXISTS);
	PKCS11_RV(CKR_SESSION_READ_ONLY_EXISTS);
	PKCS11_RV(CKR_TEMPLATE_INCOMPLETE);
	PKCS11_RV(CKR_TEMPLATE_INCONSISTENT);
	PKCS11_RV(CKR_TOKEN_NOT_PRESENT);
	PKCS11_RV(CKR_TOKEN_NOT_RECOGNIZED);
	PKCS11_RV(CKR_TOKEN_WRITE_PROTECTED);
	PKCS11_RV(CKR_USER_ALREADY_LOGGED_IN);
	PKCS11_RV(CKR_USER_NOT_LOGGED_IN);
	PKCS11_RV(CKR_USER_PIN_NOT_INITIALIZED);
	PKCS11_RV(CKR_USER_TYPE_INVALID);
	PKCS11_RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
	PKCS11_RV(CKR_RANDOM_NO_RNG);
	PKCS11_RV(CKR_DOMAIN_PARAMS_INVALID);
	PKCS11_RV(CKR_CURVE_NOT_SUPPORTED);
	PKCS11_RV(CKR_BUFFER_TOO_SMALL);
	PKCS11_RV(CKR_CRYPTOKI_NOT_INITIALIZED);
	PKCS11_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED);
	PKCS11_RV(CKR_FUNCTION_REJECTED);
#undef PKCS11_RV
	}
	return "CKR_?";
}

/*
 * Maps a PKCS#11 failure to our code. A vanished device or session is
 * UNAVAILABLE: the agent may retry later or reopen the backend.
 */
static int
pkcs11_rv_err(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return 0;
	case CKR_HOST_MEMORY:
		return BOTID_ERR_ALLOC;
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_DEVICE_ERROR:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return BOTID_ERR_UNAVAILABLE;
	}
	return BOTID_ERR_PKCS11;
}

static const struct pkcs11_key_kind *
pkcs11_kind(enum botid_key_type type)
{
	size_t i;

	for (i = 0; i < sizeof(pkcs11_kinds) / sizeof(pkcs11_kinds[0]); i++)
		if (pkcs11_kinds[i].type == type)
			return &pkcs11_kinds[i];
	return NULL;
}

static const char *
pkcs11_libp11_error(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s;

	if (e == 0 || (s = ERR_reason_error_string(e)) == NULL)
		return "no detail from libp11";
	return s;
}

/*
 * Reads the user PIN: a regular file, not open to group or others, at
 * most BOTID_MAX_PIN bytes after one trailing newline is stripped. pin
 * must hold BOTID_MAX_PIN + 3 bytes and is NUL-terminated on success;
 * the caller wipes it whatever the result.
 */
static int
pkcs11_pin_read(const char *path, char *pin, size_t pinsz, size_t *pinlen)
{
	struct stat st;
	size_t len = 0;
	ssize_t n;
	char extra;
	int fd = -1, r = BOTID_ERR_INTERNAL;

	*pinlen = 0;
	if (pinsz < BOTID_MAX_PIN + 3)
		return BOTID_ERR_INTERNAL;
	/* O_NONBLOCK: a FIFO put there must not hang the agent's start. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1) {
		log_err("PIN file %s: %s", path, strerror(errno));
		r = errno == ENOENT ? BOTID_ERR_NOT_FOUND : BOTID_ERR_IO;
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		log_err("PIN file %s: fstat: %s", path, strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("PIN file %s: not a regular file", path);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	/* As OpenSSH with private key files: an open PIN is a leaked PIN. */
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		log_err("PIN file %s: refusing it, group or others have access "
		    "(mode %04o); chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	/* Room for the PIN, "\r\n", and one byte to notice a longer file. */
	while (len < pinsz - 1) {
		n = read(fd, pin + len, pinsz - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_err("PIN file %s: read: %s", path, strerror(errno));
			r = BOTID_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == pinsz - 1) {
		while ((n = read(fd, &extra, 1)) == -1 && errno == EINTR)
			;
		if (n != 0) {
			log_err("PIN file %s: longer than %u bytes", path,
			    BOTID_MAX_PIN);
			r = BOTID_ERR_TOO_LARGE;
			goto out;
		}
	}
	if (len > 0 && pin[len - 1] == '\n') {
		len--;
		if (len > 0 && pin[len - 1] == '\r')
			len--;
	}
	pin[len] = '\0';
	if (len == 0) {
		log_err("PIN file %s: empty", path);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if (len > BOTID_MAX_PIN) {
		log_err("PIN file %s: longer than %u bytes", path,
		    BOTID_MAX_PIN);
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	if (memchr(pin, '\0', len) != NULL) {
		log_err("PIN file %s: holds a NUL byte", path);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	*pinlen = len;
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	return r;
}

/* Releases one reference; the last one finalises and unloads. Lock held. */
static void
pkcs11_module_put(struct pkcs11_module *mod)
{
	struct pkcs11_module **mp;

	if (mod == NULL || --mod->refs > 0)
		return;
	for (mp = &pkcs11_modules; *mp != NULL; mp = &(*mp)->next) {
		if (*mp == mod) {
			*mp = mod->next;
			break;
		}
	}
	/* Closes every session of every slot: nobody holds one any more. */
	if (mod->slots != NULL)
		PKCS11_release_all_slots(mod->ctx, mod->slots, mod->nslots);
	/* A counting module (p11-kit-proxy) wants one C_Finalize per init. */
	if (mod->finalize)
		(void)mod->fl->C_Finalize(NULL);
	if (mod->dl != NULL)
		dlclose(mod->dl);
	if (mod->loaded)
		PKCS11_CTX_unload(mod->ctx);
	if (mod->ctx != NULL)
		PKCS11_CTX_free(mod->ctx);
	ERR_clear_error();
	free(mod->path);
	free(mod);
}

/*
 * Whether path is a PKCS#11 module that loads: when libp11 cannot start
 * it, this tells a module whose C_Initialize failed (its device or token
 * store out of reach, as SoftHSM2 without its token directory: an outage
 * the agent retries) from a file that is no module at all.
 */
static int
pkcs11_module_loads(const char *path)
{
	void *dl;
	int ok;

	if ((dl = dlopen(path, RTLD_LAZY | RTLD_LOCAL)) == NULL)
		return 0;
	ok = dlsym(dl, "C_GetFunctionList") != NULL;
	dlclose(dl);
	return ok;
}

/* Loads path (or takes another reference to it). Lock held. */
static int
pkcs11_module_get(const char *path, struct pkcs11_module **modp)
{
	struct pkcs11_module *mod = NULL;
	CK_C_GetFunctionList get_list;
	CK_C_INITIALIZE_ARGS args;
	CK_FUNCTION_LIST_PTR fl = NULL;
	struct stat st;
	CK_RV rv;
	int have_stat, r = BOTID_ERR_INTERNAL;

	*modp = NULL;
	/* Same file, same module, whatever path or symlink names it. */
	have_stat = stat(path, &st) == 0;
	if (!have_stat && strchr(path, '/') != NULL) {
		log_err("PKCS#11 module %s: %s", path, strerror(errno));
		return errno == ENOENT ? BOTID_ERR_NOT_FOUND : BOTID_ERR_IO;
	}
	for (mod = pkcs11_modules; mod != NULL; mod = mod->next) {
		if (have_stat ? (mod->have_stat && mod->dev == st.st_dev &&
		    mod->ino == st.st_ino) : strcmp(mod->path, path) == 0) {
			mod->refs++;
			*modp = mod;
			return 0;
		}
	}
	if ((mod = calloc(1, sizeof(*mod))) == NULL)
		return BOTID_ERR_ALLOC;
	mod->refs = 1;		/* before any goto: put() drops this one */
	if ((mod->path = strdup(path)) == NULL ||
	    (mod->ctx = PKCS11_CTX_new()) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	mod->have_stat = have_stat;
	if (have_stat) {
		mod->dev = st.st_dev;
		mod->ino = st.st_ino;
	}
	if (PKCS11_CTX_load(mod->ctx, path) != 0) {
		log_err("PKCS#11 module %s: cannot load or initialise it: %s",
		    path, pkcs11_libp11_error());
		r = pkcs11_module_loads(path) ? BOTID_ERR_UNAVAILABLE :
		    BOTID_ERR_PKCS11;
		goto out;
	}
	mod->loaded = 1;
	/* RTLD_NOLOAD: the very instance libp11 loaded, or nothing. */
	if ((mod->dl = dlopen(path, RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD)) ==
	    NULL) {
		log_err("PKCS#11 module %s: not found again after libp11 "
		    "loaded it: %s", path, dlerror());
		goto out;
	}
	get_list = (CK_C_GetFunctionList)dlsym(mod->dl, "C_GetFunctionList");
	if (get_list == NULL) {
		log_err("PKCS#11 module %s: no C_GetFunctionList", path);
		r = BOTID_ERR_PKCS11;
		goto out;
	}
	if ((rv = get_list(&fl)) != CKR_OK || fl == NULL) {
		log_err("PKCS#11 module %s: C_GetFunctionList: %s (0x%lx)",
		    path, pkcs11_rv_name(rv), (unsigned long)rv);
		r = BOTID_ERR_PKCS11;
		goto out;
	}
	mod->fl = fl;
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = fl->C_Initialize(&args);
	if (rv == CKR_OK)
		mod->finalize = 1;
	else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		log_err("PKCS#11 module %s: C_Initialize: %s (0x%lx)", path,
		    pkcs11_rv_name(rv), (unsigned long)rv);
		r = pkcs11_rv_err(rv);
		goto out;
	}
	if (PKCS11_enumerate_slots(mod->ctx, &mod->slots, &mod->nslots) != 0) {
		log_err("PKCS#11 module %s: cannot list slots: %s", path,
		    pkcs11_libp11_error());
		mod->slots = NULL;
		mod->nslots = 0;
		r = BOTID_ERR_PKCS11;
		goto out;
	}
	mod->next = pkcs11_modules;
	pkcs11_modules = mod;
	*modp = mod;
	mod = NULL;
	r = 0;
 out:
	/* Not on the list yet, so put() only unloads what was loaded. */
	pkcs11_module_put(mod);
	ERR_clear_error();
	return r;
}

/* Takes an idle session, waiting for one; reopens one a failure closed. */
static int
pkcs11_session_get(struct pkcs11_backend *pb, CK_SESSION_HANDLE *sp)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;

	*sp = CK_INVALID_HANDLE;
	pthread_mutex_lock(&pb->lock);
	while (pb->nidle == 0)
		pthread_cond_wait(&pb->cond, &pb->lock);
	s = pb->idle[--pb->nidle];
	pthread_mutex_unlock(&pb->lock);
	if (s == CK_INVALID_HANDLE) {
		rv = pb->fl->C_OpenSession(pb->slot, CKF_SERIAL_SESSION, NULL,
		    NULL, &s);
		if (rv != CKR_OK) {
			log_err("token '%s': C_OpenSession: %s (0x%lx)",
			    pb->token, pkcs11_rv_name(rv), (unsigned long)rv);
			pthread_mutex_lock(&pb->lock);
			pb->idle[pb->nidle++] = CK_INVALID_HANDLE;
			pthread_cond_signal(&pb->cond);
			pthread_mutex_unlock(&pb->lock);
			return pkcs11_rv_err(rv);
		}
	}
	*sp = s;
	return 0;
}

static void
pkcs11_session_put(struct pkcs11_backend *pb, CK_SESSION_HANDLE s)
{
	pthread_mutex_lock(&pb->lock);
	pb->idle[pb->nidle++] = s;
	pthread_cond_signal(&pb->cond);
	pthread_mutex_unlock(&pb->lock);
}

/*
 * Closes a session a call failed on and returns its place to the pool
 * empty: whatever state the failure left (an operation still active, a
 * dead handle) stays behind, and the next user opens a fresh session.
 */
static void
pkcs11_session_discard(struct pkcs11_backend *pb, CK_SESSION_HANDLE s)
{
	(void)pb->fl->C_CloseSession(s);
	pkcs11_session_put(pb, CK_INVALID_HANDLE);
}

/*
 * Reads one attribute of at most max bytes into a new buffer. A missing
 * or empty attribute is BOTID_ERR_NOT_FOUND.
 */
static int
pkcs11_attr_get(struct pkcs11_backend *pb, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, const char *what, size_t max,
    uint8_t **valp, size_t *lenp)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	uint8_t *v = NULL;
	CK_RV rv;
	int r = BOTID_ERR_INTERNAL;

	*valp = NULL;
	*lenp = 0;
	rv = pb->fl->C_GetAttributeValue(s, h, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID ||
	    rv == CKR_ATTRIBUTE_SENSITIVE || (rv == CKR_OK &&
	    (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0))) {
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	if (rv != CKR_OK) {
		log_err("token '%s': reading %s: %s (0x%lx)", pb->token, what,
		    pkcs11_rv_name(rv), (unsigned long)rv);
		r = pkcs11_rv_err(rv);
		goto out;
	}
	if (a.ulValueLen > max) {
		log_err("token '%s': %s is %lu bytes, more than %zu", pb->token,
		    what, (unsigned long)a.ulValueLen, max);
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	if ((v = malloc(a.ulValueLen)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	a.pValue = v;
	if ((rv = pb->fl->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK) {
		log_err("token '%s': reading %s: %s (0x%lx)", pb->token, what,
		    pkcs11_rv_name(rv), (unsigned long)rv);
		r = pkcs11_rv_err(rv);
		goto out;
	}
	if (a.ulValueLen == 0 || a.ulValueLen > max) {
		log_err("token '%s': %s changed size while read", pb->token,
		    what);
		r = BOTID_ERR_PKCS11;
		goto out;
	}
	*valp = v;
	*lenp = a.ulValueLen;
	v = NULL;
	r = 0;
 out:
	free(v);
	return r;
}

/*
 * Finds objects of class cls labelled label (and with CKA_ID id when
 * given): *n is how many, counting to 2 at most, *h the first.
 */
static int
pkcs11_find(struct pkcs11_backend *pb, CK_SESSION_HANDLE s,
    CK_OBJECT_CLASS cls, const char *label, const uint8_t *id, size_t idlen,
    CK_OBJECT_HANDLE *h, size_t *n)
{
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, (void *)id, idlen },
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG nfound = 0;
	CK_RV rv;

	*h = CK_INVALID_HANDLE;
	*n = 0;
	rv = pb->fl->C_FindObjectsInit(s, tmpl, id != NULL ? 3 : 2);
	if (rv != CKR_OK) {
		log_err("token '%s': C_FindObjectsInit: %s (0x%lx)", pb->token,
		    pkcs11_rv_name(rv), (unsigned long)rv);
		return pkcs11_rv_err(rv);
	}
	rv = pb->fl->C_FindObjects(s, found, 2, &nfound);
	(void)pb->fl->C_FindObjectsFinal(s);
	if (rv != CKR_OK) {
		log_err("token '%s': C_FindObjects: %s (0x%lx)", pb->token,
		    pkcs11_rv_name(rv), (unsigned long)rv);
		return pkcs11_rv_err(rv);
	}
	if (nfound > 2)
		return BOTID_ERR_PKCS11;
	if (nfound > 0)
		*h = found[0];
	*n = nfound;
	return 0;
}

/*
 * Creates the bot's key pair on the token: sign-only, sensitive and never
 * extractable from birth, which only C_GenerateKeyPair can promise.
 */
static int
pkcs11_key_generate(struct pkcs11_backend *pb,
    const struct pkcs11_key_kind *kind, const char *bot, const char *label)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG bits = kind->bits;
	uint8_t id[PKCS11_ID_LEN];
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_SIGN_RECOVER, &no, sizeof(no) },
		{ CKA_DECRYPT, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, id, sizeof(id) },
	};
	CK_ATTRIBUTE pub[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_ENCRYPT, &no, sizeof(no) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, id, sizeof(id) },
		/* The key's shape: EC_PARAMS, or MODULUS_BITS and exponent. */
		{ CKA_EC_PARAMS, NULL, 0 },
		{ CKA_PUBLIC_EXPONENT, NULL, 0 },
	};
	CK_ULONG npub = sizeof(pub) / sizeof(pub[0]);
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_RV rv;
	int r = BOTID_ERR_INTERNAL;

	if (RAND_bytes(id, sizeof(id)) != 1) {
		log_err("bot '%s': no random bytes for CKA_ID", bot);
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	if (kind->ck_type == CKK_EC) {
		pub[npub - 2].pValue = (void *)kind->ec_params;
		pub[npub - 2].ulValueLen = kind->ec_params_len;
		npub--;
	} else {
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		pub[npub - 2].type = CKA_MODULUS_BITS;
		pub[npub - 2].pValue = &bits;
		pub[npub - 2].ulValueLen = sizeof(bits);
		pub[npub - 1].pValue = (void *)pkcs11_rsa_exponent;
		pub[npub - 1].ulValueLen = sizeof(pkcs11_rsa_exponent);
	}
	/* Creating token objects needs a read/write session of its own. */
	rv = pb->fl->C_OpenSession(pb->slot, CKF_SERIAL_SESSION |
	    CKF_RW_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		log_err("bot '%s': token '%s': read/write C_OpenSession: "
		    "%s (0x%lx)", bot, pb->token, pkcs11_rv_name(rv),
		    (unsigned long)rv);
		s = CK_INVALID_HANDLE;
		r = pkcs11_rv_err(rv);
		goto out;
	}
	rv = pb->fl->C_GenerateKeyPair(s, &mech, pub, npub, priv,
	    sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv);
	if (rv != CKR_OK) {
		log_err("bot '%s': token '%s': C_GenerateKeyPair (%s): "
		    "%s (0x%lx)", bot, pb->token, kind->name,
		    pkcs11_rv_name(rv), (unsigned long)rv);
		r = pkcs11_rv_err(rv);
		goto out;
	}
	log_info("bot '%s': generated key %s (%s) on token '%s'", bot, label,
	    kind->name, pb->token);
	r = 0;
 out:
	if (s != CK_INVALID_HANDLE)
		(void)pb->fl->C_CloseSession(s);
	return r;
}

/*
 * Refuses a private key that is, or ever was, extractable or readable,
 * and one of another type or size than configured: one log line naming
 * the bot and the attribute.
 */
static int
pkcs11_key_check(struct pkcs11_backend *pb, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE h, const struct pkcs11_key_kind *kind, const char *bot,
    const char *label)
{
	CK_BBOOL sensitive = CK_FALSE, always = CK_FALSE, extractable = CK_TRUE;
	CK_BBOOL never = CK_FALSE, private = CK_FALSE, sign = CK_FALSE;
	CK_KEY_TYPE type = CKK_VENDOR_DEFINED;
	CK_ATTRIBUTE a[] = {
		{ CKA_EXTRACTABLE, &extractable, sizeof(extractable) },
		{ CKA_NEVER_EXTRACTABLE, &never, sizeof(never) },
		{ CKA_SENSITIVE, &sensitive, sizeof(sensitive) },
		{ CKA_ALWAYS_SENSITIVE, &always, sizeof(always) },
		{ CKA_PRIVATE, &private, sizeof(private) },
		{ CKA_SIGN, &sign, sizeof(sign) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
	};
	/* What each attribute must be, and what it means when it is not. */
	static const struct {
		CK_BBOOL	 want;
		const char	*name;
		const char	*why;
	} rule[] = {
		{ CK_FALSE, "CKA_EXTRACTABLE", "the key can leave the token" },
		{ CK_TRUE, "CKA_NEVER_EXTRACTABLE",
		    "the key was extractable once" },
		{ CK_TRUE, "CKA_SENSITIVE", "the key can be read in plaintext" },
		{ CK_TRUE, "CKA_ALWAYS_SENSITIVE",
		    "the key was readable in plaintext once (imported?)" },
	};
	const size_t nattr = sizeof(a) / sizeof(a[0]);
	uint8_t *curve = NULL, *mod = NULL;
	size_t i, len;
	BIGNUM *n = NULL;
	CK_BBOOL v;
	CK_RV rv;
	int bits, r = BOTID_ERR_INTERNAL;

	rv = pb->fl->C_GetAttributeValue(s, h, a, nattr);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
	    rv != CKR_ATTRIBUTE_SENSITIVE) {
		log_err("bot '%s': reading attributes of %s: %s (0x%lx)", bot,
		    label, pkcs11_rv_name(rv), (unsigned long)rv);
		r = pkcs11_rv_err(rv);
		goto out;
	}
	for (i = 0; i < sizeof(rule) / sizeof(rule[0]); i++) {
		/* An attribute the token will not show proves nothing. */
		if (a[i].ulValueLen != sizeof(CK_BBOOL)) {
			log_err("bot '%s': refusing key %s on token '%s': "
			    "%s is not readable", bot, label, pb->token,
			    rule[i].name);
			r = BOTID_ERR_EXPORTABLE;
			goto out;
		}
		v = *(CK_BBOOL *)a[i].pValue != CK_FALSE;
		if (v != rule[i].want) {
			log_err("bot '%s': refusing key %s on token '%s': %s "
			    "is %s: %s", bot, label, pb->token, rule[i].name,
			    v ? "true" : "false", rule[i].why);
			r = BOTID_ERR_EXPORTABLE;
			goto out;
		}
	}
	if (a[4].ulValueLen != sizeof(CK_BBOOL) || private == CK_FALSE) {
		log_err("bot '%s': refusing key %s on token '%s': CKA_PRIVATE "
		    "is false: it is usable without the PIN", bot, label,
		    pb->token);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if (a[5].ulValueLen != sizeof(CK_BBOOL) || sign == CK_FALSE) {
		log_err("bot '%s': refusing key %s on token '%s': CKA_SIGN is "
		    "false", bot, label, pb->token);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if (a[6].ulValueLen != sizeof(CK_KEY_TYPE) || type != kind->ck_type) {
		log_err("bot '%s': key %s on token '%s' is not an %s key, "
		    "the configuration says %s", bot, label, pb->token,
		    kind->ck_type == CKK_EC ? "EC" : "RSA", kind->name);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if (kind->ck_type == CKK_EC) {
		r = pkcs11_attr_get(pb, s, h, CKA_EC_PARAMS, "CKA_EC_PARAMS",
		    PKCS11_MAX_EC_PARAMS, &curve, &len);
		if (r == BOTID_ERR_NOT_FOUND || r == BOTID_ERR_TOO_LARGE ||
		    (r == 0 && (len != kind->ec_params_len ||
		    memcmp(curve, kind->ec_params, len) != 0))) {
			log_err("bot '%s': key %s on token '%s' is not on the "
			    "curve of %s, as configured", bot, label,
			    pb->token, kind->name);
			r = BOTID_ERR_CONFIG;
			goto out;
		}
		if (r != 0)
			goto out;
	} else {
		r = pkcs11_attr_get(pb, s, h, CKA_MODULUS, "CKA_MODULUS",
		    PKCS11_MAX_MODULUS, &mod, &len);
		if (r == 0 && (len > INT_MAX ||
		    (n = BN_bin2bn(mod, (int)len, NULL)) == NULL)) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		bits = n != NULL ? BN_num_bits(n) : 0;
		if (r == BOTID_ERR_NOT_FOUND || r == BOTID_ERR_TOO_LARGE ||
		    (r == 0 && (CK_ULONG)bits != kind->bits)) {
			log_err("bot '%s': key %s on token '%s' has a %d-bit "
			    "modulus, the configuration says %s", bot, label,
			    pb->token, bits, kind->name);
			r = BOTID_ERR_CONFIG;
			goto out;
		}
		if (r != 0)
			goto out;
	}
	r = 0;
 out:
	BN_free(n);
	free(curve);
	free(mod);
	return r;
}

/*
 * Takes the point out of CKA_EC_POINT: a DER OCTET STRING around the
 * uncompressed point as the standard says, or the bare point as some
 * tokens return it. *pt points into v.
 */
static int
pkcs11_ec_point(const uint8_t *v, size_t len, size_t field_bytes,
    const uint8_t **pt, size_t *ptlen)
{
	const size_t want = 1 + 2 * field_bytes;
	struct botid_buf b;
	const uint8_t *p;
	uint8_t tag, l0, l1;
	size_t n;

	*pt = NULL;
	*ptlen = 0;
	buf_init_view(&b, v, len);
	if (len == want && v[0] == 0x04) {
		*pt = v;
		*ptlen = len;
		return 0;
	}
	if (buf_get_u8(&b, &tag) != 0 || tag != 0x04 ||
	    buf_get_u8(&b, &l0) != 0)
		return BOTID_ERR_INVALID;
	if (l0 < 0x80)
		n = l0;
	else if (l0 == 0x81 && buf_get_u8(&b, &l1) == 0 && l1 >= 0x80)
		n = l1;
	else
		return BOTID_ERR_INVALID;
	/* The length must cover exactly the rest: no trailing bytes. */
	if (n != want || buf_len(&b) != n || buf_get_direct(&b, &p, n) != 0)
		return BOTID_ERR_INVALID;
	if (p[0] != 0x04)	/* uncompressed */
		return BOTID_ERR_INVALID;
	*pt = p;
	*ptlen = n;
	return 0;
}

/* Builds the public key from the public key object's attributes. */
static int
pkcs11_key_public(struct pkcs11_backend *pb, CK_SESSION_HANDLE s,
    struct botid_key *key, EVP_PKEY **pkeyp)
{
	const struct pkcs11_key_kind *kind = key->kind;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *fields = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t *v1 = NULL, *v2 = NULL;
	const uint8_t *pt;
	size_t len1, len2, ptlen;
	int r = BOTID_ERR_INTERNAL;

	*pkeyp = NULL;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if (kind->ck_type == CKK_EC) {
		if ((r = pkcs11_attr_get(pb, s, key->pub, CKA_EC_POINT,
		    "CKA_EC_POINT", PKCS11_MAX_EC_POINT, &v1, &len1)) != 0)
			goto bad;
		if (pkcs11_ec_point(v1, len1, (kind->bits + 7) / 8, &pt,
		    &ptlen) != 0) {
			log_err("bot '%s': token '%s': malformed CKA_EC_POINT "
			    "(%zu bytes)", key->bot, pb->token, len1);
			r = BOTID_ERR_PKCS11;
			goto out;
		}
		if (OSSL_PARAM_BLD_push_utf8_string(bld,
		    OSSL_PKEY_PARAM_GROUP_NAME, kind->group, 0) != 1 ||
		    OSSL_PARAM_BLD_push_octet_string(bld,
		    OSSL_PKEY_PARAM_PUB_KEY, pt, ptlen) != 1) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
	} else {
		if ((r = pkcs11_attr_get(pb, s, key->pub, CKA_MODULUS,
		    "CKA_MODULUS", PKCS11_MAX_MODULUS, &v1, &len1)) != 0 ||
		    (r = pkcs11_attr_get(pb, s, key->pub, CKA_PUBLIC_EXPONENT,
		    "CKA_PUBLIC_EXPONENT", PKCS11_MAX_EXPONENT, &v2,
		    &len2)) != 0)
			goto bad;
		if ((n = BN_bin2bn(v1, (int)len1, NULL)) == NULL ||
		    (e = BN_bin2bn(v2, (int)len2, NULL)) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		if ((CK_ULONG)BN_num_bits(n) != kind->bits) {
			log_err("bot '%s': token '%s': public key has a %d-bit "
			    "modulus, not %lu", key->bot, pb->token,
			    BN_num_bits(n), (unsigned long)kind->bits);
			r = BOTID_ERR_CONFIG;
			goto out;
		}
		if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) !=
		    1 || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E,
		    e) != 1) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
	}
	if ((fields = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL,
	    kind->ck_type == CKK_EC ? "EC" : "RSA", NULL)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	/* Decoding the point checks that it lies on the curve. */
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, fields) != 1) {
		log_err("bot '%s': token '%s': public key rejected by OpenSSL",
		    key->bot, pb->token);
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	*pkeyp = pkey;
	pkey = NULL;
	r = 0;
	goto out;
 bad:
	if (r == BOTID_ERR_NOT_FOUND || r == BOTID_ERR_TOO_LARGE) {
		log_err("bot '%s': token '%s': public key object lacks a "
		    "usable %s", key->bot, pb->token,
		    kind->ck_type == CKK_EC ? "CKA_EC_POINT" :
		    "CKA_MODULUS or CKA_PUBLIC_EXPONENT");
		r = BOTID_ERR_PKCS11;
	}
 out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(fields);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(v1);
	free(v2);
	ERR_clear_error();
	return r;
}

/*
 * Looks the bot's key pair up by label: *found is 0 when there is no
 * private key; otherwise the pair is checked and *keyp filled.
 */
static int
pkcs11_key_find(struct pkcs11_backend *pb, CK_SESSION_HANDLE s,
    const struct pkcs11_key_kind *kind, const char *bot, const char *label,
    int *found, struct botid_key **keyp)
{
	struct botid_key *key = NULL;
	uint8_t *id = NULL;
	size_t n, idlen;
	int r = BOTID_ERR_INTERNAL;

	*found = 0;
	*keyp = NULL;
	if ((key = calloc(1, sizeof(*key))) == NULL ||
	    (key->bot = strdup(bot)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	key->kind = kind;
	if ((r = pkcs11_find(pb, s, CKO_PRIVATE_KEY, label, NULL, 0,
	    &key->priv, &n)) != 0)
		goto out;
	if (n == 0) {
		r = 0;
		goto out;
	}
	*found = 1;
	if (n > 1) {
		log_err("bot '%s': several private keys labelled %s on token "
		    "'%s'; refusing to guess which one is the bot's", bot,
		    label, pb->token);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if ((r = pkcs11_key_check(pb, s, key->priv, kind, bot, label)) != 0)
		goto out;
	/* The public half: same label and the private key's CKA_ID. */
	r = pkcs11_attr_get(pb, s, key->priv, CKA_ID, "CKA_ID",
	    PKCS11_MAX_ID, &id, &idlen);
	if (r != 0 && r != BOTID_ERR_NOT_FOUND)
		goto out;
	if ((r = pkcs11_find(pb, s, CKO_PUBLIC_KEY, label, id, idlen,
	    &key->pub, &n)) != 0)
		goto out;
	if (n != 1) {
		log_err("bot '%s': %s public key objects labelled %s with its "
		    "private key's CKA_ID on token '%s'", bot,
		    n == 0 ? "no" : "several", label, pb->token);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	key->sig_len = kind->ck_type == CKK_EC ? 2 * ((kind->bits + 7) / 8) :
	    kind->bits / 8;
	*keyp = key;
	key = NULL;
	r = 0;
 out:
	if (key != NULL) {
		free(key->bot);
		free(key);
	}
	free(id);
	return r;
}

static int
pkcs11_sign(struct botid_backend *be, struct botid_key *key,
    const struct botid_sign_params *p, const uint8_t *digest,
    size_t digest_len, uint8_t **sigp, size_t *sig_lenp)
{
	struct pkcs11_backend *pb = (struct pkcs11_backend *)be;
	uint8_t in[sizeof(pkcs11_di_sha512) + BOTID_MAX_DIGEST];
	CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 0 };
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	const uint8_t *prefix = NULL;
	size_t hlen, prefix_len = 0;
	uint8_t *sig = NULL;
	CK_ULONG len, siglen;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_RV rv;
	int r = BOTID_ERR_INTERNAL;

	*sigp = NULL;
	*sig_lenp = 0;
	if (pb == NULL || key == NULL || p == NULL || digest == NULL)
		return BOTID_ERR_INVALID;
	if ((hlen = wire_hash_len(p->hash)) == 0)
		return BOTID_ERR_UNSUPPORTED;
	if (digest_len != hlen)
		return BOTID_ERR_INVALID;
	switch (p->hash) {
	case BOTID_HASH_SHA256:
		prefix = pkcs11_di_sha256;
		prefix_len = sizeof(pkcs11_di_sha256);
		pss.hashAlg = CKM_SHA256;
		pss.mgf = CKG_MGF1_SHA256;
		break;
	case BOTID_HASH_SHA384:
		prefix = pkcs11_di_sha384;
		prefix_len = sizeof(pkcs11_di_sha384);
		pss.hashAlg = CKM_SHA384;
		pss.mgf = CKG_MGF1_SHA384;
		break;
	case BOTID_HASH_SHA512:
		prefix = pkcs11_di_sha512;
		prefix_len = sizeof(pkcs11_di_sha512);
		pss.hashAlg = CKM_SHA512;
		pss.mgf = CKG_MGF1_SHA512;
		break;
	}
	pss.sLen = hlen;
	switch (p->scheme) {
	case BOTID_SCHEME_ECDSA:
		if (key->kind->ck_type != CKK_EC)
			return BOTID_ERR_UNSUPPORTED;
		/* CKM_ECDSA truncates a longer digest to the order itself. */
		memcpy(in, digest, hlen);
		len = hlen;
		break;
	case BOTID_SCHEME_PKCS1:
		if (key->kind->ck_type != CKK_RSA)
			return BOTID_ERR_UNSUPPORTED;
		mech.mechanism = CKM_RSA_PKCS;
		memcpy(in, prefix, prefix_len);
		memcpy(in + prefix_len, digest, hlen);
		len = prefix_len + hlen;
		break;
	case BOTID_SCHEME_PSS:
		if (key->kind->ck_type != CKK_RSA)
			return BOTID_ERR_UNSUPPORTED;
		mech.mechanism = CKM_RSA_PKCS_PSS;
		mech.pParameter = &pss;
		mech.ulParameterLen = sizeof(pss);
		memcpy(in, digest, hlen);
		len = hlen;
		break;
	default:
		return BOTID_ERR_UNSUPPORTED;
	}
	if ((sig = malloc(key->sig_len)) == NULL)
		return BOTID_ERR_ALLOC;
	if ((r = pkcs11_session_get(pb, &s)) != 0)
		goto out;
	if ((rv = pb->fl->C_SignInit(s, &mech, key->priv)) != CKR_OK) {
		log_err("bot '%s': C_SignInit: %s (0x%lx)", key->bot,
		    pkcs11_rv_name(rv), (unsigned long)rv);
		r = pkcs11_rv_err(rv);
		/*
		 * The key found when the token was opened is gone from its
		 * view: the token was removed, reset or lost its storage
		 * (SoftHSM2 says so). An outage: opened anew, it may be back.
		 */
		if (rv == CKR_KEY_HANDLE_INVALID ||
		    rv == CKR_OBJECT_HANDLE_INVALID)
			r = BOTID_ERR_UNAVAILABLE;
		goto fail;
	}
	/* The size is known from the key: one call, no length query. */
	siglen = key->sig_len;
	if ((rv = pb->fl->C_Sign(s, in, len, sig, &siglen)) != CKR_OK) {
		log_err("bot '%s': C_Sign: %s (0x%lx)", key->bot,
		    pkcs11_rv_name(rv), (unsigned long)rv);
		r = pkcs11_rv_err(rv);
		goto fail;
	}
	if (siglen > key->sig_len || siglen == 0 ||
	    (key->kind->ck_type == CKK_EC && siglen != key->sig_len)) {
		log_err("bot '%s': C_Sign returned %lu bytes, not %zu",
		    key->bot, (unsigned long)siglen, key->sig_len);
		r = BOTID_ERR_PKCS11;
		goto fail;
	}
	/* An RSA signature is modulus-sized, leading zeros included. */
	if (siglen < key->sig_len) {
		memmove(sig + (key->sig_len - siglen), sig, siglen);
		memset(sig, 0, key->sig_len - siglen);
	}
	pkcs11_session_put(pb, s);
	*sigp = sig;
	*sig_lenp = key->sig_len;
	sig = NULL;
	r = 0;
	goto out;
 fail:
	pkcs11_session_discard(pb, s);
 out:
	free(sig);
	return r;
}

/*
 * The private key object's protection attributes, read now through a
 * pool session like a signature. An attribute the token will not show is
 * left out rather than guessed.
 */
static int
pkcs11_key_attributes(struct botid_backend *be, struct botid_key *key,
    struct botid_key_attribute *attrs, size_t *n)
{
	static const struct {
		CK_ATTRIBUTE_TYPE	 type;
		const char		*name;
	} wanted[] = {
		{ CKA_TOKEN, "CKA_TOKEN" },
		{ CKA_PRIVATE, "CKA_PRIVATE" },
		{ CKA_SENSITIVE, "CKA_SENSITIVE" },
		{ CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE" },
		{ CKA_EXTRACTABLE, "CKA_EXTRACTABLE" },
		{ CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE" },
		{ CKA_LOCAL, "CKA_LOCAL" },
		{ CKA_SIGN, "CKA_SIGN" },
	};
	struct pkcs11_backend *pb = (struct pkcs11_backend *)be;
	CK_BBOOL v[sizeof(wanted) / sizeof(wanted[0])];
	CK_ATTRIBUTE a[sizeof(wanted) / sizeof(wanted[0])];
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	size_t i, k = 0;
	CK_RV rv;
	int r = BOTID_ERR_INTERNAL;

	*n = 0;
	if (pb == NULL || key == NULL || attrs == NULL)
		return BOTID_ERR_INVALID;
	for (i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		v[i] = CK_FALSE;
		a[i].type = wanted[i].type;
		a[i].pValue = &v[i];
		a[i].ulValueLen = sizeof(v[i]);
	}
	if ((r = pkcs11_session_get(pb, &s)) != 0)
		return r;
	rv = pb->fl->C_GetAttributeValue(s, key->priv, a,
	    sizeof(a) / sizeof(a[0]));
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
	    rv != CKR_ATTRIBUTE_SENSITIVE) {
		log_err("bot '%s': reading key attributes: %s (0x%lx)",
		    key->bot, pkcs11_rv_name(rv), (unsigned long)rv);
		pkcs11_session_discard(pb, s);
		return pkcs11_rv_err(rv);
	}
	pkcs11_session_put(pb, s);
	for (i = 0; i < sizeof(wanted) / sizeof(wanted[0]) &&
	    k < BOTID_MAX_KEY_ATTRIBUTES; i++) {
		if (a[i].ulValueLen != sizeof(CK_BBOOL))
			continue;
		attrs[k].name = wanted[i].name;
		attrs[k].set = v[i] != CK_FALSE;
		k++;
	}
	*n = k;
	return 0;
}

/*
 * Signs a fixed digest and checks the result with the public key we are
 * about to hand out: a public key object that does not match its private
 * key (or a mechanism that does not work) shows up at open, not in a
 * certificate.
 */
static int
pkcs11_key_selftest(struct pkcs11_backend *pb, struct botid_key *key,
    EVP_PKEY *pkey)
{
	static const uint8_t digest[32] = "botid pkcs11 backend self-test";
	struct botid_sign_params sp = { BOTID_HASH_SHA256, BOTID_SCHEME_ECDSA };
	const size_t half = key->sig_len / 2;
	EVP_PKEY_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	uint8_t *sig = NULL, *der = NULL;
	const uint8_t *vsig;
	size_t sig_len, vlen;
	int derlen, r = BOTID_ERR_INTERNAL;

	if (key->kind->ck_type == CKK_RSA)
		sp.scheme = BOTID_SCHEME_PKCS1;
	if ((r = pkcs11_sign(&pb->be, key, &sp, digest, sizeof(digest), &sig,
	    &sig_len)) != 0) {
		log_err("bot '%s': self-test signature failed: %s", key->bot,
		    botid_strerror(r));
		goto out;
	}
	vsig = sig;
	vlen = sig_len;
	if (key->kind->ck_type == CKK_EC) {
		if ((es = ECDSA_SIG_new()) == NULL ||
		    (br = BN_bin2bn(sig, (int)half, NULL)) == NULL ||
		    (bs = BN_bin2bn(sig + half, (int)half, NULL)) == NULL ||
		    ECDSA_SIG_set0(es, br, bs) != 1) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		br = bs = NULL;
		if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		vsig = der;
		vlen = (size_t)derlen;
	}
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1 ||
	    (key->kind->ck_type == CKK_RSA &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1))) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	if (EVP_PKEY_verify(ctx, vsig, vlen, digest, sizeof(digest)) != 1) {
		log_err("bot '%s': token '%s': the public key object does not "
		    "verify its private key's signature; refusing the pair",
		    key->bot, pb->token);
		r = BOTID_ERR_PKCS11;
		goto out;
	}
	r = 0;
 out:
	EVP_PKEY_CTX_free(ctx);
	ECDSA_SIG_free(es);
	BN_free(br);
	BN_free(bs);
	OPENSSL_free(der);
	free(sig);
	ERR_clear_error();
	return r;
}

static void
pkcs11_key_free(struct botid_key *key)
{
	if (key == NULL)
		return;
	free(key->bot);
	free(key);
}

static int
pkcs11_key_open(struct botid_backend *be, const struct botid_bot_config *bot,
    struct botid_key **keyp, uint8_t **spkip, size_t *spki_lenp)
{
	struct pkcs11_backend *pb = (struct pkcs11_backend *)be;
	const struct pkcs11_key_kind *kind;
	char label[PKCS11_MAX_LABEL];
	struct botid_key *key = NULL;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	EVP_PKEY *pkey = NULL;
	uint8_t *spki = NULL, *p;
	size_t namelen;
	int found, len, r = BOTID_ERR_INTERNAL;

	*keyp = NULL;
	*spkip = NULL;
	*spki_lenp = 0;
	if (pb == NULL || bot == NULL || bot->name == NULL)
		return BOTID_ERR_INVALID;
	namelen = strlen(bot->name);
	if (namelen == 0 || namelen > BOTID_MAX_KEY_NAME)
		return BOTID_ERR_INVALID;
	if ((kind = pkcs11_kind(bot->key_type)) == NULL) {
		log_err("bot '%s': key type %d is not one the PKCS#11 backend "
		    "knows", bot->name, (int)bot->key_type);
		return BOTID_ERR_CONFIG;
	}
	snprintf(label, sizeof(label), "%s%s", PKCS11_LABEL_PREFIX, bot->name);

	if ((r = pkcs11_session_get(pb, &s)) != 0)
		goto out;
	/*
	 * Two threads opening the same new bot would make two keys, and the
	 * bot would be refused as ambiguous ever after: look up and create
	 * under the module lock. Nothing holding it waits for a pool session.
	 */
	pthread_mutex_lock(&pkcs11_modules_lock);
	r = pkcs11_key_find(pb, s, kind, bot->name, label, &found, &key);
	if (r == 0 && !found &&
	    (r = pkcs11_key_generate(pb, kind, bot->name, label)) == 0) {
		/* Read the new key back through the very checks above. */
		r = pkcs11_key_find(pb, s, kind, bot->name, label, &found,
		    &key);
		if (r == 0 && !found) {
			log_err("bot '%s': generated key %s not found on token "
			    "'%s'", bot->name, label, pb->token);
			r = BOTID_ERR_PKCS11;
		}
	}
	pthread_mutex_unlock(&pkcs11_modules_lock);
	if (r != 0)
		goto out;
	if ((r = pkcs11_key_public(pb, s, key, &pkey)) != 0)
		goto out;
	pkcs11_session_put(pb, s);
	s = CK_INVALID_HANDLE;
	if ((r = pkcs11_key_selftest(pb, key, pkey)) != 0)
		goto out;
	if ((len = i2d_PUBKEY(pkey, NULL)) <= 0 ||
	    (size_t)len > BOTID_MAX_PUBKEY) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	if ((spki = malloc((size_t)len)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	p = spki;
	if (i2d_PUBKEY(pkey, &p) != len) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	pthread_mutex_lock(&pb->lock);
	pb->nkeys++;
	pthread_mutex_unlock(&pb->lock);
	log_debug("bot '%s': %s key %s ready on token '%s'", bot->name,
	    kind->name, label, pb->token);
	*keyp = key;
	*spkip = spki;
	*spki_lenp = (size_t)len;
	key = NULL;
	spki = NULL;
	r = 0;
 out:
	if (s != CK_INVALID_HANDLE) {
		if (r == BOTID_ERR_UNAVAILABLE || r == BOTID_ERR_PKCS11)
			pkcs11_session_discard(pb, s);
		else
			pkcs11_session_put(pb, s);
	}
	EVP_PKEY_free(pkey);
	pkcs11_key_free(key);
	free(spki);
	ERR_clear_error();
	return r;
}

/* Whether a private key is labelled for the bot: key_open checks the rest. */
static int
pkcs11_key_exists(struct botid_backend *be, const struct botid_bot_config *bot)
{
	struct pkcs11_backend *pb = (struct pkcs11_backend *)be;
	char label[PKCS11_MAX_LABEL];
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE h;
	size_t namelen, n = 0;
	int r;

	if (pb == NULL || bot == NULL || bot->name == NULL)
		return BOTID_ERR_INVALID;
	namelen = strlen(bot->name);
	if (namelen == 0 || namelen > BOTID_MAX_KEY_NAME)
		return BOTID_ERR_INVALID;
	snprintf(label, sizeof(label), "%s%s", PKCS11_LABEL_PREFIX, bot->name);
	if ((r = pkcs11_session_get(pb, &s)) != 0)
		return r;
	r = pkcs11_find(pb, s, CKO_PRIVATE_KEY, label, NULL, 0, &h, &n);
	if (r == BOTID_ERR_UNAVAILABLE || r == BOTID_ERR_PKCS11)
		pkcs11_session_discard(pb, s);
	else
		pkcs11_session_put(pb, s);
	return r != 0 ? r : n > 0;
}

/*
 * Destroys every private and public key object labelled botid:<name> on
 * the token (a key pair, or the leftovers of a crashed generation), in a
 * read/write session of its own, under the module lock like generation.
 */
static int
pkcs11_key_remove(struct botid_backend *be, const struct botid_bot_config *bot)
{
	static const CK_OBJECT_CLASS classes[2] = {
		CKO_PRIVATE_KEY, CKO_PUBLIC_KEY
	};
	struct pkcs11_backend *pb = (struct pkcs11_backend *)be;
	char label[PKCS11_MAX_LABEL];
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	size_t i, n, destroyed = 0;
	int r = BOTID_ERR_INTERNAL, locked = 0;

	if (pb == NULL || bot == NULL || bot->name == NULL ||
	    strlen(bot->name) == 0 || strlen(bot->name) > BOTID_MAX_KEY_NAME)
		return BOTID_ERR_INVALID;
	snprintf(label, sizeof(label), "%s%s", PKCS11_LABEL_PREFIX, bot->name);
	pthread_mutex_lock(&pkcs11_modules_lock);
	locked = 1;
	rv = pb->fl->C_OpenSession(pb->slot, CKF_SERIAL_SESSION |
	    CKF_RW_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		log_err("key '%s': token '%s': read/write C_OpenSession: "
		    "%s (0x%lx)", bot->name, pb->token, pkcs11_rv_name(rv),
		    (unsigned long)rv);
		s = CK_INVALID_HANDLE;
		r = pkcs11_rv_err(rv);
		goto out;
	}
	for (i = 0; i < 2; i++) {
		/* Found two at a time: loop until none is left. */
		for (;;) {
			if ((r = pkcs11_find(pb, s, classes[i], label, NULL, 0,
			    &h, &n)) != 0)
				goto out;
			if (n == 0)
				break;
			rv = pb->fl->C_DestroyObject(s, h);
			if (rv != CKR_OK) {
				log_err("key '%s': token '%s': C_DestroyObject: "
				    "%s (0x%lx)", bot->name, pb->token,
				    pkcs11_rv_name(rv), (unsigned long)rv);
				r = pkcs11_rv_err(rv);
				goto out;
			}
			destroyed++;
		}
	}
	if (destroyed == 0) {
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	log_info("key '%s' destroyed on token '%s' (%zu objects labelled %s)",
	    bot->name, pb->token, destroyed, label);
	r = 0;
 out:
	if (s != CK_INVALID_HANDLE)
		(void)pb->fl->C_CloseSession(s);
	if (locked)
		pthread_mutex_unlock(&pkcs11_modules_lock);
	return r;
}

static void
pkcs11_key_close(struct botid_backend *be, struct botid_key *key)
{
	struct pkcs11_backend *pb = (struct pkcs11_backend *)be;

	if (key == NULL)
		return;
	if (pb != NULL) {
		pthread_mutex_lock(&pb->lock);
		pb->nkeys--;
		pthread_mutex_unlock(&pb->lock);
	}
	pkcs11_key_free(key);
}

/*
 * Closes the backend's sessions, logging the token out first when no
 * other backend of this process uses it, and frees it. The caller holds
 * the module lock and releases the module afterwards: closing sessions
 * needs the module still loaded.
 */
static void
pkcs11_backend_free(struct pkcs11_backend *pb, int logout)
{
	CK_RV rv;
	size_t i;

	if (pb == NULL)
		return;
	for (i = 0; pb->fl != NULL && i < pb->nidle; i++) {
		if (pb->idle[i] == CK_INVALID_HANDLE)
			continue;
		if (logout) {
			rv = pb->fl->C_Logout(pb->idle[i]);
			if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN)
				log_warn("token '%s': C_Logout: %s (0x%lx)",
				    pb->token, pkcs11_rv_name(rv),
				    (unsigned long)rv);
			logout = 0;
		}
		(void)pb->fl->C_CloseSession(pb->idle[i]);
	}
	if (pb->sync_ready) {
		pthread_cond_destroy(&pb->cond);
		pthread_mutex_destroy(&pb->lock);
	}
	free(pb->idle);
	free(pb->token);
	free(pb);
}

/* Is another backend of this process on pb's token? Module lock held. */
static int
pkcs11_token_shared(const struct pkcs11_backend *pb)
{
	const struct pkcs11_backend *o;

	for (o = pb->mod->backends; o != NULL; o = o->next)
		if (o != pb && o->slot == pb->slot)
			return 1;
	return 0;
}

static void
pkcs11_close(struct botid_backend *be)
{
	struct pkcs11_backend *pb = (struct pkcs11_backend *)be, **pp;
	struct pkcs11_module *mod;

	if (pb == NULL)
		return;
	if (pb->nkeys != 0 || pb->nidle != pb->nsessions)
		log_err("token '%s': closed with %zu keys and %zu sessions "
		    "still in use", pb->token, pb->nkeys,
		    pb->nsessions - pb->nidle);
	pthread_mutex_lock(&pkcs11_modules_lock);
	mod = pb->mod;
	for (pp = &mod->backends; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == pb) {
			*pp = pb->next;
			break;
		}
	}
	/* The login belongs to the token: keep it while another uses it. */
	pkcs11_backend_free(pb, !pkcs11_token_shared(pb));
	pkcs11_module_put(mod);
	pthread_mutex_unlock(&pkcs11_modules_lock);
}

/* Finds the one initialised token labelled label among the module's slots. */
static int
pkcs11_token_find(struct pkcs11_module *mod, const char *label,
    CK_SLOT_ID *slotp, int *login_required)
{
	PKCS11_SLOT *found = NULL;
	unsigned int i, n = 0;

	*slotp = 0;
	*login_required = 1;
	for (i = 0; i < mod->nslots; i++) {
		PKCS11_TOKEN *tok = mod->slots[i].token;

		if (tok == NULL || !tok->initialized || tok->label == NULL ||
		    strcmp(tok->label, label) != 0)
			continue;
		if (n++ == 0)
			found = &mod->slots[i];
	}
	if (n == 0) {
		log_err("PKCS#11 module %s: no initialised token labelled '%s' "
		    "in its %u slots", mod->path, label, mod->nslots);
		return BOTID_ERR_NOT_FOUND;
	}
	if (n > 1) {
		log_err("PKCS#11 module %s: %u tokens labelled '%s'; refusing "
		    "to guess", mod->path, n, label);
		return BOTID_ERR_CONFIG;
	}
	if (found->token->userPinLocked)
		log_warn("token '%s': the user PIN is locked", label);
	*slotp = PKCS11_get_slotid_from_slot(found);
	*login_required = found->token->loginRequired;
	return 0;
}

/* Logs in as the user with the PIN from pin_file, wiped straight after. */
static int
pkcs11_login(struct pkcs11_backend *pb, CK_SESSION_HANDLE s,
    const char *pin_file)
{
	char pin[BOTID_MAX_PIN + 3] = { 0 };
	size_t pinlen;
	CK_RV rv;
	int locked, r = BOTID_ERR_INTERNAL;

	/* Kept out of swap while it lives; it is wiped before it dies. */
	if (!(locked = mlock(pin, sizeof(pin)) == 0))
		log_warn("token '%s': cannot lock the PIN buffer in memory: %s",
		    pb->token, strerror(errno));
	if ((r = pkcs11_pin_read(pin_file, pin, sizeof(pin), &pinlen)) != 0)
		goto out;
	rv = pb->fl->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, pinlen);
	OPENSSL_cleanse(pin, sizeof(pin));
	switch (rv) {
	case CKR_OK:
		pb->logged_in = 1;
		break;
	case CKR_USER_ALREADY_LOGGED_IN:
		/* Another backend of this process opened the same token. */
		break;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
		log_err("token '%s': login refused with the PIN from %s: "
		    "%s (0x%lx)", pb->token, pin_file, pkcs11_rv_name(rv),
		    (unsigned long)rv);
		r = BOTID_ERR_DENIED;
		goto out;
	default:
		log_err("token '%s': C_Login: %s (0x%lx)", pb->token,
		    pkcs11_rv_name(rv), (unsigned long)rv);
		r = pkcs11_rv_err(rv);
		goto out;
	}
	r = 0;
 out:
	OPENSSL_cleanse(pin, sizeof(pin));
	if (locked)
		(void)munlock(pin, sizeof(pin));
	return r;
}

int
backend_pkcs11_open(const char *module, const char *token_label,
    const char *pin_file, unsigned sessions, struct botid_backend **bep)
{
	struct pkcs11_backend *pb = NULL;
	struct pkcs11_module *mod = NULL;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	size_t i;
	int login_required, r = BOTID_ERR_INTERNAL;

	*bep = NULL;
	if (module == NULL || token_label == NULL)
		return BOTID_ERR_INVALID;
	if (sessions == 0 || sessions > PKCS11_MAX_SESSIONS) {
		log_err("token '%s': %u sessions; the PKCS#11 backend wants 1 "
		    "to %u", token_label, sessions, PKCS11_MAX_SESSIONS);
		return BOTID_ERR_CONFIG;
	}
	if ((pb = calloc(1, sizeof(*pb))) == NULL ||
	    (pb->token = strdup(token_label)) == NULL ||
	    (pb->idle = calloc(sessions, sizeof(*pb->idle))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	pb->be.ops = &pkcs11_ops;
	if (pthread_mutex_init(&pb->lock, NULL) != 0)
		goto out;
	if (pthread_cond_init(&pb->cond, NULL) != 0) {
		pthread_mutex_destroy(&pb->lock);
		goto out;
	}
	pb->sync_ready = 1;

	pthread_mutex_lock(&pkcs11_modules_lock);
	if ((r = pkcs11_module_get(module, &mod)) != 0)
		goto unlock;
	pb->mod = mod;
	pb->fl = mod->fl;
	if ((r = pkcs11_token_find(mod, token_label, &pb->slot,
	    &login_required)) != 0)
		goto unlock;
	/* Open every session now: a token short of them says so at start. */
	for (i = 0; i < sessions; i++) {
		rv = pb->fl->C_OpenSession(pb->slot, CKF_SERIAL_SESSION, NULL,
		    NULL, &s);
		if (rv == CKR_SESSION_COUNT && i > 0) {
			log_warn("token '%s': only %zu sessions, not %u",
			    token_label, i, sessions);
			break;
		}
		if (rv != CKR_OK) {
			log_err("token '%s': C_OpenSession: %s (0x%lx)",
			    token_label, pkcs11_rv_name(rv), (unsigned long)rv);
			r = pkcs11_rv_err(rv);
			goto unlock;
		}
		pb->idle[pb->nidle++] = s;
	}
	pb->nsessions = pb->nidle;
	if (login_required) {
		if (pin_file == NULL) {
			log_err("token '%s': needs a login and no PIN file is "
			    "configured", token_label);
			r = BOTID_ERR_CONFIG;
			goto unlock;
		}
		if ((r = pkcs11_login(pb, pb->idle[0], pin_file)) != 0)
			goto unlock;
	}
	pb->next = mod->backends;
	mod->backends = pb;
	log_info("token '%s' in %s: %s, %zu sessions", token_label, module,
	    login_required ? "logged in" : "no login needed", pb->nsessions);
	*bep = &pb->be;
	pb = NULL;
	mod = NULL;
	r = 0;
 unlock:
	if (pb != NULL && pb->mod != NULL) {
		/* Sessions first: they need the module loaded. */
		pkcs11_backend_free(pb, pb->logged_in &&
		    !pkcs11_token_shared(pb));
		pb = NULL;
	}
	pkcs11_module_put(mod);
	pthread_mutex_unlock(&pkcs11_modules_lock);
 out:
	pkcs11_backend_free(pb, 0);
	return r;
}

static const struct botid_backend_ops pkcs11_ops = {
	.name = "pkcs11",
	.key_open = pkcs11_key_open,
	.key_exists = pkcs11_key_exists,
	.sign = pkcs11_sign,
	.key_attributes = pkcs11_key_attributes,
	.key_close = pkcs11_key_close,
	.key_remove = pkcs11_key_remove,
	.close = pkcs11_close,
};
