/*
 * botid-bench's in-process PKCS#11 signer: C_SignInit + C_Sign on the
 * module's own function list, one session per thread, the key found once
 * by its label. This is the floor under any PKCS#11 path (the agent's, or
 * p11-kit server's through p11-kit-client.so), so ratios against it are
 * honest. Spec: MODULE,TOKEN-LABEL,PIN-FILE,KEY-LABEL.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lib/error.h"
#include "lib/limits.h"
#include "tools/bench.h"

/* Last: its compatibility macros rename common words. */
#include <p11-kit/pkcs11.h>

#define P11_SPEC_FIELDS	4

struct p11_ctx {
	CK_FUNCTION_LIST_PTR	 fl;
	CK_SESSION_HANDLE	 session;
	CK_OBJECT_HANDLE	 key;
	CK_MECHANISM		 mech;
	uint8_t			 in[19 + 32];	/* DigestInfo for RSA */
	CK_ULONG		 in_len;
	uint8_t			 sig[BOTID_MAX_SIGNATURE];
};

/*
 * Modules are loaded and initialised once per process, and threads open
 * their sessions one at a time: p11-kit-client.so once failed to list
 * the token to one of eight threads doing so at the same time.
 */
static pthread_mutex_t p11_lock = PTHREAD_MUTEX_INITIALIZER;

static const uint8_t p11_di_sha256[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};

static int
p11_module_load(const char *path, CK_FUNCTION_LIST_PTR *flp)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR fl = NULL;
	void *dl;
	CK_RV rv;
	int r = BOTID_ERR_PKCS11;

	*flp = NULL;
	/* Kept open for the life of the process, like the agent does. */
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "botid-bench: cannot load %s: %s\n", path,
		    dlerror());
		goto out;
	}
	if ((get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) ==
	    NULL || get(&fl) != CKR_OK || fl == NULL) {
		fprintf(stderr, "botid-bench: %s is not a PKCS#11 module\n",
		    path);
		goto out;
	}
	rv = fl->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		fprintf(stderr, "botid-bench: %s: C_Initialize: 0x%lx\n", path,
		    (unsigned long)rv);
		goto out;
	}
	*flp = fl;
	r = 0;
 out:
	return r;
}

/* Finds the slot whose token label is label (blank-padded on the token). */
static int
p11_slot_find(CK_FUNCTION_LIST_PTR fl, const char *label, CK_SLOT_ID *slot)
{
	CK_SLOT_ID *slots = NULL;
	CK_TOKEN_INFO ti;
	CK_ULONG n = 0, i;
	size_t len = strlen(label);
	int r = BOTID_ERR_NOT_FOUND;

	if (len > sizeof(ti.label))
		return BOTID_ERR_INVALID;
	if (fl->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n == 0 ||
	    (slots = calloc(n, sizeof(*slots))) == NULL ||
	    fl->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		goto out;
	for (i = 0; i < n; i++) {
		if (fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (memcmp(ti.label, label, len) != 0)
			continue;
		if (len < sizeof(ti.label) &&
		    ti.label[len] != ' ' && ti.label[len] != '\0')
			continue;
		*slot = slots[i];
		r = 0;
		break;
	}
 out:
	if (r != 0)
		fprintf(stderr, "botid-bench: no token labelled '%s'\n", label);
	free(slots);
	return r;
}

static int
p11_pin_read(const char *path, char *pin, size_t pinsz, size_t *len)
{
	FILE *f;
	size_t n;

	*len = 0;
	if ((f = fopen(path, "re")) == NULL) {
		fprintf(stderr, "botid-bench: %s: %s\n", path, strerror(errno));
		return BOTID_ERR_IO;
	}
	n = fread(pin, 1, pinsz - 1, f);
	fclose(f);
	while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
		n--;
	pin[n] = '\0';
	*len = n;
	return 0;
}

static void
p11_close_locked(void *arg)
{
	struct p11_ctx *c = arg;

	if (c == NULL)
		return;
	if (c->session != CK_INVALID_HANDLE)
		(void)c->fl->C_CloseSession(c->session);
	free(c);
}

/* p11_open's work, under p11_lock. */
static int
p11_open_locked(const char *spec, void **ctxp)
{
	char *copy = NULL, *field[P11_SPEC_FIELDS], *save = NULL, *p;
	char pin[BOTID_MAX_PIN + 1];
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE type = CKK_EC;
	CK_ATTRIBUTE find[2], get[1];
	struct p11_ctx *c = NULL;
	CK_SLOT_ID slot = 0;
	CK_ULONG found = 0;
	size_t pinlen = 0;
	unsigned i;
	CK_RV rv;
	int r = BOTID_ERR_INVALID;

	*ctxp = NULL;
	if ((copy = strdup(spec)) == NULL ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	c->session = CK_INVALID_HANDLE;
	for (i = 0, p = copy; i < P11_SPEC_FIELDS; i++, p = NULL)
		if ((field[i] = strtok_r(p, ",", &save)) == NULL)
			break;
	if (i != P11_SPEC_FIELDS || strtok_r(NULL, ",", &save) != NULL) {
		fprintf(stderr, "botid-bench: pkcs11 wants "
		    "MODULE,TOKEN,PIN-FILE,KEY-LABEL\n");
		goto out;
	}
	if ((r = p11_module_load(field[0], &c->fl)) != 0 ||
	    (r = p11_slot_find(c->fl, field[1], &slot)) != 0)
		goto out;
	r = BOTID_ERR_PKCS11;
	if ((rv = c->fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
	    &c->session)) != CKR_OK) {
		c->session = CK_INVALID_HANDLE;
		fprintf(stderr, "botid-bench: C_OpenSession: 0x%lx\n",
		    (unsigned long)rv);
		goto out;
	}
	if ((r = p11_pin_read(field[2], pin, sizeof(pin), &pinlen)) != 0)
		goto out;
	rv = c->fl->C_Login(c->session, CKU_USER, (CK_UTF8CHAR_PTR)pin,
	    pinlen);
	OPENSSL_cleanse(pin, sizeof(pin));
	r = BOTID_ERR_PKCS11;
	/* Logins are per token and application: the second thread's is a no-op. */
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		fprintf(stderr, "botid-bench: C_Login: 0x%lx\n",
		    (unsigned long)rv);
		goto out;
	}
	find[0] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	find[1] = (CK_ATTRIBUTE){ CKA_LABEL, field[3], strlen(field[3]) };
	if (c->fl->C_FindObjectsInit(c->session, find, 2) != CKR_OK ||
	    c->fl->C_FindObjects(c->session, &c->key, 1, &found) != CKR_OK ||
	    c->fl->C_FindObjectsFinal(c->session) != CKR_OK || found != 1) {
		fprintf(stderr, "botid-bench: no private key labelled '%s'\n",
		    field[3]);
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	get[0] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &type, sizeof(type) };
	if (c->fl->C_GetAttributeValue(c->session, c->key, get, 1) != CKR_OK)
		goto out;
	/* The same digest every time: what is measured is the signature. */
	memcpy(c->in, p11_di_sha256, sizeof(p11_di_sha256));
	memset(c->in + sizeof(p11_di_sha256), 0x5a, 32);
	if (type == CKK_EC) {
		c->mech = (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
		memmove(c->in, c->in + sizeof(p11_di_sha256), 32);
		c->in_len = 32;
	} else if (type == CKK_RSA) {
		c->mech = (CK_MECHANISM){ CKM_RSA_PKCS, NULL, 0 };
		c->in_len = sizeof(p11_di_sha256) + 32;
	} else {
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	*ctxp = c;
	c = NULL;
	r = 0;
 out:
	p11_close_locked(c);
	free(copy);
	return r;
}

static int
p11_open(const char *spec, void **ctxp)
{
	int r;

	pthread_mutex_lock(&p11_lock);
	r = p11_open_locked(spec, ctxp);
	pthread_mutex_unlock(&p11_lock);
	return r;
}

static void
p11_close(void *arg)
{
	pthread_mutex_lock(&p11_lock);
	p11_close_locked(arg);
	pthread_mutex_unlock(&p11_lock);
}

static int
p11_sign(void *arg)
{
	struct p11_ctx *c = arg;
	CK_ULONG len = sizeof(c->sig);

	if (c->fl->C_SignInit(c->session, &c->mech, c->key) != CKR_OK ||
	    c->fl->C_Sign(c->session, c->in, c->in_len, c->sig, &len) != CKR_OK)
		return BOTID_ERR_PKCS11;
	return 0;
}

const struct bench_signer bench_signer_pkcs11 = {
	.kind = "pkcs11",
	.open = p11_open,
	.sign = p11_sign,
	.close = p11_close,
	.serial = 0,
};
